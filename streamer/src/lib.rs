//! The session streamer: captures the X11 desktop, encodes it (NVENC when an NVIDIA GPU is
//! there, x264 or VP8 otherwise, chosen at run time) and sends it to the browser over WebRTC.
//!
//! Today this crate holds the settings, the signalling protocol types, session-token
//! verification, TURN credentials and the encoder choice and encoding pipelines; the WebRTC
//! transport (webrtcbin, signalling server, input, web player) is the streamer issue's next step.

pub mod encoder;
pub mod protocol;
pub mod settings;
pub mod token;
pub mod turn;

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
