//! The process's own resident memory and open file descriptors, read from
//! `/proc/self` (Linux); `None` elsewhere.

/// Resident set size in bytes (`VmRSS` of `/proc/self/status`).
pub(crate) fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Entries of `/proc/self/fd` (less the one reading it).
pub(crate) fn open_fds() -> Option<u64> {
    let n = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(n.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_process() {
        assert!(super::resident_bytes().is_some_and(|b| b > 1 << 20));
        assert!(super::open_fds().is_some_and(|n| n >= 3));
    }
}
