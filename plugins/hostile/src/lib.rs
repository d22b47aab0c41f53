//! Test-only admission plugin that attacks its sandbox. Its settings pick the attack:
//! `{"mode": "loop"}` and so on; see [`Mode`]. The host's hostile-plugin tests load it once per
//! mode and check that each attack ends in its typed error within its limit.

use serde::{Deserialize, Serialize};
use vdi_plugin_sdk::{
    Admission, AdmissionContext, FieldError, LogLevel, PluginError, SessionRequest, Verdict,
};

/// The misbehaviour to perform on `review`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Behave: allow (and write to the log, stdout and stderr).
    Allow,
    /// Spin forever.
    Loop,
    /// Allocate until memory runs out.
    MemoryBomb,
    /// Recurse without end.
    Recursion,
    /// Panic.
    Panic,
    /// Deny with a 16 MiB reason.
    HugeOutput,
    /// Read `/etc/passwd`.
    ReadFile,
    /// Connect a TCP socket.
    Socket,
    /// Report any environment variables, arguments or readable directories (there should be none).
    Ambient,
    /// Mutate the spec to another user.
    ChangeIdentity,
    /// Sleep forever (a WASI clock subscription and `poll`: no wasm runs while it waits).
    SleepForever,
    /// Sleep a little (within the limit), then spin.
    SleepThenLoop,
    /// Write 1 MiB to stdout, then allow.
    StdoutFlood,
    /// Write 1 MiB to stderr, then panic.
    StderrPanic,
    /// Log 1 MiB through the host's `log` import, then allow.
    LogFlood,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    mode: Mode,
}

/// Recursion that keeps everything in wasm locals (no shadow-stack frames), so it exhausts the
/// engine's wasm stack rather than the guest's linear-memory stack.
#[allow(unconditional_recursion, reason = "the deep-recursion attack")]
#[inline(never)]
fn recurse(n: u64) -> u64 {
    recurse(n.wrapping_add(1)).wrapping_mul(3) ^ n
}

/// The hostile policy.
pub struct Hostile;

impl Admission for Hostile {
    fn configure(settings: &str) -> Result<String, FieldError> {
        let s: Settings =
            serde_json::from_str(settings).map_err(|e| FieldError::new("mode", e.to_string()))?;
        serde_json::to_string(&s).map_err(|e| FieldError::new("mode", e.to_string()))
    }

    fn review(
        settings: &str,
        request: SessionRequest,
        _context: AdmissionContext,
    ) -> Result<Verdict, PluginError> {
        let s: Settings =
            serde_json::from_str(settings).map_err(|e| PluginError::Internal(e.to_string()))?;
        match s.mode {
            Mode::Allow => {
                vdi_plugin_sdk::log(LogLevel::Info, "hostile plugin says hello through log");
                println!("hello on stdout");
                eprintln!("hello on stderr");
                Ok(Verdict::Allow)
            }
            Mode::Loop => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Mode::MemoryBomb => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Mode::Recursion => Ok(Verdict::Deny(recurse(0).to_string())),
            Mode::Panic => panic!("hostile plugin panics on purpose"),
            Mode::HugeOutput => Ok(Verdict::Deny("x".repeat(16 << 20))),
            Mode::ReadFile => {
                let text = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
                Ok(Verdict::Deny(format!("stole {} bytes", text.len())))
            }
            Mode::Socket => {
                let stream =
                    std::net::TcpStream::connect("127.0.0.1:80").expect("connect a socket");
                Ok(Verdict::Deny(format!("connected {:?}", stream.peer_addr())))
            }
            Mode::Ambient => {
                let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                let args: Vec<String> = std::env::args().collect();
                // wasi-libc calls the working directory "/" by convention; what matters is
                // whether any directory can be read.
                let dirs: Vec<&str> = ["/", ".", "/tmp"]
                    .into_iter()
                    .filter(|d| std::fs::read_dir(d).is_ok())
                    .collect();
                if env.is_empty() && args.is_empty() && dirs.is_empty() {
                    Ok(Verdict::Allow)
                } else {
                    Ok(Verdict::Deny(format!(
                        "saw env {env:?}, args {args:?}, readable dirs {dirs:?}"
                    )))
                }
            }
            Mode::SleepForever => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
            Mode::SleepThenLoop => {
                std::thread::sleep(std::time::Duration::from_millis(5));
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Mode::StdoutFlood => {
                let line = "x".repeat(1023);
                for _ in 0..1024 {
                    println!("{line}");
                }
                Ok(Verdict::Allow)
            }
            Mode::StderrPanic => {
                let line = "y".repeat(1023);
                for _ in 0..1024 {
                    eprintln!("{line}");
                }
                panic!("hostile plugin panics after a flood");
            }
            Mode::LogFlood => {
                let line = "z".repeat(1024);
                for _ in 0..1024 {
                    vdi_plugin_sdk::log(LogLevel::Info, &line);
                }
                Ok(Verdict::Allow)
            }
            Mode::ChangeIdentity => {
                let mut spec = request.spec;
                spec.user.name = "root".to_owned();
                spec.user.groups.push("admins".to_owned());
                Ok(Verdict::Mutate(spec))
            }
        }
    }
}

vdi_plugin_sdk::export_admission!(Hostile);
