/*
 * ecm_hsm.h — constants of ecm-hsm's own, for C users of libecm_hsm.so.
 *
 * Standard PKCS#11 types and constants come from the OASIS headers (pkcs11.h); this file
 * adds only what the standard leaves to vendors. Every vendor value is
 *   <CKA_|CKM_|CKR_>VENDOR_DEFINED | 0x45434D00 | n      (0x45434D is "ECM")
 * and is mirrored in the Rust module src/vendor.rs; a test keeps the two in sync.
 */
#ifndef ECM_HSM_H
#define ECM_HSM_H

/* The vendor-defined bases (CKA_/CKM_/CKR_VENDOR_DEFINED are all 0x80000000UL). */
#define ECM_VENDOR_PREFIX        0x45434D00UL
#define CKA_ECM_BASE             (0x80000000UL | ECM_VENDOR_PREFIX)
#define CKM_ECM_BASE             (0x80000000UL | ECM_VENDOR_PREFIX)
#define CKR_ECM_BASE             (0x80000000UL | ECM_VENDOR_PREFIX)

/*
 * The envelope key hierarchy (master key -> KEKs -> per-tenant DEKs). Keys of the hierarchy
 * carry these attributes; the module sets all but CKA_ECM_TIER, CKA_ECM_TENANT and
 * CKA_ECM_ROTATION_PERIOD, which a C_GenerateKey template may give. The current DEK of
 * tenant T is the one object matching
 *   { CKA_ECM_TIER = CKT_ECM_DEK, CKA_ECM_TENANT = "T", CKA_ECM_KEY_STATE = CKS_ECM_ACTIVE }.
 */
#define CKA_ECM_TIER             (CKA_ECM_BASE + 0x01UL) /* CK_ULONG: CKT_ECM_* */
#define CKA_ECM_TENANT           (CKA_ECM_BASE + 0x02UL) /* UTF-8 bytes; DEKs only */
#define CKA_ECM_KEY_VERSION      (CKA_ECM_BASE + 0x03UL) /* CK_ULONG: 1, 2, ... per family */
#define CKA_ECM_KEY_STATE        (CKA_ECM_BASE + 0x04UL) /* CK_ULONG: CKS_ECM_* */
#define CKA_ECM_ROTATION_PERIOD  (CKA_ECM_BASE + 0x05UL) /* CK_ULONG: seconds */
#define CKA_ECM_PARENT_ID        (CKA_ECM_BASE + 0x06UL) /* CKA_UNIQUE_ID of the wrapping key */
#define CKA_ECM_CREATED_AT       (CKA_ECM_BASE + 0x07UL) /* CK_ULONG: Unix seconds */
#define CKA_ECM_ROTATED_AT       (CKA_ECM_BASE + 0x08UL) /* CK_ULONG: Unix seconds, 0 if never */
#define CKA_ECM_NEXT_ROTATION    (CKA_ECM_BASE + 0x09UL) /* CK_ULONG: Unix seconds */

/* Values of CKA_ECM_TIER. */
#define CKT_ECM_MASTER           0x1UL
#define CKT_ECM_KEK              0x2UL
#define CKT_ECM_DEK              0x3UL

/* Values of CKA_ECM_KEY_STATE. */
#define CKS_ECM_ACTIVE           0x1UL /* the current version: all its functions */
#define CKS_ECM_DECRYPT_ONLY     0x2UL /* superseded: decrypt / unwrap only */

#endif /* ECM_HSM_H */
