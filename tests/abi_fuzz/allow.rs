//! The allow-list: known, not yet fixed defects that the fuzz run reports but does not fail
//! on, each with its reason (`tests/abi_fuzz/allow.txt`). Nothing else is ignored.
//!
//! A line is `KIND FUNCTION WHAT REASON...`: `rv C_X CodeName why` (the name as `rv_table::name` prints it, e.g. `PinLenRange`) accepts that code from that
//! function; `crash C_X TAG why` and `hang C_X TAG why` make the driver skip (and count) every
//! call of that function whose arguments carry the tag (`huge`, `null-len`, ...), since such a
//! call would end the run. `*` as the function stands for every function. `std C_X CodeName
//! why` accepts a code the standard's text allows beyond the function's own list (the reason
//! cites it); such calls are counted apart from known defects.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rv,
    /// A code outside the function's list that the standard's text allows.
    Standard,
    Crash,
    Hang,
}

#[derive(Debug, Clone)]
pub struct Allow {
    pub kind: Kind,
    pub function: String,
    pub what: String,
    pub reason: String,
}

pub const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/abi_fuzz/allow.txt");

pub fn load() -> Vec<Allow> {
    let text = std::fs::read_to_string(PATH).unwrap_or_else(|e| panic!("read {PATH}: {e}"));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            // Three words, then the reason (the rest of the line).
            let mut rest = line;
            let mut next = || {
                let word = rest.split_whitespace().next().unwrap_or_default();
                rest = rest.trim_start()[word.len()..].trim_start();
                word.to_string()
            };
            let (kind, function, what) = (next(), next(), next());
            let reason = rest.to_string();
            let kind = match kind.as_str() {
                "rv" => Kind::Rv,
                "std" => Kind::Standard,
                "crash" => Kind::Crash,
                "hang" => Kind::Hang,
                other => panic!("{PATH}: unknown kind {other:?} in {line:?}"),
            };
            assert!(!reason.is_empty(), "{PATH}: every entry needs a reason: {line:?}");
            Allow { kind, function, what, reason }
        })
        .collect()
}
