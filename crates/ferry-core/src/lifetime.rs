//! Room lifetimes as people write them: `30s`, `10m`, `1h`, `1d`, `1h30m`, or a preset name.
//! The server clamps whatever is asked to its own maximum; this only reads and writes them.

/// Named lifetimes the CLI accepts and the app's picker offers, `(name, seconds)`.
pub const LIFETIME_PRESETS: [(&str, u64); 4] = [
    ("10m", 10 * 60),
    ("1h", 3600),
    ("1d", 24 * 3600),
    ("7d", 7 * 24 * 3600),
];

/// A lifetime that does not read as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a lifetime: write it like 30s, 10m, 1h, 1d or 1h30m")]
pub struct LifetimeError(pub String);

/// Seconds in `text`: numbers each followed by a unit (`s`, `m`, `h`, `d`; also `sec`,
/// `min`, `hour(s)`, `day(s)`), or a bare number of seconds. At least one second.
pub fn parse_lifetime(text: &str) -> Result<u64, LifetimeError> {
    let bad = || LifetimeError(text.to_string());
    let t = text.trim().to_ascii_lowercase();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = t.parse::<u64>() {
        return (n > 0).then_some(n).ok_or_else(bad);
    }
    let mut total: u64 = 0;
    let mut rest = t.as_str();
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let unit = match &rest[..unit_len] {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
        rest = rest[unit_len..].trim_start();
    }
    (total > 0).then_some(total).ok_or_else(bad)
}

/// `secs` the way people read a lifetime: `45s`, `10m`, `1h 30m`, `2d 3h` (two units at most).
pub fn format_lifetime(secs: u64) -> String {
    let units = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let mut parts = Vec::new();
    let mut left = secs;
    for (size, name) in units {
        if left >= size {
            parts.push(format!("{}{name}", left / size));
            left %= size;
        }
        if parts.len() == 2 {
            break;
        }
    }
    if parts.is_empty() {
        return "0s".into();
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humane_lifetimes_read() {
        assert_eq!(parse_lifetime("30s"), Ok(30));
        assert_eq!(parse_lifetime("10m"), Ok(600));
        assert_eq!(parse_lifetime("1h"), Ok(3600));
        assert_eq!(parse_lifetime("1d"), Ok(86_400));
        assert_eq!(parse_lifetime("1h30m"), Ok(5400));
        assert_eq!(parse_lifetime(" 2 hours "), Ok(7200));
        assert_eq!(parse_lifetime("90"), Ok(90));
        assert_eq!(parse_lifetime("5 min 5 s"), Ok(305));
        for (name, secs) in LIFETIME_PRESETS {
            assert_eq!(parse_lifetime(name), Ok(secs), "{name}");
        }
    }

    #[test]
    fn nonsense_is_refused_with_the_forms_that_work() {
        for bad in [
            "",
            "0",
            "0s",
            "m",
            "10x",
            "1h-",
            "-5m",
            "soon",
            "99999999999999999999d",
        ] {
            let e = parse_lifetime(bad).unwrap_err();
            assert!(e.to_string().contains("30s, 10m, 1h, 1d"), "{bad}: {e}");
        }
    }

    #[test]
    fn lifetimes_print_as_they_are_written() {
        assert_eq!(format_lifetime(45), "45s");
        assert_eq!(format_lifetime(600), "10m");
        assert_eq!(format_lifetime(5400), "1h 30m");
        assert_eq!(format_lifetime(86_400 + 3 * 3600 + 5), "1d 3h");
        assert_eq!(format_lifetime(0), "0s");
    }
}
