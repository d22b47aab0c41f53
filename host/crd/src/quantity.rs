//! Kubernetes resource quantities (`500m`, `2`, `1.5`, `4Gi`, `1G`, `1e3`) as exact integers in
//! the unit a caller counts in. One parser for the whole platform: the embedded control plane's
//! binder and the operator's inventory read Nodes and Pods with it.
//!
//! Values come from the API (anyone who may write a Node or a Pod), so parsing is checked
//! arithmetic on integers: no float rounding, no `as` casts, `None` for anything malformed,
//! negative or too large.

/// The most fraction digits accepted (`0.000000001` is a nano-unit, the finest Kubernetes has).
const MAX_FRACTION_DIGITS: u32 = 9;

struct Parsed {
    /// The digits without the decimal point.
    digits: u128,
    /// How many of them follow the point.
    fraction_digits: u32,
    /// What the suffix multiplies by.
    multiplier: Multiplier,
}

enum Multiplier {
    /// 10^n (decimal SI suffixes and exponents).
    Decimal(i32),
    /// 2^n (binary SI suffixes).
    Binary(u32),
}

fn parse(text: &str) -> Option<Parsed> {
    let text = text.trim();
    let text = text.strip_prefix('+').unwrap_or(text);
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let fraction_digits = u32::try_from(fraction.len()).ok()?;
    if fraction_digits > MAX_FRACTION_DIGITS || fraction.contains('.') {
        return None;
    }
    let mut digits: u128 = 0;
    for c in whole.chars().chain(fraction.chars()) {
        digits = digits
            .checked_mul(10)?
            .checked_add(u128::from(c.to_digit(10)?))?;
    }
    let multiplier = match suffix {
        "n" => Multiplier::Decimal(-9),
        "u" => Multiplier::Decimal(-6),
        "m" => Multiplier::Decimal(-3),
        "" => Multiplier::Decimal(0),
        "k" => Multiplier::Decimal(3),
        "M" => Multiplier::Decimal(6),
        "G" => Multiplier::Decimal(9),
        "T" => Multiplier::Decimal(12),
        "P" => Multiplier::Decimal(15),
        "E" => Multiplier::Decimal(18),
        "Ki" => Multiplier::Binary(10),
        "Mi" => Multiplier::Binary(20),
        "Gi" => Multiplier::Binary(30),
        "Ti" => Multiplier::Binary(40),
        "Pi" => Multiplier::Binary(50),
        "Ei" => Multiplier::Binary(60),
        e => {
            let exp = e.strip_prefix(['e', 'E'])?;
            let exp: i32 = exp.parse().ok()?;
            (-30..=30).contains(&exp).then_some(())?;
            Multiplier::Decimal(exp)
        }
    };
    Some(Parsed {
        digits,
        fraction_digits,
        multiplier,
    })
}

/// The quantity in units of 10^`unit_exponent` (millis: -3), rounded up as Kubernetes does.
fn scaled(text: &str, unit_exponent: i32) -> Option<u64> {
    let p = parse(text)?;
    // value = digits × multiplier / 10^fraction_digits / 10^unit_exponent
    let (mut numerator, mut denominator) = (p.digits, 1u128);
    let mut exp10 = -i64::from(p.fraction_digits) - i64::from(unit_exponent);
    match p.multiplier {
        Multiplier::Decimal(e) => exp10 += i64::from(e),
        Multiplier::Binary(b) => numerator = numerator.checked_mul(1u128.checked_shl(b)?)?,
    }
    let pow = 10u128.checked_pow(u32::try_from(exp10.unsigned_abs()).ok()?)?;
    if exp10 >= 0 {
        numerator = numerator.checked_mul(pow)?;
    } else {
        denominator = pow;
    }
    u64::try_from(numerator.div_ceil(denominator)).ok()
}

/// CPU in millicores (`500m` → 500, `2` → 2000, `1.5` → 1500).
pub fn millicores(text: &str) -> Option<u64> {
    scaled(text, -3)
}

/// Bytes (`4Gi`, `512Mi`, `1G`, `1000`), rounded up to a whole byte.
pub fn bytes(text: &str) -> Option<u64> {
    scaled(text, 0)
}

/// A whole count (`nvidia.com/gpu: "8"`); fractions are refused rather than rounded.
pub fn count(text: &str) -> Option<u64> {
    // Millicores round up, so any fraction finer than a milli also leaves a remainder.
    let millis = millicores(text)?;
    (millis % 1000 == 0).then_some(millis / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(millicores("500m"), Some(500));
        assert_eq!(millicores("2"), Some(2000));
        assert_eq!(millicores("1.5"), Some(1500));
        assert_eq!(millicores("64000m"), Some(64000));
        assert_eq!(millicores("100u"), Some(1));
        assert_eq!(bytes("4Gi"), Some(4 << 30));
        assert_eq!(bytes("512Mi"), Some(512 << 20));
        assert_eq!(bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("1e3"), Some(1000));
        assert_eq!(bytes("+7"), Some(7));
        assert_eq!(count("8"), Some(8));
        assert_eq!(count("8.0"), Some(8));
    }

    #[test]
    fn refuses_malformed_negative_and_huge_values() {
        for bad in [
            "",
            "x",
            "12x",
            "-1",
            "1..2",
            ".",
            "1.2.3",
            "1e999",
            "1Zi",
            "NaN",
            "inf",
            "99999999999999999999999999999999999999999",
            "1Ei1",
        ] {
            assert_eq!(bytes(bad), None, "{bad:?}");
            assert_eq!(millicores(bad), None, "{bad:?}");
        }
        assert_eq!(bytes("100Ei"), None, "overflows u64");
        assert_eq!(count("1.5"), None);
        assert_eq!(count("500m"), None);
    }
}
