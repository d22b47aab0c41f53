//! Running a container's declared probes against its loopback ports.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::plan::{Probe, ProbeAction};

/// The status code of an HTTP/1.x response's first line.
pub(crate) fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let text = std::str::from_utf8(line).ok()?;
    let mut parts = text.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

async fn http(port: u16, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: kube-probe/1.37\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = vec![0; 256];
    let mut len = 0;
    while len < head.len() {
        match s.read(&mut head[len..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
        if head[..len].contains(&b'\n') {
            break;
        }
    }
    status_code(&head[..len]).is_some_and(|c| (200..400).contains(&c))
}

/// One attempt, within the probe's timeout.
pub(crate) async fn check(probe: &Probe, env: &[(String, String)]) -> bool {
    let attempt = async {
        match &probe.action {
            ProbeAction::Http { port, path } => http(*port, path).await,
            ProbeAction::Tcp { port } => TcpStream::connect(("127.0.0.1", *port)).await.is_ok(),
            ProbeAction::Exec { argv } => {
                let Some((program, args)) = argv.split_first() else {
                    return false;
                };
                tokio::process::Command::new(program)
                    .args(args)
                    .env_clear()
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .status()
                    .await
                    .is_ok_and(|s| s.success())
            }
        }
    };
    tokio::time::timeout(probe.timeout.max(Duration::from_millis(100)), attempt)
        .await
        .unwrap_or(false)
}

/// Counts consecutive results against a probe's thresholds.
#[derive(Debug, Default)]
pub(crate) struct Thresholds {
    successes: u32,
    failures: u32,
}

impl Thresholds {
    /// Records one result; returns the verdict when a threshold is reached.
    pub(crate) fn record(&mut self, probe: &Probe, ok: bool) -> Option<bool> {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            (self.successes >= probe.success_threshold).then_some(true)
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            (self.failures >= probe.failure_threshold).then_some(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_parses() {
        assert_eq!(status_code(b"HTTP/1.0 200 OK\r\nServer: x"), Some(200));
        assert_eq!(status_code(b"HTTP/1.1 404 Not Found\r\n"), Some(404));
        assert_eq!(status_code(b"SSH-2.0-OpenSSH"), None);
    }

    #[test]
    fn thresholds_need_consecutive_results() {
        let probe = Probe {
            action: ProbeAction::Tcp { port: 1 },
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: 2,
            failure_threshold: 2,
        };
        let mut t = Thresholds::default();
        assert_eq!(t.record(&probe, true), None);
        assert_eq!(t.record(&probe, true), Some(true));
        assert_eq!(t.record(&probe, false), None);
        assert_eq!(t.record(&probe, true), None);
        assert_eq!(t.record(&probe, false), None);
        assert_eq!(t.record(&probe, false), Some(false));
    }
}
