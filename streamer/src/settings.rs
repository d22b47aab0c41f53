//! What the user asked for: flags and environment, each with a named default.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Default X display to capture.
pub const DEFAULT_DISPLAY: &str = ":0";
/// Default frame size.
pub const DEFAULT_WIDTH: u32 = 1280;
/// Default frame size.
pub const DEFAULT_HEIGHT: u32 = 720;
/// Default frame rate.
pub const DEFAULT_FPS: u32 = 30;
/// Lowest bitrate adaptation may choose, in kbit/s.
pub const DEFAULT_MIN_BITRATE_KBPS: u32 = 500;
/// Highest bitrate adaptation may choose, in kbit/s.
pub const DEFAULT_MAX_BITRATE_KBPS: u32 = 8000;
/// Where the HTTP/WebSocket server listens.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Lifetime of TURN credentials handed to a viewer, in seconds.
pub const DEFAULT_TURN_TTL_SECONDS: u64 = 3600;
/// Seconds a WebSocket has to send its `hello` with a valid token before it is closed.
pub const DEFAULT_AUTH_TIMEOUT_SECONDS: u64 = 5;
/// Open WebSockets at once, authenticated or not.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;
/// Authenticated viewers at once (the controller included).
pub const DEFAULT_MAX_VIEWERS: u32 = 4;

/// Which encoder to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EncoderPreference {
    /// NVENC when an NVIDIA GPU and the NVENC elements are there, else x264, else VP8.
    Auto,
    /// NVENC or fail.
    Nvenc,
    /// x264 (CPU, zero-latency).
    X264,
    /// VP8 (CPU).
    Vp8,
}

/// What to do with viewers beyond the first (who controls the desktop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExtraViewers {
    /// Let them watch without input.
    ViewOnly,
    /// Refuse them.
    Refuse,
}

/// The streamer's settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "vdi-streamer", version, about)]
pub struct Settings {
    /// X display to capture.
    #[arg(long, env = "DISPLAY", default_value = DEFAULT_DISPLAY)]
    pub display: String,
    /// Frame width.
    #[arg(long, env = "VDI_WIDTH", default_value_t = DEFAULT_WIDTH)]
    pub width: u32,
    /// Frame height.
    #[arg(long, env = "VDI_HEIGHT", default_value_t = DEFAULT_HEIGHT)]
    pub height: u32,
    /// Frames per second.
    #[arg(long, env = "VDI_FPS", default_value_t = DEFAULT_FPS)]
    pub fps: u32,
    /// Lowest bitrate, kbit/s.
    #[arg(long, env = "VDI_MIN_BITRATE_KBPS", default_value_t = DEFAULT_MIN_BITRATE_KBPS)]
    pub min_bitrate_kbps: u32,
    /// Highest bitrate, kbit/s.
    #[arg(long, env = "VDI_MAX_BITRATE_KBPS", default_value_t = DEFAULT_MAX_BITRATE_KBPS)]
    pub max_bitrate_kbps: u32,
    /// Encoder preference.
    #[arg(long, env = "VDI_ENCODER", value_enum, default_value_t = EncoderPreference::Auto)]
    pub encoder: EncoderPreference,
    /// STUN servers (`stun:host:port`); none by default (no public servers are contacted).
    #[arg(long = "stun", env = "VDI_STUN", value_delimiter = ',')]
    pub stun: Vec<String>,
    /// TURN server (`turn:host:port`).
    #[arg(long, env = "VDI_TURN")]
    pub turn: Option<String>,
    /// Shared secret of the TURN server (REST-style time-limited credentials).
    #[arg(long, env = "VDI_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,
    /// Lifetime of TURN credentials, seconds.
    #[arg(long, env = "VDI_TURN_TTL_SECONDS", default_value_t = DEFAULT_TURN_TTL_SECONDS)]
    pub turn_ttl_seconds: u64,
    /// Address of the HTTP and signalling server.
    #[arg(long, env = "VDI_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// PEM public key(s) (Ed25519) that verify session tokens: during a key rotation the file
    /// holds the current and the previous key, concatenated. Re-read when it changes (a mounted
    /// ConfigMap, key `keys.pem`), so a rotation needs no restart.
    #[arg(long, env = "VDI_TOKEN_PUBLIC_KEY")]
    pub token_public_key: Option<PathBuf>,
    /// This session's name: with `--namespace`, the audience session tokens must carry.
    #[arg(long, env = "VDI_SESSION", default_value = "")]
    pub session: String,
    /// This session's namespace: tokens carry the audience `<namespace>/<session>`. Empty (local
    /// development) expects the bare session name.
    #[arg(long, env = "VDI_NAMESPACE", default_value = "")]
    pub namespace: String,
    /// Extra local addresses for ICE (libnice skips loopback unless told, e.g. `127.0.0.1`).
    #[arg(
        long = "ice-local-address",
        env = "VDI_ICE_LOCAL_ADDRESSES",
        value_delimiter = ','
    )]
    pub ice_local_addresses: Vec<String>,
    /// Share of RTP packets to drop before sending (0.0..1.0): a chaos setting that tests and
    /// demonstrations use to watch the bitrate adapt to loss. Never set it in production.
    #[arg(long, env = "VDI_DROP_PROBABILITY", default_value_t = 0.0, hide = true)]
    pub drop_probability: f64,
    /// What happens to viewers after the first.
    #[arg(long, env = "VDI_EXTRA_VIEWERS", value_enum, default_value_t = ExtraViewers::ViewOnly)]
    pub extra_viewers: ExtraViewers,
    /// This session's uid: when set, tokens must carry it as `sid` (a token minted for an
    /// earlier session of the same name is refused).
    #[arg(long, env = "VDI_SESSION_UID")]
    pub session_uid: Option<String>,
    /// Seconds a WebSocket has to authenticate (`hello` with a valid token) before it is closed.
    #[arg(long, env = "VDI_AUTH_TIMEOUT_SECONDS", default_value_t = DEFAULT_AUTH_TIMEOUT_SECONDS)]
    pub auth_timeout_seconds: u64,
    /// Most WebSockets open at once, authenticated or not; beyond it the upgrade gets HTTP 503.
    #[arg(long, env = "VDI_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: u32,
    /// Most authenticated viewers at once (the controller included); beyond it a viewer gets
    /// `error/busy` and the socket closes.
    #[arg(long, env = "VDI_MAX_VIEWERS", default_value_t = DEFAULT_MAX_VIEWERS)]
    pub max_viewers: u32,
    /// Path prefix the session is served under (`/sessions/<namespace>/<name>/` behind the
    /// proxy, which forwards the whole path); every route is served under it and at the root.
    #[arg(long, env = "VDI_BASE_PATH", default_value = "")]
    pub base_path: String,
}

impl Settings {
    /// Checks values that flags alone cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.width == 0 || self.height == 0 || self.width % 2 == 1 || self.height % 2 == 1 {
            return Err(format!(
                "--width/--height: {}x{} must be even and non-zero",
                self.width, self.height
            ));
        }
        if !(1..=120).contains(&self.fps) {
            return Err(format!("--fps: {} must be between 1 and 120", self.fps));
        }
        if self.min_bitrate_kbps == 0 || self.min_bitrate_kbps > self.max_bitrate_kbps {
            return Err(format!(
                "--min-bitrate-kbps {} must be non-zero and at most --max-bitrate-kbps {}",
                self.min_bitrate_kbps, self.max_bitrate_kbps
            ));
        }
        if !(0.0..1.0).contains(&self.drop_probability) {
            return Err(format!(
                "--drop-probability: {} must be in 0.0..1.0",
                self.drop_probability
            ));
        }
        if self.turn.is_some() != self.turn_secret.is_some() {
            return Err("--turn and --turn-secret go together".into());
        }
        if self.auth_timeout_seconds == 0 {
            return Err("--auth-timeout-seconds must be at least 1".into());
        }
        if self.max_viewers == 0 || self.max_viewers > self.max_connections {
            return Err(format!(
                "--max-viewers {} must be at least 1 and at most --max-connections {}",
                self.max_viewers, self.max_connections
            ));
        }
        if self.session_uid.as_deref() == Some("") {
            return Err("--session-uid must not be empty".into());
        }
        let base = &self.base_path;
        if !base.is_empty()
            && (!base.starts_with('/')
                || base.contains("//")
                || base.split('/').any(|seg| seg == "." || seg == "..")
                || base
                    .chars()
                    .any(|c| c.is_whitespace() || "{}*?#%".contains(c)))
        {
            return Err(format!(
                "--base-path {base:?} must start with / and hold plain path segments"
            ));
        }
        Ok(())
    }

    /// The base path without its trailing slash; empty when the streamer serves at the root.
    pub fn base_prefix(&self) -> &str {
        self.base_path.trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn parse(extra: &[&str]) -> Settings {
        Settings::parse_from([&["vdi-streamer"], extra].concat())
    }

    #[test]
    fn defaults_are_valid_and_the_new_limits_are_checked() {
        let s = parse(&[]);
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(s.max_viewers, DEFAULT_MAX_VIEWERS);
        assert_eq!(s.auth_timeout_seconds, DEFAULT_AUTH_TIMEOUT_SECONDS);
        assert_eq!(s.base_prefix(), "");
        let err = |args: &[&str]| parse(args).validate().expect_err("invalid");
        assert!(err(&["--auth-timeout-seconds", "0"]).contains("--auth-timeout-seconds"));
        assert!(err(&["--max-viewers", "0"]).contains("--max-viewers"));
        assert!(
            err(&["--max-viewers", "5", "--max-connections", "4"]).contains("--max-connections")
        );
        assert!(err(&["--session-uid", ""]).contains("--session-uid"));
        for bad in ["sessions/a", "/a/{b}", "/a/../b", "/a//b", "/a b"] {
            assert!(err(&["--base-path", bad]).contains("--base-path"), "{bad}");
        }
        let s = parse(&["--base-path", "/sessions/team-a/desk-1/"]);
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.base_prefix(), "/sessions/team-a/desk-1");
    }
}
