//! `vdi-streamer`: parses settings and runs the streamer.

use std::process::ExitCode;

use clap::Parser;
use vdi_streamer::encoder::{GstProbe, choose};
use vdi_streamer::settings::Settings;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VDI_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let settings = Settings::parse();
    if let Err(e) = settings.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = gstreamer::init() {
        eprintln!("error: GStreamer: {e}");
        return ExitCode::FAILURE;
    }
    let (encoder, why) = match choose(settings.encoder, &GstProbe) {
        Ok(choice) => choice,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(encoder = encoder.element(), reason = %why, "encoder chosen");
    println!("encoder:  {} ({why})", encoder.element());
    println!(
        "pipeline: {}",
        vdi_streamer::capture_pipeline(&settings, encoder)
    );
    // The WebRTC transport is not built yet; say so rather than pretend to stream.
    eprintln!(
        "vdi-streamer: WebRTC streaming is not implemented yet; this build only probes the encoder"
    );
    ExitCode::from(3)
}
