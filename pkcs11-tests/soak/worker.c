/*
 * worker: one process of the soak test (pkcs11-tests/soak.sh).
 *
 *   worker run   <module.so> <user-pin> <ack-log> <threads> <seconds> <name>
 *   worker check <module.so> <user-pin> <ack-log>...
 *
 * `run` repeats rounds until <seconds> have passed: C_Initialize, <threads> threads that each
 * open a session, log in, generate a token AES key, seal a known text under it with AES-GCM,
 * open it again and compare, then (at times) log out, close the session; the threads are
 * joined and the round ends with C_Finalize. After the module has acknowledged a key (the key
 * generated, the text sealed and opened) the thread appends one line to <ack-log>:
 *   ACK <label> <iv hex> <ciphertext hex>
 * with a single write(2) on an O_APPEND descriptor, so a kill -9 leaves whole lines only
 * (or a last line without its newline, which `check` ignores). Any code other than the ones
 * concurrency explains (another thread's C_Logout) is printed as `ERR` and fails the worker.
 *
 * `check` opens the token once the workers are gone: every acknowledged key must be there
 * exactly once (by label) and open its sealed text; the token's object handles must be
 * distinct. Exit status 0 only if all holds.
 *
 * Built by soak.sh with `cc -O2 -pthread -o worker worker.c -ldl`. No PKCS#11 header is
 * needed: the few types used are declared here and in ../ck_abi.h (Linux ABI: CK_ULONG is
 * unsigned long).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../ck_abi.h"

typedef struct {
    CK_ULONG type;
    void *pValue;
    CK_ULONG ulValueLen;
} CK_ATTRIBUTE;

typedef struct {
    CK_ULONG mechanism;
    void *pParameter;
    CK_ULONG ulParameterLen;
} CK_MECHANISM;

typedef struct {
    CK_BYTE *pIv;
    CK_ULONG ulIvLen;
    CK_ULONG ulIvBits;
    CK_BYTE *pAAD;
    CK_ULONG ulAADLen;
    CK_ULONG ulTagBits;
} CK_GCM_PARAMS;

typedef struct {
    void *CreateMutex, *DestroyMutex, *LockMutex, *UnlockMutex;
    CK_ULONG flags;
    void *pReserved;
} CK_C_INITIALIZE_ARGS;

#define CKR_USER_ALREADY_LOGGED_IN 0x100UL
#define CKR_USER_NOT_LOGGED_IN 0x101UL
#define CKF_OS_LOCKING_OK 0x2UL
#define CKO_SECRET_KEY 4UL
#define CKK_AES 0x1fUL
#define CKA_CLASS 0x0UL
#define CKA_TOKEN 0x1UL
#define CKA_LABEL 0x3UL
#define CKA_KEY_TYPE 0x100UL
#define CKA_SENSITIVE 0x103UL
#define CKA_ENCRYPT 0x104UL
#define CKA_DECRYPT 0x105UL
#define CKA_VALUE_LEN 0x161UL
#define CKM_AES_KEY_GEN 0x1080UL
#define CKM_AES_GCM 0x1087UL

static CK_FUNCTION_LIST *f;
#define CALL(name, ...) ((CK_RV(*)())f->fn[F_##name])(__VA_ARGS__)

static const char *pin;
static const char *name;
static int ack_fd = -1;
static CK_ULONG slot;
static time_t deadline;
static int errors;
static pthread_mutex_t errors_lock = PTHREAD_MUTEX_INITIALIZER;
/* Work holds it shared, C_Logout exclusive: a logout ends the visibility of the process's
 * private keys (their handles answer CKR_KEY_HANDLE_INVALID), so it waits until no unit of
 * work is in flight. Logins still race each other and every other call. */
static pthread_rwlock_t logout_lock = PTHREAD_RWLOCK_INITIALIZER;
#define KEEP 8 /* keys a thread keeps; older ones are destroyed, so the store stays small */

static void err(const char *what, CK_RV rv)
{
    pthread_mutex_lock(&errors_lock);
    errors++;
    pthread_mutex_unlock(&errors_lock);
    printf("ERR %s %s rv=0x%lx\n", name, what, rv);
    fflush(stdout);
}

static void hex(char *out, const CK_BYTE *in, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
}

static int unhex(CK_BYTE *out, const char *in, size_t max)
{
    size_t n = strlen(in) / 2;
    if (n > max)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (sscanf(in + 2 * i, "%2hhx", &out[i]) != 1)
            return -1;
    return (int)n;
}

static void plaintext(char *out, size_t n, const char *label)
{
    snprintf(out, n, "soak record sealed under %s", label);
}

/* AES-GCM with a 12-byte IV, no AAD, 128-bit tag; `encrypt` selects the direction. */
static CK_RV gcm(CK_ULONG s, CK_ULONG key, CK_BYTE *iv, int encrypt, CK_BYTE *in, CK_ULONG n, CK_BYTE *out,
                 CK_ULONG *out_len)
{
    CK_GCM_PARAMS p = {iv, 12, 96, NULL, 0, 128};
    CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof p};
    CK_RV rv = encrypt ? CALL(EncryptInit, s, &m, key) : CALL(DecryptInit, s, &m, key);
    if (rv != CKR_OK)
        return rv;
    return encrypt ? CALL(Encrypt, s, in, n, out, out_len) : CALL(Decrypt, s, in, n, out, out_len);
}

static void log_line(const char *line)
{
    ssize_t k = (ssize_t)strlen(line);
    if (write(ack_fd, line, (size_t)k) != k)
        err("write the ack log", 0);
}

struct kept {
    char label[KEEP][96];
    unsigned n;
};

/* One unit of work: a key generated, a record sealed and opened under it, acknowledged. */
static void one(unsigned tid, unsigned n, unsigned *seed, struct kept *kept)
{
    int logout = rand_r(seed) % 16 == 0;
    pthread_rwlock_rdlock(&logout_lock);
    CK_ULONG s;
    CK_RV rv = CALL(OpenSession, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        err("C_OpenSession", rv);
        return;
    }
    CK_RV login = rv = CALL(Login, s, CKU_USER, pin, (CK_ULONG)strlen(pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        err("C_Login", rv);
        goto close;
    }
    /* Destroy the oldest kept key first; DELETING is logged before, DELETED after. */
    if (kept->n == KEEP) {
        unsigned i = n % KEEP;
        char line[160];
        snprintf(line, sizeof line, "DELETING %s\n", kept->label[i]);
        log_line(line);
        /* Found again by label: a C_Logout since (any thread's) invalidated private handles. */
        CK_ATTRIBUTE by[] = {{CKA_LABEL, kept->label[i], strlen(kept->label[i])}};
        CK_ULONG old = 0, found = 0;
        rv = CALL(FindObjectsInit, s, by, 1UL);
        if (rv == CKR_OK)
            rv = CALL(FindObjects, s, &old, 1UL, &found);
        CK_RV final = CALL(FindObjectsFinal, s);
        if (rv != CKR_OK || final != CKR_OK || found != 1) {
            CK_ULONG info[4] = {0};
            CALL(GetSessionInfo, s, info);
            printf("ERR-DETAIL %s: %s found %lu times; this unit's C_Login gave 0x%lx, session state %lu\n",
                   name, kept->label[i], found, login, info[1]);
            err("find a kept key again", rv != CKR_OK ? rv : final);
            goto close;
        }
        rv = CALL(DestroyObject, s, old);
        if (rv != CKR_OK) {
            err("C_DestroyObject", rv);
            goto close;
        }
        snprintf(line, sizeof line, "DELETED %s\n", kept->label[i]);
        log_line(line);
        kept->n--;
        memcpy(kept->label[i], kept->label[kept->n], sizeof kept->label[i]);
    }
    char label[96];
    snprintf(label, sizeof label, "soak-%s-%d-%u-%u", name, (int)getpid(), tid, n);
    CK_ULONG class = CKO_SECRET_KEY, type = CKK_AES, len = 32;
    CK_BYTE yes = 1;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &class, sizeof class}, {CKA_KEY_TYPE, &type, sizeof type}, {CKA_VALUE_LEN, &len, sizeof len},
        {CKA_TOKEN, &yes, 1},              {CKA_SENSITIVE, &yes, 1},          {CKA_ENCRYPT, &yes, 1},
        {CKA_DECRYPT, &yes, 1},            {CKA_LABEL, label, strlen(label)},
    };
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG key;
    rv = CALL(GenerateKey, s, &gen, t, sizeof t / sizeof t[0], &key);
    if (rv != CKR_OK) {
        err("C_GenerateKey", rv);
        goto close;
    }
    CK_BYTE iv[12], ct[256], back[256];
    rv = CALL(GenerateRandom, s, iv, sizeof iv);
    if (rv != CKR_OK) {
        err("C_GenerateRandom", rv);
        goto close;
    }
    char text[160];
    plaintext(text, sizeof text, label);
    CK_ULONG ct_len = sizeof ct, back_len = sizeof back;
    rv = gcm(s, key, iv, 1, (CK_BYTE *)text, strlen(text), ct, &ct_len);
    if (rv == CKR_OK)
        rv = gcm(s, key, iv, 0, ct, ct_len, back, &back_len);
    if (rv != CKR_OK) {
        err("AES-GCM round trip", rv);
        goto close;
    }
    if (back_len != strlen(text) || memcmp(back, text, back_len) != 0) {
        err("AES-GCM round trip gave other bytes", 0);
        goto close;
    }
    char line[700], ivh[25], cth[513];
    hex(ivh, iv, sizeof iv);
    hex(cth, ct, ct_len);
    snprintf(line, sizeof line, "ACK %s %s %s\n", label, ivh, cth);
    log_line(line);
    memcpy(kept->label[kept->n], label, sizeof label);
    kept->n++;
close:
    rv = CALL(CloseSession, s);
    if (rv != CKR_OK)
        err("C_CloseSession", rv);
    pthread_rwlock_unlock(&logout_lock);
    if (logout) {
        pthread_rwlock_wrlock(&logout_lock);
        rv = CALL(OpenSession, slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
        if (rv == CKR_OK) {
            rv = CALL(Logout, s);
            if (rv != CKR_OK && rv != CKR_USER_NOT_LOGGED_IN)
                err("C_Logout", rv);
            CALL(CloseSession, s);
        }
        pthread_rwlock_unlock(&logout_lock);
    }
}

struct round {
    unsigned tid;
    time_t until;
};

static void *thread(void *arg)
{
    struct round *r = arg;
    unsigned seed = (unsigned)getpid() * 31u + r->tid;
    struct kept kept = {.n = 0};
    for (unsigned n = 0; time(NULL) < r->until; n++)
        one(r->tid, n + (unsigned)time(NULL) * 1000u, &seed, &kept);
    return NULL;
}

static int load(const char *module)
{
    void *lib = dlopen(module, RTLD_NOW);
    if (!lib) {
        fprintf(stderr, "dlopen %s: %s\n", module, dlerror());
        return -1;
    }
    CK_RV (*get)(CK_FUNCTION_LIST **) = (CK_RV(*)(CK_FUNCTION_LIST **))dlsym(lib, "C_GetFunctionList");
    if (!get || get(&f) != CKR_OK) {
        fprintf(stderr, "C_GetFunctionList failed\n");
        return -1;
    }
    return 0;
}

static CK_RV initialize(void)
{
    CK_C_INITIALIZE_ARGS args = {NULL, NULL, NULL, NULL, CKF_OS_LOCKING_OK, NULL};
    CK_RV rv = CALL(Initialize, &args);
    if (rv != CKR_OK)
        return rv;
    CK_ULONG slots[16], n = 16;
    rv = CALL(GetSlotList, 1, slots, &n);
    if (rv == CKR_OK && n == 0)
        rv = 0x3UL; /* no token */
    slot = slots[0];
    return rv;
}

static int run(int threads, int seconds)
{
    deadline = time(NULL) + seconds;
    unsigned seed = (unsigned)getpid();
    while (time(NULL) < deadline) {
        CK_RV rv = initialize();
        if (rv != CKR_OK) {
            err("C_Initialize", rv);
            return 1;
        }
        time_t until = time(NULL) + 1 + rand_r(&seed) % 3;
        if (until > deadline)
            until = deadline;
        pthread_t t[64];
        struct round r[64];
        for (int i = 0; i < threads && i < 64; i++) {
            r[i].tid = (unsigned)i;
            r[i].until = until;
            pthread_create(&t[i], NULL, thread, &r[i]);
        }
        for (int i = 0; i < threads && i < 64; i++)
            pthread_join(t[i], NULL);
        rv = CALL(Finalize, NULL);
        if (rv != CKR_OK)
            err("C_Finalize", rv);
    }
    printf("DONE %s errors=%d\n", name, errors);
    return errors != 0;
}

static int by_handle(const void *a, const void *b)
{
    CK_ULONG x = *(const CK_ULONG *)a, y = *(const CK_ULONG *)b;
    return (x > y) - (x < y);
}

struct entry {
    char label[96];
    char iv[25];
    char ct[513];
    int state; /* 0 acknowledged, 1 being destroyed, 2 destroyed */
};

static int by_label(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->label, ((const struct entry *)b)->label);
}

/* Reads every whole line of the ack logs into a table sorted by label. */
static struct entry *read_logs(int nlogs, char **logs, size_t *count, int *torn, int *malformed)
{
    size_t n = 0, cap = 1024;
    struct entry *e = malloc(cap * sizeof *e);
    for (int i = 0; i < nlogs; i++) {
        FILE *in = fopen(logs[i], "r");
        if (!in)
            continue;
        char line[1024];
        while (fgets(line, sizeof line, in)) {
            size_t len = strlen(line);
            if (len == 0 || line[len - 1] != '\n') {
                (*torn)++; /* the worker was killed mid-write: nothing was acknowledged */
                continue;
            }
            struct entry x = {.state = 0};
            if (sscanf(line, "ACK %95s %24s %512s", x.label, x.iv, x.ct) == 3) {
                x.state = 0;
            } else if (sscanf(line, "DELETING %95s", x.label) == 1) {
                x.state = 1;
            } else if (sscanf(line, "DELETED %95s", x.label) == 1) {
                x.state = 2;
            } else {
                printf("check: malformed line in %s: %s", logs[i], line);
                (*malformed)++;
                continue;
            }
            if (x.state != 0) {
                /* A later line about a label updates the acknowledgement already read. */
                for (size_t j = n; j-- > 0;)
                    if (strcmp(e[j].label, x.label) == 0) {
                        if (x.state > e[j].state)
                            e[j].state = x.state;
                        break;
                    }
                continue;
            }
            if (n == cap)
                e = realloc(e, (cap *= 2) * sizeof *e);
            e[n++] = x;
        }
        fclose(in);
    }
    qsort(e, n, sizeof *e, by_label);
    *count = n;
    return e;
}

static int check(int nlogs, char **logs)
{
    CK_RV rv = initialize();
    CK_ULONG s;
    if (rv == CKR_OK)
        rv = CALL(OpenSession, slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv == CKR_OK)
        rv = CALL(Login, s, CKU_USER, pin, (CK_ULONG)strlen(pin));
    if (rv != CKR_OK) {
        printf("check: cannot open the token: rv=0x%lx\n", rv);
        return 1;
    }
    int missing = 0, duplicated = 0, corrupt = 0, torn = 0, malformed = 0, lingering = 0, live = 0;
    size_t n = 0;
    struct entry *e = read_logs(nlogs, logs, &n, &torn, &malformed);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(e[i].label, e[i - 1].label) == 0) {
            printf("check: label %s acknowledged twice\n", e[i].label);
            duplicated++;
        }
        CK_ATTRIBUTE t[] = {{CKA_LABEL, e[i].label, strlen(e[i].label)}};
        CK_ULONG found[4], count = 0;
        rv = CALL(FindObjectsInit, s, t, 1UL);
        if (rv == CKR_OK)
            rv = CALL(FindObjects, s, found, 4UL, &count);
        CALL(FindObjectsFinal, s);
        if (rv != CKR_OK) {
            printf("check: finding %s failed: rv=0x%lx\n", e[i].label, rv);
            missing++;
            continue;
        }
        if (e[i].state == 2) {
            if (count != 0) {
                printf("check: key %s was destroyed (acknowledged) but is still there\n", e[i].label);
                lingering++;
            }
            continue;
        }
        if (e[i].state == 1 && count == 0)
            continue; /* killed between C_DestroyObject and its acknowledgement */
        if (count == 0) {
            printf("check: acknowledged key %s is missing\n", e[i].label);
            missing++;
            continue;
        }
        live++;
        if (count > 1) {
            printf("check: acknowledged key %s is there %lu times\n", e[i].label, count);
            duplicated++;
        }
        CK_BYTE iv[12], ct[300], back[300];
        CK_ULONG back_len = sizeof back;
        int ct_len = unhex(ct, e[i].ct, sizeof ct);
        char text[160];
        plaintext(text, sizeof text, e[i].label);
        if (unhex(iv, e[i].iv, sizeof iv) != 12 || ct_len < 0 ||
            gcm(s, found[0], iv, 0, ct, (CK_ULONG)ct_len, back, &back_len) != CKR_OK || back_len != strlen(text) ||
            memcmp(back, text, back_len) != 0) {
            printf("check: acknowledged key %s does not open its record\n", e[i].label);
            corrupt++;
        }
    }
    /* Every object handle the token shows is distinct. */
    static CK_ULONG all[1 << 16];
    CK_ULONG total = 0, count = 0;
    rv = CALL(FindObjectsInit, s, NULL, 0UL);
    while (rv == CKR_OK && total < (1 << 16)) {
        rv = CALL(FindObjects, s, all + total, (CK_ULONG)(1 << 16) - total, &count);
        if (rv != CKR_OK || count == 0)
            break;
        total += count;
    }
    CALL(FindObjectsFinal, s);
    qsort(all, total, sizeof all[0], by_handle);
    int same = 0;
    for (CK_ULONG i = 1; i < total; i++)
        same += all[i] == all[i - 1];
    CALL(CloseSession, s);
    CALL(Finalize, NULL);
    printf("check: %zu keys acknowledged (%d present, checked), %d missing, %d duplicated, %d not opening "
           "their record, %d destroyed yet present, %d malformed and %d torn lines (torn: killed "
           "mid-write, ignored), %lu objects, %d duplicate handles\n",
           n, live, missing, duplicated, corrupt, lingering, malformed, torn, total, same);
    free(e);
    return missing || duplicated || corrupt || lingering || malformed || same || rv != CKR_OK;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 8 && strcmp(argv[1], "run") == 0) {
        pin = argv[3];
        name = argv[7];
        ack_fd = open(argv[4], O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (ack_fd < 0 || load(argv[2]) != 0)
            return 2;
        return run(atoi(argv[5]), atoi(argv[6]));
    }
    if (argc >= 5 && strcmp(argv[1], "check") == 0) {
        pin = argv[3];
        name = "check";
        if (load(argv[2]) != 0)
            return 2;
        return check(argc - 4, argv + 4);
    }
    fprintf(stderr, "usage: worker run MODULE PIN ACK-LOG THREADS SECONDS NAME | worker check MODULE PIN ACK-LOG...\n");
    return 2;
}
