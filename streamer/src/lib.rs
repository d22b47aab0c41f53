//! The session streamer: captures the X11 desktop, encodes it (NVENC when an NVIDIA GPU is
//! there, x264 or VP8 otherwise, chosen at run time) and sends it to the browser over WebRTC.
//!
//! One media pipeline per viewer (`webrtc`: capture → encoder → RTP → webrtcbin, trickle ICE, an
//! `input` data channel), the HTTP server (`server`: web player, WebSocket signalling with the
//! session token checked first, one controlling viewer, `/healthz`, `/metrics`), XTest input
//! injection (`input`), and the pieces they use: settings, signalling types, tokens, TURN
//! credentials, the encoder choice. It knows nothing of Kubernetes.

pub mod adapt;
pub mod clipboard;
pub mod encoder;
pub mod harness;
pub mod input;
pub mod protocol;
pub mod server;
pub mod settings;
pub mod token;
pub mod turn;
pub mod webrtc;

/// Capture (X11 display `display`, scaled to the settings) → encoder → RTP payloader, as a
/// `gst-launch` description ending at the payloader.
pub fn capture_pipeline(settings: &settings::Settings, encoder: encoder::Encoder) -> String {
    format!(
        "ximagesrc display-name={display} use-damage=false show-pointer=true ! video/x-raw,framerate={fps}/1 ! videoscale ! videoconvert ! video/x-raw,format=I420,width={w},height={h} ! queue max-size-buffers=1 leaky=downstream ! {enc} ! {pay}",
        display = settings.display,
        fps = settings.fps,
        w = settings.width,
        h = settings.height,
        enc = encoder.description(settings.max_bitrate_kbps, settings.fps),
        pay = encoder.payloader(),
    )
}
