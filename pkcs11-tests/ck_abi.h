/*
 * The part of the PKCS#11 C ABI that the C test programs (fork_test.c, soak/worker.c) share:
 * the basic types, the CK_FUNCTION_LIST layout and the few codes both use. Declared here
 * rather than taken from a PKCS#11 header so that the programs build with a C compiler alone
 * (Linux/Unix ABI: CK_ULONG is unsigned long, structures are not packed). Each program
 * declares the further types and codes it needs itself.
 */
#ifndef ECM_HSM_CK_ABI_H
#define ECM_HSM_CK_ABI_H

typedef unsigned long CK_ULONG;
typedef CK_ULONG CK_RV;
typedef unsigned char CK_BYTE;

typedef struct {
    unsigned char major;
    unsigned char minor;
} CK_VERSION;

#define CKR_OK 0x0UL
#define CKF_RW_SESSION 0x2UL
#define CKF_SERIAL_SESSION 0x4UL
#define CKU_USER 1UL

/* The 68 entries of the PKCS#11 2.40 CK_FUNCTION_LIST, in the standard order. */
enum {
    F_Initialize, F_Finalize, F_GetInfo, F_GetFunctionList, F_GetSlotList, F_GetSlotInfo,
    F_GetTokenInfo, F_GetMechanismList, F_GetMechanismInfo, F_InitToken, F_InitPIN, F_SetPIN,
    F_OpenSession, F_CloseSession, F_CloseAllSessions, F_GetSessionInfo, F_GetOperationState,
    F_SetOperationState, F_Login, F_Logout, F_CreateObject, F_CopyObject, F_DestroyObject,
    F_GetObjectSize, F_GetAttributeValue, F_SetAttributeValue, F_FindObjectsInit, F_FindObjects,
    F_FindObjectsFinal, F_EncryptInit, F_Encrypt, F_EncryptUpdate, F_EncryptFinal, F_DecryptInit,
    F_Decrypt, F_DecryptUpdate, F_DecryptFinal, F_DigestInit, F_Digest, F_DigestUpdate,
    F_DigestKey, F_DigestFinal, F_SignInit, F_Sign, F_SignUpdate, F_SignFinal, F_SignRecoverInit,
    F_SignRecover, F_VerifyInit, F_Verify, F_VerifyUpdate, F_VerifyFinal, F_VerifyRecoverInit,
    F_VerifyRecover, F_DigestEncryptUpdate, F_DecryptDigestUpdate, F_SignEncryptUpdate,
    F_DecryptVerifyUpdate, F_GenerateKey, F_GenerateKeyPair, F_WrapKey, F_UnwrapKey, F_DeriveKey,
    F_SeedRandom, F_GenerateRandom, F_GetFunctionStatus, F_CancelFunction, F_WaitForSlotEvent,
    F_COUNT
};

/* Generic entry type; each is cast to its real prototype before the call. */
typedef void (*ck_fn)(void);

typedef struct {
    CK_VERSION version;
    ck_fn fn[F_COUNT];
} CK_FUNCTION_LIST;

#endif
