//! PKCS#11 3.2's `CKA_ENCAPSULATE_TEMPLATE` (ML-KEM public keys) and
//! `CKA_DECAPSULATE_TEMPLATE` (private keys) through the C ABI: set at generation, read back
//! as attribute arrays, imposed on the templates of `C_EncapsulateKey`/`C_DecapsulateKey` as
//! `CKA_UNWRAP_TEMPLATE` is on `C_UnwrapKey`; a conflicting template is
//! `CKR_TEMPLATE_INCONSISTENT`, vendor attributes and nested arrays are refused inside, and
//! each refusal creates nothing. Raw calls for the arrays: `cryptoki` 0.12 names neither.
#![allow(unsafe_code)]

mod common;
mod pq_support;
use common::logged_in;
use common::raw::{generate_key_pair, load_raw, ulen};
use pq_support::*;

use std::ffi::c_void;
use std::ptr::null_mut;

use cryptoki::object::{Attribute, AttributeType, KeyType, MlKemParameterSetType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;

fn array_attribute(kind: CK_ATTRIBUTE_TYPE, entries: &mut [CK_ATTRIBUTE]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: kind,
        pValue: entries.as_mut_ptr() as *mut c_void,
        ulValueLen: ulen(size_of_val(entries)),
    }
}

/// `C_GenerateKeyPair` of an ML-KEM-512 pair with `public_extra` and `private_extra` added
/// to the usual templates (raw, for the attribute arrays); the pair or the code.
fn kem_pair_with(
    s: &Session,
    public_extra: Vec<CK_ATTRIBUTE>,
    private_extra: Vec<CK_ATTRIBUTE>,
) -> Result<(ObjectHandle, ObjectHandle), CK_RV> {
    let mut public = raw_template(&[
        Attribute::ParameterSet(MlKemParameterSetType::ML_KEM_512.into()),
        Attribute::Encapsulate(true),
    ]);
    public.extend(public_extra);
    let mut private = raw_template(&[Attribute::Decapsulate(true), Attribute::Sensitive(true)]);
    private.extend(private_extra);
    let (rv, pk, sk) =
        generate_key_pair(&load_raw(), s.handle(), CKM_ML_KEM_KEY_PAIR_GEN, &mut public, &mut private);
    if rv != CKR_OK {
        return Err(rv);
    }
    Ok((handle_of(s, pk), handle_of(s, sk)))
}

fn read_ulong(s: &Session, key: ObjectHandle, kind: AttributeType) -> Attribute {
    s.get_attributes(key, &[kind]).unwrap().remove(0)
}

isolated_test!(
    fn kem_templates_are_imposed_on_the_keys_made() {
        let (_p, _slot, s) = logged_in();
        let (aes, yes, no) = (CKK_AES, CK_TRUE, CK_FALSE);
        let mut encapsulate_entries = [
            common::raw::attr(CKA_KEY_TYPE, &aes),
            common::raw::attr(CKA_EXTRACTABLE, &no),
            common::raw::attr(CKA_ENCRYPT, &yes),
        ];
        let mut decapsulate_entries =
            [common::raw::attr(CKA_KEY_TYPE, &aes), common::raw::attr(CKA_DECRYPT, &yes)];
        let (public, private) = kem_pair_with(
            &s,
            vec![array_attribute(CKA_ENCAPSULATE_TEMPLATE, &mut encapsulate_entries)],
            vec![array_attribute(CKA_DECAPSULATE_TEMPLATE, &mut decapsulate_entries)],
        )
        .unwrap();

        // Read back: a length query gives the array's size in CK_ATTRIBUTEs.
        let lib = load_raw();
        for (key, kind, n) in [(public, CKA_ENCAPSULATE_TEMPLATE, 3), (private, CKA_DECAPSULATE_TEMPLATE, 2)]
        {
            let mut t = [CK_ATTRIBUTE { type_: kind, pValue: null_mut(), ulValueLen: 0 }];
            // SAFETY: one entry with a NULL value: a length query.
            let rv = unsafe { lib.C_GetAttributeValue(s.handle(), key.handle(), t.as_mut_ptr(), 1) };
            assert_eq!(rv, CKR_OK);
            assert_eq!(t[0].ulValueLen, ulen(n * size_of::<CK_ATTRIBUTE>()));
        }
        // Not offered on the other half, nor on other key types.
        let mut t = [CK_ATTRIBUTE { type_: CKA_DECAPSULATE_TEMPLATE, pValue: null_mut(), ulValueLen: 0 }];
        // SAFETY: as above.
        let rv = unsafe { lib.C_GetAttributeValue(s.handle(), public.handle(), t.as_mut_ptr(), 1) };
        assert_eq!(rv, CKR_ATTRIBUTE_TYPE_INVALID);

        // The caller names only the class: the template gives the rest.
        let (rv, _, ciphertext, sent) =
            encapsulate(&s, public, &[Attribute::Class(ObjectClass::SECRET_KEY)], Some(4096));
        assert_eq!(rv, CKR_OK);
        let sent = handle_of(&s, sent);
        assert_eq!(read_ulong(&s, sent, AttributeType::KeyType), Attribute::KeyType(KeyType::AES));
        assert_eq!(read_ulong(&s, sent, AttributeType::Extractable), Attribute::Extractable(false));
        assert_eq!(read_ulong(&s, sent, AttributeType::Encrypt), Attribute::Encrypt(true));
        let (rv, received) = decapsulate(&s, private, &[], &ciphertext);
        assert_eq!(rv, CKR_OK);
        let received = handle_of(&s, received);
        assert_eq!(read_ulong(&s, received, AttributeType::KeyType), Attribute::KeyType(KeyType::AES));
        assert_eq!(read_ulong(&s, received, AttributeType::Decrypt), Attribute::Decrypt(true));
        // Both hold the same AES key: what one encrypts the other decrypts.
        let mut iv = [3u8; 12];
        let sealed = s.encrypt(&common::objects::gcm(&mut iv, b""), sent, b"shared").unwrap();
        assert_eq!(s.decrypt(&common::objects::gcm(&mut iv, b""), received, &sealed).unwrap(), b"shared");

        // A caller's entry that contradicts the key's template: refused, nothing made.
        let before = count(&s);
        let (rv, _, _, made) = encapsulate(&s, public, &[Attribute::Extractable(true)], Some(4096));
        assert_eq!((rv, made), (CKR_TEMPLATE_INCONSISTENT, CK_INVALID_HANDLE));
        let (rv, _, _, _) = encapsulate(&s, public, &[Attribute::KeyType(KeyType::GENERIC_SECRET)], None);
        assert_eq!(rv, CKR_TEMPLATE_INCONSISTENT, "a size query makes the same checks");
        let (rv, _) = decapsulate(&s, private, &[Attribute::KeyType(KeyType::GENERIC_SECRET)], &ciphertext);
        assert_eq!(rv, CKR_TEMPLATE_INCONSISTENT);
        // Restating the template's values is no conflict.
        let (rv, made) = decapsulate(
            &s,
            private,
            &[Attribute::KeyType(KeyType::AES), Attribute::Decrypt(true)],
            &ciphertext,
        );
        assert_eq!(rv, CKR_OK);
        assert_unchanged(&s, before + 1);
        s.destroy_object(handle_of(&s, made)).unwrap();

        // Fixed once the key exists (as CKA_UNWRAP_TEMPLATE): C_SetAttributeValue refuses.
        let mut empty: [CK_ATTRIBUTE; 0] = [];
        let mut t = [array_attribute(CKA_ENCAPSULATE_TEMPLATE, &mut empty)];
        // SAFETY: one entry whose (empty) array is live.
        let rv = unsafe { lib.C_SetAttributeValue(s.handle(), public.handle(), t.as_mut_ptr(), 1) };
        assert_eq!(rv, CKR_ATTRIBUTE_READ_ONLY);
        let (rv, _, _, _) = encapsulate(&s, public, &[Attribute::Extractable(true)], None);
        assert_eq!(rv, CKR_TEMPLATE_INCONSISTENT, "the template is still there");
    }
);

isolated_test!(
    fn bad_kem_templates_are_refused_at_generation() {
        let (_p, _slot, s) = logged_in();
        let before = count(&s);
        let yes = CK_TRUE;
        let vendor: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x4543_4D00 | 1;
        // A vendor attribute (the envelope tier's kind) inside either array.
        let tier: CK_ULONG = 1;
        let mut with_vendor = [common::raw::attr(vendor, &tier)];
        let rv = kem_pair_with(&s, vec![array_attribute(CKA_ENCAPSULATE_TEMPLATE, &mut with_vendor)], vec![])
            .err();
        assert_eq!(rv, Some(CKR_ATTRIBUTE_VALUE_INVALID));
        let rv = kem_pair_with(&s, vec![], vec![array_attribute(CKA_DECAPSULATE_TEMPLATE, &mut with_vendor)])
            .err();
        assert_eq!(rv, Some(CKR_ATTRIBUTE_VALUE_INVALID));
        // An array inside an array.
        let mut inner = [common::raw::attr(CKA_SENSITIVE, &yes)];
        let mut nested = [array_attribute(CKA_UNWRAP_TEMPLATE, &mut inner)];
        let rv =
            kem_pair_with(&s, vec![], vec![array_attribute(CKA_DECAPSULATE_TEMPLATE, &mut nested)]).err();
        assert_eq!(rv, Some(CKR_ATTRIBUTE_VALUE_INVALID));
        // On the wrong half of the pair.
        let mut plain = [common::raw::attr(CKA_SENSITIVE, &yes)];
        let rv = kem_pair_with(&s, vec![array_attribute(CKA_DECAPSULATE_TEMPLATE, &mut plain)], vec![]).err();
        assert_eq!(rv, Some(CKR_ATTRIBUTE_TYPE_INVALID));
        assert_unchanged(&s, before);
        // Not on an ML-DSA key.
        let mut public = raw_template(&[Attribute::ParameterSet(
            cryptoki::object::MlDsaParameterSetType::ML_DSA_44.into(),
        )]);
        public.push(array_attribute(CKA_ENCAPSULATE_TEMPLATE, &mut plain));
        let (rv, _, _) =
            generate_key_pair(&load_raw(), s.handle(), CKM_ML_DSA_KEY_PAIR_GEN, &mut public, &mut []);
        assert_eq!(rv, CKR_ATTRIBUTE_TYPE_INVALID);
        assert_unchanged(&s, before);
        // Without templates the pair still works as before.
        let (public, private) = kem_pair_with(&s, vec![], vec![]).unwrap();
        let (rv, _, ciphertext, _) = encapsulate(&s, public, &aes_template(), Some(4096));
        assert_eq!(rv, CKR_OK);
        assert_eq!(decapsulate(&s, private, &aes_template(), &ciphertext).0, CKR_OK);
    }
);
