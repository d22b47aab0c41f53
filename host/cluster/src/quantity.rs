//! Kubernetes resource quantities (`500m`, `2`, `4Gi`, `1G`) as integers.

/// CPU in millicores (`500m` → 500, `2` → 2000, `1.5` → 1500).
pub fn millicores(q: &str) -> Option<u64> {
    let q = q.trim();
    if let Some(m) = q.strip_suffix('m') {
        return m.parse().ok();
    }
    let v: f64 = q.parse().ok()?;
    Some((v * 1000.0).round() as u64)
}

/// Bytes (`4Gi`, `512Mi`, `1G`, `1000`).
pub fn bytes(q: &str) -> Option<u64> {
    let q = q.trim();
    let split = q.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let mult: u64 = match suffix {
        "" => 1,
        "k" => 1000,
        "M" => 1000_u64.pow(2),
        "G" => 1000_u64.pow(3),
        "T" => 1000_u64.pow(4),
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return None,
    };
    let v: f64 = num.parse().ok()?;
    Some((v * mult as f64).round() as u64)
}

/// A count (`nvidia.com/gpu: "1"`).
pub fn count(q: &str) -> Option<u64> {
    q.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(millicores("500m"), Some(500));
        assert_eq!(millicores("2"), Some(2000));
        assert_eq!(millicores("1.5"), Some(1500));
        assert_eq!(bytes("4Gi"), Some(4 << 30));
        assert_eq!(bytes("512Mi"), Some(512 << 20));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("12x"), None);
        assert_eq!(count("8"), Some(8));
    }
}
