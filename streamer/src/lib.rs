//! The session streamer: captures the X11 desktop, encodes it (NVENC when an NVIDIA GPU is
//! there, x264 or VP8 otherwise, chosen at run time) and sends it to the browser over WebRTC.
//!
//! One encode per session (`media`: capture → encoder → RTP → tee) with one branch per viewer
//! (`webrtc`: queue → webrtcbin, trickle ICE, an `input` data channel), the HTTP server (`server`: web player, WebSocket signalling with the
//! session token checked first within a timeout, capped sockets and viewers, one controlling
//! viewer, `/healthz`, `/metrics`, `/activity` for the operator), XTest input
//! injection (`input`), and the pieces they use: settings, signalling types, tokens, TURN
//! credentials, the encoder choice. It knows nothing of Kubernetes.

pub mod activity;
pub mod adapt;
pub mod clipboard;
pub mod encoder;
pub mod gpu;
pub mod harness;
pub mod input;
pub mod keyfile;
pub mod media;
pub mod protocol;
pub mod resize;
pub mod server;
pub mod settings;
pub mod token;
pub mod turn;
pub mod webrtc;

/// Capture (X11 display `display`, scaled to the settings) → encoder → RTP payloader, as a
/// `gst-launch` description ending at the payloader. With NVENC, frames go to CUDA memory right
/// after capture and are converted and scaled on the GPU (`cudaupload ! cudaconvert !
/// cudascale`); the CPU encoders get I420 from `videoconvert`.
pub fn capture_pipeline(settings: &settings::Settings, encoder: encoder::Encoder) -> String {
    let source = format!(
        "ximagesrc display-name={display} use-damage=false show-pointer=true ! video/x-raw,framerate={fps}/1",
        display = settings.display,
        fps = settings.fps,
    );
    let (w, h) = (settings.width, settings.height);
    let convert = match encoder {
        encoder::Encoder::Nvenc => format!(
            "cudaupload ! cudaconvert ! cudascale ! video/x-raw(memory:CUDAMemory),format=NV12,width={w},height={h}"
        ),
        _ => format!("videoscale ! videoconvert ! video/x-raw,format=I420,width={w},height={h}"),
    };
    format!(
        "{source} ! {convert} ! queue max-size-buffers=1 leaky=downstream ! {enc} ! {pay}",
        enc = encoder.description(settings.max_bitrate_kbps, settings.fps),
        pay = encoder.payloader(),
    )
}
