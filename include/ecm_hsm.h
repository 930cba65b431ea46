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

#endif /* ECM_HSM_H */
