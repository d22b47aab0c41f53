//! The two ends `vdi bench-startup` times: a kept-open headless Chromium that reports when a
//! player decoded its first frame (`streamer/tests/browser/first-frame.mjs`), and the baseline:
//! the same desktop launcher and streamer started by hand, without the platform.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use vdi_operator::connect::ConnectKeys;

/// Wall-clock milliseconds since the epoch (the browser, the streamer and the operator all
/// stamp times with this machine's clock).
pub(super) fn wall_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A headless Chromium driven through `first-frame.mjs`.
pub(super) struct Browser {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Browser {
    /// Starts the browser from `dir` (which holds the script and its `node_modules`).
    pub(super) async fn start(dir: &Path) -> Result<Self> {
        let mut child = Command::new("node")
            .arg("first-frame.mjs")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("run node first-frame.mjs in {}", dir.display()))?;
        let stdin = child.stdin.take().context("the browser's stdin")?;
        let stdout = child.stdout.take().context("the browser's stdout")?;
        let mut browser = Self {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        };
        let ready = browser.next_event(Duration::from_secs(60)).await?;
        if ready["event"] != "ready" {
            bail!("the browser did not start: {ready}");
        }
        Ok(browser)
    }

    async fn next_event(&mut self, within: Duration) -> Result<serde_json::Value> {
        let line = tokio::time::timeout(within, self.lines.next_line())
            .await
            .context("the browser did not answer in time")??
            .context("the browser exited")?;
        serde_json::from_str(&line).with_context(|| format!("the browser said {line:?}"))
    }

    /// Opens `url` in a fresh page; returns the wall-clock time of its first decoded frame.
    pub(super) async fn first_frame(&mut self, url: &str) -> Result<i64> {
        self.stdin.write_all(format!("{url}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        let answer = self.next_event(Duration::from_secs(45)).await?;
        match answer["at"].as_i64() {
            Some(at) if answer["event"] == "first-frame" => Ok(at),
            _ => bail!("no frame decoded: {answer}"),
        }
    }

    pub(super) async fn close(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// Ends a process group: SIGTERM, then SIGKILL after 3 s.
async fn end_group(child: &mut Child) {
    let Some(pid) = child.id() else { return };
    let group = format!("-{pid}");
    let _ = Command::new("kill")
        .args(["-TERM", "--", &group])
        .status()
        .await;
    if tokio::time::timeout(Duration::from_secs(3), child.wait())
        .await
        .is_err()
    {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .status()
            .await;
        let _ = child.wait().await;
    }
}

/// An X display number with no socket or lock file, from `from` up.
fn free_display(from: u32) -> Result<u32> {
    (from..from + 200)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .context("no free X display")
}

/// The baseline: `runs` times, the desktop launcher and `streamer` started by hand (no
/// platform), `/healthz` awaited as the readiness probe would, and the player opened with a
/// token; returns spawn -> first decoded frame for each run.
pub(super) async fn baseline(
    runs: usize,
    streamer: &Path,
    browser: &mut Browser,
) -> Result<Vec<Duration>> {
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let keys = ConnectKeys::generate()?;
    let key_file = dir.path().join("keys.pem");
    std::fs::write(&key_file, keys.public_pems().concat())?;
    let script = dir.path().join("desktop.sh");
    std::fs::write(&script, vdi_cluster::DESKTOP_SCRIPT)?;
    let home: PathBuf = dir.path().join("home");
    std::fs::create_dir_all(&home)?;
    let http = reqwest::Client::new();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let display = format!(":{}", free_display(950)?);
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let started = wall_ms();
        let mut desktop = Command::new("sh")
            .arg(&script)
            .env("DISPLAY", &display)
            .env("HOME", &home)
            .current_dir(&home)
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start the desktop launcher")?;
        let mut streamer = Command::new(streamer)
            .env("DISPLAY", &display)
            .env("VDI_LISTEN", format!("127.0.0.1:{port}"))
            .env("VDI_SESSION", "baseline")
            .env("VDI_NAMESPACE", "bench")
            .env("VDI_TOKEN_PUBLIC_KEY", &key_file)
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", streamer.display()))?;
        let health = format!("http://127.0.0.1:{port}/healthz");
        let deadline = wall_ms() + 30_000;
        while !http
            .get(&health)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            if wall_ms() > deadline {
                bail!("the baseline streamer did not answer {health}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let now = u64::try_from(wall_ms() / 1000).unwrap_or(0);
        let token = keys.mint("bench", "baseline", "", "bench", now + 3600, now)?;
        let result = browser
            .first_frame(&format!("http://127.0.0.1:{port}/#token={token}"))
            .await;
        end_group(&mut streamer).await;
        end_group(&mut desktop).await;
        let at = result?;
        times.push(Duration::from_millis(
            u64::try_from(at - started).unwrap_or(0),
        ));
    }
    Ok(times)
}
