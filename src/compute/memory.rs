//! A memory budget checked before large allocations, so that a size from a config, a flag
//! or a checkpoint's metadata is refused with the figures instead of aborting the process.

/// Used when `/proc/meminfo` cannot be read.
const FALLBACK_BUDGET: u64 = 8 << 30;

/// Bytes the kernel says can be allocated without swapping (`MemAvailable`).
pub fn available_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb.saturating_mul(1024))
        })
        .unwrap_or(FALLBACK_BUDGET)
}

/// `1.5 GB` style.
pub fn human(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["bytes", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `Err` with the figures when `bytes` (`None`: past what can be counted) exceed what is
/// available.
pub fn check(what: &str, bytes: Option<u128>) -> Result<(), String> {
    let available = available_bytes();
    match bytes {
        Some(b) if b <= u128::from(available) => Ok(()),
        Some(b) => Err(format!(
            "{what} needs about {} of memory, but {} is available",
            human(b),
            human(u128::from(available))
        )),
        None => Err(format!(
            "{what} needs more memory than can be counted ({} is available)",
            human(u128::from(available))
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_past_the_budget_are_refused_with_figures() {
        assert!(check("a small thing", Some(1000)).is_ok());
        let e = check("model.hidden = [10000000000]", Some(40_000_000_000_000)).unwrap_err();
        assert!(
            e.starts_with("model.hidden = [10000000000] needs about 40.0 TB"),
            "{e}"
        );
        assert!(check("x", None)
            .unwrap_err()
            .contains("more memory than can be counted"));
    }
}
