//! Links: the key of a segment's `g` links, a `g` link, and linking in place a record
//! written unlinked (what a segment's linking thread does).

use super::parse::split_point;
use super::{LINK_LEN, LINK_PREFIX, Malformed, UNLINKED, link_digits};
use crate::mechanism::{digest, mac};

/// The derivation label of a segment's GMAC key ([`segment_key`]).
const SEGMENT_KEY_LABEL: &[u8] = b"ecm-hsm audit segment v1";

/// The key of the `g` links of the segment opened by the register record whose link is
/// `opened_by`: HMAC-SHA256(audit key, label ‖ `opened_by`). A key of its own per segment
/// keeps the GMAC nonces (sequence numbers) from ever repeating under one key, even if a
/// segment number came back.
pub fn segment_key(audit_key: &[u8], opened_by: &[u8; LINK_LEN]) -> mac::GmacKey {
    let mut input = [0u8; SEGMENT_KEY_LABEL.len() + LINK_LEN];
    input[..SEGMENT_KEY_LABEL.len()].copy_from_slice(SEGMENT_KEY_LABEL);
    input[SEGMENT_KEY_LABEL.len()..].copy_from_slice(opened_by);
    let key = zeroize::Zeroizing::new(mac::hmac_sha256(audit_key, &input));
    mac::GmacKey::new(&key)
}

/// The `g` link of the record at `seq` of a segment: the GMAC of `chained` (the previous
/// link and the record's covered bytes), as the chain carries it.
pub fn gmac_link(key: &mac::GmacKey, seq: u64, chained: &[u8]) -> [u8; LINK_LEN] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&seq.to_be_bytes());
    let mut link = [0u8; LINK_LEN];
    link[..mac::GMAC_LEN].copy_from_slice(&key.tag(nonce, chained));
    link
}

/// Links an unlinked segment record in place: `line` (without its `\n`), the record at `seq`,
/// gets the link that follows `prev`, computed as [`verify`](super::verify) checks it (GMAC
/// under `key` for a `g` record, SHA-256 for `h`); the link. `scratch` is working space.
/// Nothing is changed when the line is not an unlinked `g` or `h` record, or is a `g` one
/// and there is no key.
pub fn link_line(
    line: &mut [u8],
    seq: u64,
    prev: &[u8; LINK_LEN],
    key: Option<&mac::GmacKey>,
    scratch: &mut Vec<u8>,
) -> Result<[u8; LINK_LEN], Malformed> {
    let (covered_end, auth) = split_point(line)?;
    let link_at = covered_end + LINK_PREFIX.len();
    let digits = link_digits(auth);
    if line[link_at..link_at + digits] != UNLINKED[..digits] {
        return Err("not an unlinked audit record");
    }
    let link = match auth {
        b'g' => {
            let key = key.ok_or("an authenticated record to link without the key")?;
            scratch.clear();
            scratch.extend_from_slice(prev);
            scratch.extend_from_slice(&line[..covered_end]);
            gmac_link(key, seq, scratch)
        }
        b'h' => digest::sha256_parts(&[prev, &line[..covered_end]]),
        _ => return Err("a segment's record whose auth is neither \"g\" nor \"h\""),
    };
    // The digits' place holds exactly twice the link's bytes: this cannot fail.
    let _ = hex::encode_to_slice(&link[..digits / 2], &mut line[link_at..link_at + digits]);
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    #[test]
    fn an_unlinked_record_is_linked_in_place_as_the_writer_would_have() {
        let key = segment_key(&[5; 32], &[6; LINK_LEN]);
        let mut r = Record::new("encrypt", 0);
        r.segment = Some(4);
        r.key_label = Some("dek-acme-v1");
        r.end = Some((9, [3; LINK_LEN]));
        let mut scratch = vec![];
        for auth in [b'g', b'h'] {
            let prev = [0x42; LINK_LEN];
            // What a writer holding the chain writes...
            let mut linked = vec![];
            linked.extend_from_slice(&prev);
            encode_covered(&mut linked, 7, 1, &r, auth);
            let link = match auth {
                b'g' => gmac_link(&key, 7, &linked),
                _ => digest::sha256_array(&linked),
            };
            encode_link(&mut linked, auth, Some(&link));
            let linked = linked[LINK_LEN..].to_vec();
            // ...and what a writer without it writes, linked afterwards.
            let mut unlinked = vec![];
            encode_covered(&mut unlinked, 7, 1, &r, auth);
            encode_link(&mut unlinked, auth, None);
            let parsed = parse_line(&unlinked[..unlinked.len() - 1]).unwrap();
            assert_eq!(parsed.link, None);
            let end = unlinked.len() - 1;
            assert_eq!(link_line(&mut unlinked[..end], 7, &prev, Some(&key), &mut scratch), Ok(link));
            assert_eq!(unlinked, linked);
            let parsed = parse_line(&linked[..end]).unwrap();
            assert_eq!((parsed.link, parsed.entry.auth.as_bytes()), (Some(link), &[auth][..]));
            // A record written in full (here with a segment's end) comes back from its entry
            // as it was stored, linked or not.
            assert_eq!(expanded_line(&parsed.entry), &linked[..end]);
            let unlinked_entry = parse_line(&{
                let mut u = vec![];
                encode_covered(&mut u, 7, 1, &r, auth);
                encode_link(&mut u, auth, None);
                u.pop();
                u
            })
            .unwrap()
            .entry;
            let mut u = expanded_line(&unlinked_entry);
            u.push(b'\n');
            assert_eq!(link_line(&mut u[..end], 7, &prev, Some(&key), &mut scratch), Ok(link));
            assert!(
                link_line(&mut unlinked[..end], 7, &prev, Some(&key), &mut scratch).is_err(),
                "linked once only"
            );
        }
        // A `g` link is 32 hex digits, the last 16 bytes of its chain value zero; it
        // depends on the position (the nonce) and on the segment's key.
        let mut g = vec![];
        encode_covered(&mut g, 7, 1, &r, b'g');
        encode_link(&mut g, b'g', None);
        let end = g.len() - 1;
        let at_7 = link_line(&mut g.clone()[..end], 7, &[0; LINK_LEN], Some(&key), &mut scratch).unwrap();
        assert_eq!(at_7[16..], [0; 16]);
        let at_8 = link_line(&mut g.clone()[..end], 8, &[0; LINK_LEN], Some(&key), &mut scratch).unwrap();
        let other_segment = segment_key(&[5; 32], &[7; LINK_LEN]);
        let elsewhere =
            link_line(&mut g.clone()[..end], 7, &[0; LINK_LEN], Some(&other_segment), &mut scratch).unwrap();
        assert!(at_7 != at_8 && at_7 != elsewhere);
        // Without the key a `g` record stays as it is; an `m` record is the register's.
        let before = g.clone();
        assert!(link_line(&mut g[..end], 1, &[0; LINK_LEN], None, &mut scratch).is_err());
        assert_eq!(g, before, "nothing changed");
        let mut m = vec![];
        encode_covered(&mut m, 1, 1, &r, b'm');
        encode_link(&mut m, b'm', None);
        let end = m.len() - 1;
        let before = m.clone();
        assert!(link_line(&mut m[..end], 1, &[0; LINK_LEN], Some(&key), &mut scratch).is_err());
        assert_eq!(m, before, "nothing changed");
    }
}
