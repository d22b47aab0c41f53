//! Adaptive bitrate from the viewer's RTCP receiver reports: back off multiplicatively when
//! packets are lost or the round trip grows, probe upwards slowly when the path is clean
//! (AIMD, as congestion controllers do), always within the configured bounds.

/// Loss (fraction of packets) above which the bitrate goes down.
pub const LOSS_HIGH: f64 = 0.02;
/// Loss below which the bitrate may go up.
pub const LOSS_LOW: f64 = 0.005;
/// Round trip (ms) above which the path counts as congested.
pub const RTT_HIGH_MS: f64 = 250.0;

/// The controller's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adaptation {
    min_kbps: u32,
    max_kbps: u32,
    current_kbps: u32,
}

impl Adaptation {
    /// Starts at `max` (the desktop is sharpest; the first reports correct it).
    pub fn new(min_kbps: u32, max_kbps: u32) -> Self {
        Self {
            min_kbps,
            max_kbps,
            current_kbps: max_kbps,
        }
    }

    /// The bitrate now.
    pub fn current(&self) -> u32 {
        self.current_kbps
    }

    /// Takes one report (fraction lost 0.0..=1.0 since the last one, round trip in ms if known);
    /// returns the new bitrate when it changes.
    pub fn update(&mut self, fraction_lost: f64, rtt_ms: Option<f64>) -> Option<u32> {
        let congested = fraction_lost > LOSS_HIGH || rtt_ms.is_some_and(|r| r > RTT_HIGH_MS);
        let next = if congested {
            // Down by 15 % plus half the loss.
            let factor = (0.85 - fraction_lost / 2.0).clamp(0.5, 0.85);
            (f64::from(self.current_kbps) * factor) as u32
        } else if fraction_lost < LOSS_LOW {
            // Up by 5 % (at least 50 kbit/s).
            self.current_kbps
                .saturating_add((self.current_kbps / 20).max(50))
        } else {
            self.current_kbps
        }
        .clamp(self.min_kbps, self.max_kbps);
        (next != self.current_kbps).then(|| {
            self.current_kbps = next;
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degrades_under_loss_and_recovers_within_bounds() {
        let mut a = Adaptation::new(500, 8000);
        assert_eq!(a.update(0.0, Some(5.0)), None, "already at the top");
        let mut last = a.current();
        for _ in 0..5 {
            let next = a
                .update(0.10, Some(20.0))
                .expect("backs off under 10 % loss");
            assert!(next < last);
            last = next;
        }
        for _ in 0..100 {
            a.update(0.5, None);
        }
        assert_eq!(a.current(), 500, "never below the minimum");
        assert_eq!(a.update(0.01, None), None, "holds between the thresholds");
        let mut steps = 0;
        while a.update(0.0, Some(10.0)).is_some() {
            steps += 1;
        }
        assert_eq!(a.current(), 8000, "recovers to the maximum");
        assert!(steps > 10, "slowly: {steps} steps");
        assert!(
            a.update(0.0, Some(400.0)).is_some(),
            "a long round trip backs off too"
        );
    }
}
