// Java SunPKCS11 against the module: what a Java application does with a PKCS#11 token
// through the JCA (KeyStore, KeyGenerator, KeyPairGenerator, Cipher, Signature, KeyAgreement,
// Mac, MessageDigest, SecureRandom), each result checked by Java's own software providers
// (SunJCE, SunRsaSign, SunEC, SUN), and the refusals a Java caller meets: a wrong PIN, a
// forged GCM tag, a key without CKA_DERIVE asked to derive, and keys whose values Java
// cannot read. (Java 17's SunPKCS11 has no key-wrapping cipher: C_WrapKey is not reached.)
//
//   java Interop.java CONFIG DERIVE_CONFIG PIN
//
// CONFIG is a SunPKCS11 configuration naming the module and its slot; DERIVE_CONFIG the same
// with the templates ECDH needs: CKA_DERIVE on generated EC private keys (PKCS#11's default is
// false) and a derived secret that is neither sensitive nor unextractable (SunPKCS11 reads
// its CKA_VALUE; the module's default is sensitive). Run as a single-file source
// program (no build step, nothing written beside it). Prints `ok - NAME` or `not ok - NAME`
// with the reason per check and exits non-zero if any failed. run.sh drives it.

import java.security.GeneralSecurityException;
import java.security.Key;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.spec.AlgorithmParameterSpec;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.Collections;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.KeyAgreement;
import javax.crypto.KeyGenerator;
import javax.crypto.Mac;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

public class Interop {
    private static int failed = 0;

    interface Check {
        void run() throws Exception;
    }

    static void check(String name, Check body) {
        try {
            body.run();
            System.out.println("ok - " + name);
        } catch (Throwable t) {
            failed++;
            System.out.println("not ok - " + name);
            System.out.println("    # " + t);
            for (Throwable c = t.getCause(); c != null; c = c.getCause()) {
                System.out.println("    #   caused by " + c);
            }
        }
    }

    static void require(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError(what);
        }
    }

    /** Runs `body`, which must fail with `rv` (a CKR_ name) somewhere in its cause chain. */
    static void refused(String rv, Check body) throws Exception {
        try {
            body.run();
        } catch (Exception e) {
            for (Throwable c = e; c != null; c = c.getCause()) {
                if (String.valueOf(c.getMessage()).contains(rv)) {
                    return;
                }
            }
            throw new AssertionError("refused, but not with " + rv + ": " + e, e);
        }
        throw new AssertionError("not refused (expected " + rv + ")");
    }

    /** The public key as Java's software providers read it (from its X.509 encoding). */
    static PublicKey soft(PublicKey key, String algorithm) throws GeneralSecurityException {
        return KeyFactory.getInstance(algorithm).generatePublic(new X509EncodedKeySpec(key.getEncoded()));
    }

    /** `data` signed with the token's `key` by `algorithm` (with `params`, if any). */
    static byte[] sign(Provider p, String algorithm, AlgorithmParameterSpec params, PrivateKey key, byte[] data)
            throws GeneralSecurityException {
        Signature s = Signature.getInstance(algorithm, p);
        if (params != null) {
            s.setParameter(params);
        }
        s.initSign(key);
        s.update(data);
        return s.sign();
    }

    /** Whether the JDK's software `provider` accepts `sig` over `data`. */
    static boolean verifies(String provider, String algorithm, AlgorithmParameterSpec params, PublicKey key,
            byte[] data, byte[] sig) throws GeneralSecurityException {
        Signature v = Signature.getInstance(algorithm, provider);
        if (params != null) {
            v.setParameter(params);
        }
        v.initVerify(key);
        v.update(data);
        return v.verify(sig);
    }

    static byte[] gcm(int mode, Provider p, Key key, byte[] iv, byte[] input) throws GeneralSecurityException {
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding", p);
        c.init(mode, key, new GCMParameterSpec(128, iv));
        c.updateAAD("header".getBytes());
        return c.doFinal(input);
    }

    public static void main(String[] args) throws Exception {
        Provider p = Security.getProvider("SunPKCS11").configure(args[0]);
        Provider derive = Security.getProvider("SunPKCS11").configure(args[1]);
        Security.addProvider(p);
        Security.addProvider(derive);
        char[] pin = args[2].toCharArray();
        byte[] message = "a message to sign".getBytes();
        SecureRandom random = new SecureRandom();

        // C_Login fails; the token stays usable with the right PIN (the next check).
        check("a wrong PIN is refused (CKR_PIN_INCORRECT)", () -> refused("CKR_PIN_INCORRECT",
                () -> KeyStore.getInstance("PKCS11", p).load(null, "not-the-pin".toCharArray())));

        KeyStore ks = KeyStore.getInstance("PKCS11", p);
        ks.load(null, pin);
        KeyStore.getInstance("PKCS11", derive).load(null, pin);

        check("AES-256-GCM: sealed and opened by the token, and by SunJCE given the same key", () -> {
            // A key Java can hold in software, imported as a session object, so that SunJCE
            // can check the token's output byte for byte.
            byte[] raw = new byte[32];
            random.nextBytes(raw);
            SecretKeySpec spec = new SecretKeySpec(raw, "AES");
            Key imported = javax.crypto.SecretKeyFactory.getInstance("AES", p).translateKey(spec);
            byte[] iv = new byte[12];
            random.nextBytes(iv);
            byte[] sealed = gcm(Cipher.ENCRYPT_MODE, p, imported, iv, message);
            byte[] bySunJce = sunJceGcm(raw, iv, message);
            require(Arrays.equals(sealed, bySunJce), "the token's ciphertext differs from SunJCE's");
            require(Arrays.equals(gcm(Cipher.DECRYPT_MODE, p, imported, iv, sealed), message), "round trip");
        });

        check("AES-256-GCM with a generated key; a forged tag is refused (AEADBadTagException)", () -> {
            KeyGenerator kg = KeyGenerator.getInstance("AES", p);
            kg.init(256);
            SecretKey key = kg.generateKey();
            require(key.getEncoded() == null, "a generated (sensitive) key's value was readable");
            byte[] iv = new byte[12];
            random.nextBytes(iv);
            byte[] sealed = gcm(Cipher.ENCRYPT_MODE, p, key, iv, message);
            require(Arrays.equals(gcm(Cipher.DECRYPT_MODE, p, key, iv, sealed), message), "round trip");
            sealed[sealed.length - 1] ^= 1;
            try {
                gcm(Cipher.DECRYPT_MODE, p, key, iv, sealed);
                throw new AssertionError("a forged tag was accepted");
            } catch (AEADBadTagException expected) {
                // As SunJCE does.
            }
        });

        check("AES-128-CBC-PAD round trip", () -> {
            KeyGenerator kg = KeyGenerator.getInstance("AES", p);
            kg.init(128);
            SecretKey key = kg.generateKey();
            Cipher c = Cipher.getInstance("AES/CBC/PKCS5Padding", p);
            c.init(Cipher.ENCRYPT_MODE, key);
            byte[] sealed = c.doFinal(new byte[100]);
            require(sealed.length == 112, "padded length " + sealed.length);
            c.init(Cipher.DECRYPT_MODE, key, new IvParameterSpec(c.getIV()));
            require(Arrays.equals(c.doFinal(sealed), new byte[100]), "round trip");
        });

        check("RSA-2048: SHA256withRSA and RSASSA-PSS verified by SunRsaSign; PKCS#1 v1.5 decryption", () -> {
            KeyPairGenerator g = KeyPairGenerator.getInstance("RSA", p);
            g.initialize(2048);
            KeyPair pair = g.generateKeyPair();
            require(pair.getPrivate().getEncoded() == null, "the private key's value was readable");
            PublicKey pub = soft(pair.getPublic(), "RSA");

            byte[] sig = sign(p, "SHA256withRSA", null, pair.getPrivate(), message);
            require(verifies("SunRsaSign", "SHA256withRSA", null, pub, message, sig),
                    "SunRsaSign rejects the token's PKCS#1 v1.5 signature");
            require(!verifies("SunRsaSign", "SHA256withRSA", null, pub, "another message".getBytes(), sig),
                    "the signature verifies for another message");

            PSSParameterSpec pss = new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1);
            byte[] psig = sign(p, "RSASSA-PSS", pss, pair.getPrivate(), message);
            require(verifies("SunRsaSign", "RSASSA-PSS", pss, pub, message, psig),
                    "SunRsaSign rejects the token's PSS signature");

            Cipher enc = Cipher.getInstance("RSA/ECB/PKCS1Padding", "SunJCE");
            enc.init(Cipher.ENCRYPT_MODE, pub);
            byte[] sealed = enc.doFinal("a secret".getBytes());
            Cipher dec = Cipher.getInstance("RSA/ECB/PKCS1Padding", p);
            dec.init(Cipher.DECRYPT_MODE, pair.getPrivate());
            require(Arrays.equals(dec.doFinal(sealed), "a secret".getBytes()), "decryption");
        });

        check("ECDSA P-256: SHA256withECDSA verified by SunEC", () -> {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC", p);
            g.initialize(new ECGenParameterSpec("secp256r1"));
            KeyPair pair = g.generateKeyPair();
            byte[] sig = sign(p, "SHA256withECDSA", null, pair.getPrivate(), message);
            require(verifies("SunEC", "SHA256withECDSA", null, soft(pair.getPublic(), "EC"), message, sig),
                    "SunEC rejects the token's signature");
        });

        check("ECDH: refused without CKA_DERIVE (CKR_KEY_FUNCTION_NOT_PERMITTED), agreed with SunEC with it", () -> {
            KeyPairGenerator peerGen = KeyPairGenerator.getInstance("EC", "SunEC");
            peerGen.initialize(new ECGenParameterSpec("secp256r1"));
            KeyPair peer = peerGen.generateKeyPair();

            KeyPairGenerator plain = KeyPairGenerator.getInstance("EC", p);
            plain.initialize(new ECGenParameterSpec("secp256r1"));
            KeyPair noDerive = plain.generateKeyPair();
            refused("CKR_KEY_FUNCTION_NOT_PERMITTED", () -> {
                KeyAgreement ka = KeyAgreement.getInstance("ECDH", p);
                ka.init(noDerive.getPrivate());
                ka.doPhase(peer.getPublic(), true);
                ka.generateSecret();
            });

            KeyPairGenerator g = KeyPairGenerator.getInstance("EC", derive);
            g.initialize(new ECGenParameterSpec("secp256r1"));
            KeyPair mine = g.generateKeyPair();
            KeyAgreement ka = KeyAgreement.getInstance("ECDH", derive);
            ka.init(mine.getPrivate());
            ka.doPhase(peer.getPublic(), true);
            byte[] ours = ka.generateSecret();
            KeyAgreement kb = KeyAgreement.getInstance("ECDH", "SunEC");
            kb.init(peer.getPrivate());
            kb.doPhase(soft(mine.getPublic(), "EC"), true);
            require(Arrays.equals(ours, kb.generateSecret()), "the two sides' secrets differ");
        });

        check("SHA-256 equals SUN's; HmacSHA256 with a generated key; SecureRandom", () -> {
            byte[] data = new byte[70_000];
            random.nextBytes(data);
            require(Arrays.equals(MessageDigest.getInstance("SHA-256", p).digest(data),
                    MessageDigest.getInstance("SHA-256", "SUN").digest(data)), "digests differ");
            KeyGenerator kg = KeyGenerator.getInstance("HmacSHA256", p);
            kg.init(256);
            Mac mac = Mac.getInstance("HmacSHA256", p);
            mac.init(kg.generateKey());
            byte[] tag = mac.doFinal(message);
            require(tag.length == 32 && Arrays.equals(tag, mac.doFinal(message)), "HMAC not repeatable");
            byte[] a = new byte[32];
            byte[] b = new byte[32];
            SecureRandom r = SecureRandom.getInstance("PKCS11", p);
            r.nextBytes(a);
            r.nextBytes(b);
            require(!Arrays.equals(a, b) && !Arrays.equals(a, new byte[32]), "random bytes repeat");
        });

        check("KeyStore: a secret key stored under an alias is found, used and deleted", () -> {
            KeyGenerator kg = KeyGenerator.getInstance("AES", p);
            kg.init(256);
            ks.setEntry("java-temporary", new KeyStore.SecretKeyEntry(kg.generateKey()), null);
            require(ks.containsAlias("java-temporary"), "alias missing: " + Collections.list(ks.aliases()));
            Key back = ks.getKey("java-temporary", null);
            byte[] iv = new byte[12];
            random.nextBytes(iv);
            require(Arrays.equals(gcm(Cipher.DECRYPT_MODE, p, back, iv, gcm(Cipher.ENCRYPT_MODE, p, back, iv, message)),
                    message), "round trip with the stored key");
            ks.deleteEntry("java-temporary");
            require(!ks.containsAlias("java-temporary"), "still there after deleteEntry");
            KeyStore again = KeyStore.getInstance("PKCS11", p);
            again.load(null, pin);
            require(!again.containsAlias("java-temporary"), "still there after a reload");
        });

        check("KeyStore: a secret key stored as a token object outlives this process (run.sh looks for it)", () -> {
            KeyGenerator kg = KeyGenerator.getInstance("AES", p);
            kg.init(256);
            ks.setEntry("java-kept", new KeyStore.SecretKeyEntry(kg.generateKey()), null);
            KeyStore again = KeyStore.getInstance("PKCS11", p);
            again.load(null, pin);
            require(again.containsAlias("java-kept"), "not found after a reload");
        });

        System.out.println(failed == 0 ? "# all passed" : "# " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }

    static byte[] sunJceGcm(byte[] raw, byte[] iv, byte[] input) throws GeneralSecurityException {
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding", "SunJCE");
        c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(raw, "AES"), new GCMParameterSpec(128, iv));
        c.updateAAD("header".getBytes());
        return c.doFinal(input);
    }
}
