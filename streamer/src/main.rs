//! `vdi-streamer`: parses settings, chooses the encoder, and serves the web player and WebRTC
//! signalling until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use vdi_streamer::encoder::{GstProbe, choose};
use vdi_streamer::server::Streamer;
use vdi_streamer::settings::Settings;
use vdi_streamer::token::{Verifier, audience};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VDI_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        // Colours only on a terminal: under a node agent the output is a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let settings = Settings::parse();
    if let Err(e) = settings.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(settings: Settings) -> anyhow::Result<()> {
    gstreamer::init().context("GStreamer")?;
    let (encoder, why) = choose(settings.encoder, &GstProbe).map_err(anyhow::Error::msg)?;
    tracing::info!(encoder = encoder.element(), reason = %why, "encoder chosen");
    let verifier = match &settings.token_public_key {
        // Re-read when it changes: a key rotation reaches this streamer without a restart.
        Some(path) => Some(
            Verifier::from_file(path, &audience(&settings.namespace, &settings.session))
                .with_context(|| format!("--token-public-key {}", path.display()))?
                .with_session_uid(settings.session_uid.clone()),
        ),
        None => {
            tracing::warn!("no --token-public-key: every viewer will be refused");
            None
        }
    };
    let listen = settings.listen;
    let streamer = Streamer::new(settings, encoder, verifier);
    let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listen on {listen}"))?;
        tracing::info!(%listen, "streamer listening");
        axum::serve(listener, streamer.router())
            .with_graceful_shutdown(shutdown())
            .await
            .context("serve")
    })
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
