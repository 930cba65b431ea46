//! Memory hygiene for key material. Each function is best effort where the system may
//! refuse (a container without `CAP_IPC_LOCK` and a small `RLIMIT_MEMLOCK`, an old
//! kernel): it says whether it succeeded, and the refusal of locking is logged once per
//! process, so that an operator sees why `VmLck` stays 0, without failing the caller's
//! operation.

use std::sync::atomic::{AtomicBool, Ordering};

use memmap2::{Advice, MmapMut};
use rustix::process::{DumpableBehavior, Resource, getrlimit, set_dumpable_behavior};

/// Whether a refusal of `mlock` was logged already.
static LOCK_REFUSAL_LOGGED: AtomicBool = AtomicBool::new(false);

/// Locks the pages of `map` into RAM (`mlock`), so that they are never written to swap;
/// whether they are. A refusal (over `RLIMIT_MEMLOCK`, no permission) is logged once per
/// process with the limit in force, then only returned.
pub fn lock(map: &MmapMut) -> bool {
    match map.lock() {
        Ok(()) => true,
        Err(error) => {
            if !LOCK_REFUSAL_LOGGED.swap(true, Ordering::Relaxed) {
                let limit = getrlimit(Resource::Memlock);
                log::warn!(
                    "key material is not locked in memory (mlock: {error}; RLIMIT_MEMLOCK soft {}, hard {}): \
                     it may be written to swap; raise the limit (ulimit -l) or grant CAP_IPC_LOCK",
                    describe_limit(limit.current),
                    describe_limit(limit.maximum),
                );
            }
            false
        }
    }
}

fn describe_limit(limit: Option<u64>) -> String {
    limit.map_or_else(|| "unlimited".to_owned(), |bytes| format!("{bytes} bytes"))
}

/// Excludes the pages of `map` from core dumps (`MADV_DONTDUMP`); whether they are.
pub fn exclude_from_core_dumps(map: &MmapMut) -> bool {
    map.advise(Advice::DontDump).is_ok()
}

/// Makes this process not dumpable (`PR_SET_DUMPABLE` 0): no core file, and no other
/// process of the same user may attach to it with `ptrace` or read its `/proc/<pid>/mem`.
/// For the admin tool, which holds PINs and keys for the length of one command; a library
/// loaded into an application must not change its host's setting.
pub fn make_process_not_dumpable() -> std::io::Result<()> {
    set_dumpable_behavior(DumpableBehavior::NotDumpable).map_err(std::io::Error::from)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The `VmFlags` line of the mapping starting at `address` in `/proc/self/smaps`.
    pub(crate) fn vm_flags(address: usize) -> Vec<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let start = format!("{address:x}-");
        let mut lines = smaps.lines().skip_while(|line| !line.starts_with(&start));
        assert!(lines.next().is_some(), "mapping {start} not in smaps");
        let flags = lines.find(|line| line.starts_with("VmFlags:")).unwrap();
        flags["VmFlags:".len()..].split_whitespace().map(str::to_owned).collect()
    }

    /// The `VmFlags` of the mapping that contains `address`.
    pub(crate) fn vm_flags_at(address: usize) -> Vec<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((start, end)) = range.split_once('-')
                && let (Ok(start), Ok(end)) =
                    (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16))
            {
                inside = (start..end).contains(&address);
            } else if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
                return flags.split_whitespace().map(str::to_owned).collect();
            }
        }
        panic!("no mapping holds {address:#x}");
    }

    #[test]
    fn a_mapping_excluded_from_core_dumps_carries_the_dd_flag() {
        let map = MmapMut::map_anon(4096).unwrap();
        assert!(!vm_flags(map.as_ptr() as usize).contains(&"dd".to_owned()));
        assert!(exclude_from_core_dumps(&map));
        assert!(vm_flags(map.as_ptr() as usize).contains(&"dd".to_owned()));
    }

    #[test]
    fn a_locked_mapping_carries_the_lo_flag_and_a_refusal_is_only_reported() {
        let map = MmapMut::map_anon(4096).unwrap();
        let locked = lock(&map);
        // Locking may be refused here (RLIMIT_MEMLOCK); what it reports must be true.
        assert_eq!(vm_flags(map.as_ptr() as usize).contains(&"lo".to_owned()), locked);
    }

    #[test]
    fn a_process_made_not_dumpable_says_so_in_its_status() {
        // Run in a child process: the setting is the whole process's, and the test harness
        // must stay dumpable for the other tests.
        if std::env::var_os("ECM_HSM_SYS_DUMPABLE_CHILD").is_some() {
            make_process_not_dumpable().unwrap();
            let dumpable = rustix::process::dumpable_behavior().unwrap();
            assert_eq!(dumpable, DumpableBehavior::NotDumpable);
            return;
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "sys::memory::tests::a_process_made_not_dumpable_says_so_in_its_status"])
            .env("ECM_HSM_SYS_DUMPABLE_CHILD", "1")
            .output()
            .unwrap();
        assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stdout));
        assert!(String::from_utf8_lossy(&status.stdout).contains("1 passed"));
        assert_ne!(rustix::process::dumpable_behavior().unwrap(), DumpableBehavior::NotDumpable);
    }
}
