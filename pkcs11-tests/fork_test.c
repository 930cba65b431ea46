/*
 * fork_test: checks that the module behaves across fork().
 *
 *   fork_test <module.so> <slot-id> <user-pin>
 *
 * The parent loads the module, initializes it, opens a session on the slot and logs in,
 * then forks. The child must see the inherited instance as not initialized
 * (CKR_CRYPTOKI_NOT_INITIALIZED), then be able to C_Initialize afresh and use the token
 * on its own. After the child exits, the parent's session must still work.
 *
 * Built by run.sh with `cc -o fork_test fork_test.c -ldl`. No PKCS#11 header is needed:
 * the few types used are declared here and in ck_abi.h (Linux/Unix ABI: CK_ULONG is unsigned
 * long, structures are not packed).
 *
 * Exit status 0 only if every check held; each check prints one line.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ck_abi.h"

typedef CK_ULONG CK_SLOT_ID;
typedef CK_ULONG CK_SESSION_HANDLE;
typedef CK_ULONG CK_FLAGS;
typedef CK_ULONG CK_USER_TYPE;

typedef struct {
    CK_SLOT_ID slotID;
    CK_ULONG state;
    CK_FLAGS flags;
    CK_ULONG ulDeviceError;
} CK_SESSION_INFO;

#define CKR_CRYPTOKI_NOT_INITIALIZED 0x190UL
#define CKS_RO_USER_FUNCTIONS 1UL
#define CKS_RW_USER_FUNCTIONS 3UL

typedef CK_RV (*fn_Initialize)(void *);
typedef CK_RV (*fn_Finalize)(void *);
typedef CK_RV (*fn_GetFunctionList)(CK_FUNCTION_LIST **);
typedef CK_RV (*fn_GetSlotList)(unsigned char, CK_SLOT_ID *, CK_ULONG *);
typedef CK_RV (*fn_OpenSession)(CK_SLOT_ID, CK_FLAGS, void *, void *, CK_SESSION_HANDLE *);
typedef CK_RV (*fn_CloseSession)(CK_SESSION_HANDLE);
typedef CK_RV (*fn_GetSessionInfo)(CK_SESSION_HANDLE, CK_SESSION_INFO *);
typedef CK_RV (*fn_Login)(CK_SESSION_HANDLE, CK_USER_TYPE, unsigned char *, CK_ULONG);
typedef CK_RV (*fn_GenerateRandom)(CK_SESSION_HANDLE, CK_BYTE *, CK_ULONG);

static CK_FUNCTION_LIST *f;
static const char *who = "parent";
static int failures;

#define CALL(name, type) ((type)f->fn[F_##name])

static void check(int cond, const char *what, CK_RV rv, CK_RV want)
{
    if (cond) {
        printf("[%s] ok: %s\n", who, what);
    } else {
        printf("[%s] FAIL: %s: rv=0x%lx, expected 0x%lx\n", who, what, rv, want);
        failures++;
    }
    fflush(stdout);
}

static void expect_rv(CK_RV rv, CK_RV want, const char *what)
{
    check(rv == want, what, rv, want);
}

/* Fills buf with random bytes and checks they are not all zero. */
static void random_ok(CK_SESSION_HANDLE s, const char *what)
{
    CK_BYTE buf[32];
    memset(buf, 0, sizeof buf);
    CK_RV rv = CALL(GenerateRandom, fn_GenerateRandom)(s, buf, sizeof buf);
    int nonzero = 0;
    for (size_t i = 0; i < sizeof buf; i++)
        nonzero |= buf[i];
    check(rv == CKR_OK && nonzero, what, rv, CKR_OK);
}

static int slot_listed(CK_SLOT_ID slot, const char *what)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CK_RV rv = CALL(GetSlotList, fn_GetSlotList)(0, slots, &n);
    int found = 0;
    for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++)
        found |= slots[i] == slot;
    check(rv == CKR_OK && found, what, rv, CKR_OK);
    return rv == CKR_OK && found;
}

static int child(CK_SLOT_ID slot, const char *pin, CK_SESSION_HANDLE inherited)
{
    who = "child";
    failures = 0;
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CK_RV rv = CALL(GetSlotList, fn_GetSlotList)(0, slots, &n);
    expect_rv(rv, CKR_CRYPTOKI_NOT_INITIALIZED,
              "C_GetSlotList before C_Initialize -> CKR_CRYPTOKI_NOT_INITIALIZED");
    CK_BYTE b[8];
    rv = CALL(GenerateRandom, fn_GenerateRandom)(inherited, b, sizeof b);
    expect_rv(rv, CKR_CRYPTOKI_NOT_INITIALIZED,
              "C_GenerateRandom on the inherited session -> CKR_CRYPTOKI_NOT_INITIALIZED");

    expect_rv(CALL(Initialize, fn_Initialize)(NULL), CKR_OK, "C_Initialize(NULL)");
    slot_listed(slot, "C_GetSlotList lists the slot");
    CK_SESSION_HANDLE s = 0;
    rv = CALL(OpenSession, fn_OpenSession)(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
    expect_rv(rv, CKR_OK, "C_OpenSession");
    rv = CALL(Login, fn_Login)(s, CKU_USER, (unsigned char *)pin, strlen(pin));
    expect_rv(rv, CKR_OK, "C_Login(CKU_USER)");
    CK_SESSION_INFO info;
    memset(&info, 0, sizeof info);
    rv = CALL(GetSessionInfo, fn_GetSessionInfo)(s, &info);
    check(rv == CKR_OK && info.state == CKS_RO_USER_FUNCTIONS,
          "C_GetSessionInfo: state CKS_RO_USER_FUNCTIONS", rv, CKR_OK);
    random_ok(s, "C_GenerateRandom");
    expect_rv(CALL(CloseSession, fn_CloseSession)(s), CKR_OK, "C_CloseSession");
    expect_rv(CALL(Finalize, fn_Finalize)(NULL), CKR_OK, "C_Finalize");
    return failures == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s <module.so> <slot-id> <user-pin>\n", argv[0]);
        return 2;
    }
    const char *module = argv[1];
    CK_SLOT_ID slot = strtoul(argv[2], NULL, 0);
    const char *pin = argv[3];

    void *h = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        printf("[parent] FAIL: dlopen: %s\n", dlerror());
        return 1;
    }
    fn_GetFunctionList gfl = (fn_GetFunctionList)dlsym(h, "C_GetFunctionList");
    if (!gfl) {
        printf("[parent] FAIL: no C_GetFunctionList symbol\n");
        return 1;
    }
    CK_RV rv = gfl(&f);
    check(rv == CKR_OK && f != NULL, "C_GetFunctionList", rv, CKR_OK);
    if (!f)
        return 1;
    printf("[parent] function list version %u.%u\n", f->version.major, f->version.minor);
    /* Check our hand-written layout against the exported symbols where the module has them. */
    static const struct {
        int index;
        const char *symbol;
    } probes[] = {
        {F_Initialize, "C_Initialize"},       {F_GetFunctionList, "C_GetFunctionList"},
        {F_GetSlotList, "C_GetSlotList"},     {F_OpenSession, "C_OpenSession"},
        {F_Login, "C_Login"},                 {F_GenerateRandom, "C_GenerateRandom"},
        {F_WaitForSlotEvent, "C_WaitForSlotEvent"},
    };
    int layout_ok = 1;
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        void *sym = dlsym(h, probes[i].symbol);
        if (sym && (void *)f->fn[probes[i].index] != sym) {
            printf("[parent] FAIL: function list entry %d is not %s\n", probes[i].index,
                   probes[i].symbol);
            layout_ok = 0;
        }
    }
    check(layout_ok, "function list layout matches the exported symbols", 0, 0);
    if (!layout_ok)
        return 1;

    expect_rv(CALL(Initialize, fn_Initialize)(NULL), CKR_OK, "C_Initialize(NULL)");
    if (!slot_listed(slot, "C_GetSlotList lists the slot"))
        return 1;
    CK_SESSION_HANDLE s = 0;
    rv = CALL(OpenSession, fn_OpenSession)(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                           &s);
    expect_rv(rv, CKR_OK, "C_OpenSession (R/W)");
    rv = CALL(Login, fn_Login)(s, CKU_USER, (unsigned char *)pin, strlen(pin));
    expect_rv(rv, CKR_OK, "C_Login(CKU_USER)");
    random_ok(s, "C_GenerateRandom before fork");
    if (failures)
        return 1;

    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0)
        _exit(child(slot, pin, s));

    int status = 0;
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        return 1;
    }
    int child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (WIFSIGNALED(status))
        printf("[parent] child killed by signal %d\n", WTERMSIG(status));
    check(child_ok, "child exited 0", (CK_RV)status, 0);

    CK_SESSION_INFO info;
    memset(&info, 0, sizeof info);
    rv = CALL(GetSessionInfo, fn_GetSessionInfo)(s, &info);
    check(rv == CKR_OK && info.slotID == slot && info.state == CKS_RW_USER_FUNCTIONS,
          "after the child: session still CKS_RW_USER_FUNCTIONS", rv, CKR_OK);
    random_ok(s, "after the child: C_GenerateRandom on the parent's session");
    expect_rv(CALL(CloseSession, fn_CloseSession)(s), CKR_OK, "C_CloseSession");
    expect_rv(CALL(Finalize, fn_Finalize)(NULL), CKR_OK, "C_Finalize");
    dlclose(h);
    printf("[parent] %s\n", failures == 0 ? "all checks passed" : "some checks FAILED");
    return failures == 0 ? 0 : 1;
}
