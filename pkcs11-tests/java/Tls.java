// A TLS handshake on loopback whose server key is on the token: JSSE's server signs its
// handshake through SunPKCS11 (RSA-PSS for TLS 1.3 with an RSA key, ECDSA with an EC key),
// a client that trusts only the certificate stored with that key checks it, and a line of
// application data goes each way.
//
//   java Tls.java CONFIG PIN ALIAS PROTOCOL
//
// CONFIG is a SunPKCS11 configuration naming the module and its slot; ALIAS a key entry of
// the token's PKCS11 KeyStore (made by keytool in run.sh); PROTOCOL TLSv1.3 or TLSv1.2.
// Prints the negotiated protocol and cipher suite; exits non-zero on any failure.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.Security;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;

public class Tls {
    /** The token's key manager, held to one alias: the server must use the key under test. */
    static final class OneAlias extends X509ExtendedKeyManager {
        private final X509ExtendedKeyManager inner;
        private final String alias;

        OneAlias(X509ExtendedKeyManager inner, String alias) {
            this.inner = inner;
            this.alias = alias;
        }

        @Override
        public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
            return alias;
        }

        @Override
        public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
            return alias;
        }

        @Override
        public String[] getServerAliases(String keyType, Principal[] issuers) {
            return new String[] {alias};
        }

        @Override
        public X509Certificate[] getCertificateChain(String a) {
            return inner.getCertificateChain(a);
        }

        @Override
        public PrivateKey getPrivateKey(String a) {
            return inner.getPrivateKey(a);
        }

        @Override
        public String[] getClientAliases(String keyType, Principal[] issuers) {
            return null;
        }

        @Override
        public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
            return null;
        }
    }

    public static void main(String[] args) throws Exception {
        Provider p = Security.getProvider("SunPKCS11").configure(args[0]);
        Security.addProvider(p);
        char[] pin = args[1].toCharArray();
        String alias = args[2];
        String protocol = args[3];

        KeyStore token = KeyStore.getInstance("PKCS11", p);
        token.load(null, pin);
        Certificate certificate = token.getCertificate(alias);
        if (certificate == null || !token.isKeyEntry(alias)) {
            throw new IllegalStateException("no key entry with a certificate under " + alias);
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance("SunX509");
        kmf.init(token, pin);
        SSLContext server = SSLContext.getInstance(protocol);
        server.init(new javax.net.ssl.KeyManager[] {new OneAlias((X509ExtendedKeyManager) kmf.getKeyManagers()[0], alias)},
                null, null);

        // The client trusts that one certificate and nothing else.
        KeyStore trusted = KeyStore.getInstance("PKCS12");
        trusted.load(null, null);
        trusted.setCertificateEntry("server", certificate);
        TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(trusted);
        SSLContext client = SSLContext.getInstance(protocol);
        client.init(null, tmf.getTrustManagers(), null);

        InetAddress loopback = InetAddress.getLoopbackAddress();
        try (SSLServerSocket listener = (SSLServerSocket) server.getServerSocketFactory().createServerSocket(0, 1, loopback)) {
            listener.setEnabledProtocols(new String[] {protocol});
            ExecutorService pool = Executors.newSingleThreadExecutor();
            Future<String> served = pool.submit(() -> {
                try (SSLSocket s = (SSLSocket) listener.accept()) {
                    BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
                    PrintWriter out = new PrintWriter(new OutputStreamWriter(s.getOutputStream(), StandardCharsets.UTF_8), true);
                    String line = in.readLine();
                    out.println("server got: " + line);
                    return line;
                }
            });
            try (SSLSocket s = (SSLSocket) client.getSocketFactory().createSocket(loopback, listener.getLocalPort())) {
                s.setEnabledProtocols(new String[] {protocol});
                s.startHandshake();
                Certificate[] peer = s.getSession().getPeerCertificates();
                if (!peer[0].equals(certificate)) {
                    throw new IllegalStateException("the server presented another certificate");
                }
                PrintWriter out = new PrintWriter(new OutputStreamWriter(s.getOutputStream(), StandardCharsets.UTF_8), true);
                BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
                out.println("hello over " + protocol);
                String reply = in.readLine();
                if (!("server got: hello over " + protocol).equals(reply)) {
                    throw new IllegalStateException("unexpected reply: " + reply);
                }
                System.out.println("handshake: " + s.getSession().getProtocol() + " " + s.getSession().getCipherSuite()
                        + " with the token key " + alias + " (" + ((X509Certificate) certificate).getPublicKey().getAlgorithm() + ")");
            }
            if (!("hello over " + protocol).equals(served.get(30, TimeUnit.SECONDS))) {
                throw new IllegalStateException("the server read something else");
            }
            pool.shutdown();
        }
    }
}
