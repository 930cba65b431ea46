//! Slots: one per token file in the token directory (`token-<slot>.sqlite`, so a token keeps
//! its slot id across processes), plus one free slot (the lowest unused id) holding an uninitialized
//! token for the next `C_InitToken`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use cryptoki_sys::CK_SLOT_ID;
use parking_lot::RwLock;

use crate::config::Config;
use crate::token::Token;
use crate::token::handles::HandleTable;
use crate::{Error, Result};

#[derive(Default)]
pub struct SlotTable {
    tokens: BTreeMap<CK_SLOT_ID, Arc<Token>>,
}

fn file_name(slot: CK_SLOT_ID) -> String {
    format!("token-{slot}.sqlite")
}

fn slot_of(file_name: &str) -> Option<CK_SLOT_ID> {
    let n = file_name.strip_prefix("token-")?.strip_suffix(".sqlite")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0')) {
        return None;
    }
    n.parse().ok()
}

impl SlotTable {
    /// Picks up token files created since the last scan (by this or another process), and
    /// keeps exactly one free slot.
    pub fn rescan(&mut self, config: &Arc<Config>, handles: &Arc<RwLock<HandleTable>>) -> Result<()> {
        let dir = &config.token_dir;
        for slot in scan_dir(dir)? {
            let stale_free = self.tokens.get(&slot).is_some_and(|t| t.is_free());
            if !self.tokens.contains_key(&slot) || stale_free {
                let token = Token::open(slot, dir.join(file_name(slot)), config.clone(), handles.clone());
                self.tokens.insert(slot, Arc::new(token));
            }
        }
        // The free slot is the lowest id without a token file, so an empty directory offers
        // slot 0. A free slot whose id a token file has since taken is dropped.
        let used: Vec<CK_SLOT_ID> =
            self.tokens.iter().filter(|(_, t)| !t.is_free() || t.path.exists()).map(|(s, _)| *s).collect();
        let free = (0..).find(|id| !used.contains(id)).unwrap_or(0);
        self.tokens.retain(|slot, _| used.contains(slot) || *slot == free);
        self.tokens.entry(free).or_insert_with(|| {
            Arc::new(Token::open(free, dir.join(file_name(free)), config.clone(), handles.clone()))
        });
        Ok(())
    }

    pub fn ids(&self) -> Vec<CK_SLOT_ID> {
        self.tokens.keys().copied().collect()
    }

    pub fn token(&self, slot: CK_SLOT_ID) -> Result<Arc<Token>> {
        self.tokens.get(&slot).cloned().ok_or(Error::SlotIdInvalid)
    }
}

fn scan_dir(dir: &Path) -> Result<Vec<CK_SLOT_ID>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut slots = Vec::new();
    for entry in entries {
        let name = entry?.file_name();
        if let Some(slot) = name.to_str().and_then(slot_of) {
            slots.push(slot);
        }
    }
    Ok(slots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_token_file_names_are_slots() {
        assert_eq!(slot_of("token-0.sqlite"), Some(0));
        assert_eq!(slot_of("token-12.sqlite"), Some(12));
        for bad in
            ["token-.sqlite", "token-01.sqlite", "token-1.sqlite-wal", "token-x.sqlite", ".token-1.sqlite"]
        {
            assert_eq!(slot_of(bad), None, "{bad}");
        }
    }
}
