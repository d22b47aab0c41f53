//! Session timeouts as Kubernetes-style durations: `90s`, `30m`, `8h`, `1h30m`.

/// The pattern the CRD schema puts on duration fields (kept equal to the one on `spec.timeout`).
#[cfg(test)]
pub(crate) const PATTERN: &str = r"^([0-9]+(s|m|h|d))+$";

/// Why a duration does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Empty string.
    #[error("must not be empty (use e.g. 30m or 8h)")]
    Empty,
    /// Not `<number><unit>` pairs.
    #[error("{0:?} is not a duration like 90s, 30m, 8h or 1h30m")]
    Malformed(String),
    /// Longer than a `u64` of seconds.
    #[error("{0:?} is too long")]
    Overflow(String),
}

/// Parses `1h30m` into seconds. Units: `s`, `m`, `h`, `d`.
pub fn parse_duration(text: &str) -> Result<u64, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let malformed = || DurationError::Malformed(text.to_owned());
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(malformed()),
        };
        if digits.is_empty() {
            return Err(malformed());
        }
        let n: u64 = digits
            .parse()
            .map_err(|_| DurationError::Overflow(text.to_owned()))?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| DurationError::Overflow(text.to_owned()))?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(malformed());
    }
    Ok(total)
}

/// Formats seconds the way [`parse_duration`] reads them (`5400` → `1h30m`).
pub fn format_duration(seconds: u64) -> String {
    if seconds == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = seconds;
    for (unit, name) in [(3600, 'h'), (60, 'm'), (1, 's')] {
        if rest >= unit {
            out.push_str(&format!("{}{name}", rest / unit));
            rest %= unit;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(format_duration(5400), "1h30m");
        assert_eq!(parse_duration(&format_duration(3725)), Ok(3725));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        for bad in ["h", "10", "1.5h", "10 m", "-1s", "1w"] {
            assert!(
                matches!(parse_duration(bad), Err(DurationError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_duration("99999999999999999999999s"),
            Err(DurationError::Overflow(_))
        ));
    }
}
