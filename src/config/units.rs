//! Parsing of durations (`"30s"`, `"2m"`, `"off"`) and byte sizes (`"10MiB"`).

use std::time::Duration;

/// A duration as humans write it; `"0"`, `"off"` and `"none"` mean "no limit".
pub(crate) fn parse_duration_opt(s: &str) -> Result<Option<Duration>, String> {
    let t = s.trim();
    if matches!(t, "0" | "off" | "none" | "never") {
        return Ok(None);
    }
    humantime::parse_duration(t)
        .map(Some)
        .map_err(|e| format!("`{s}` is not a duration ({e})"))
}

/// A byte size: a plain number of bytes or a number with a unit
/// (`K`/`KB`/`KiB`, `M`/`MB`/`MiB`, `G`/`GB`/`GiB`; all powers of 1024, as nginx).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a size"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}` in `{s}`")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10"), Ok(10));
        assert_eq!(parse_size("10KiB"), Ok(10240));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1 g"), Ok(1 << 30));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("10 parsecs").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_opt("30s"), Ok(Some(Duration::from_secs(30))));
        assert_eq!(
            parse_duration_opt("1h"),
            Ok(Some(Duration::from_secs(3600)))
        );
        assert_eq!(parse_duration_opt("off"), Ok(None));
        assert!(parse_duration_opt("soon").is_err());
    }
}
