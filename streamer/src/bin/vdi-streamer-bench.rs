//! `vdi-streamer-bench`: glass-to-glass latency, CPU per stream and time to the first decoded
//! frame, at 720p30 and 1080p30 with x264, measured end to end: a drawer paints the wall clock
//! into an Xvfb display, the streamer (in this process) encodes and sends it, headless Chromium
//! decodes it and reads the clock back from each frame. Then the GPU figures, or why they were
//! skipped. Needs Xvfb, node with playwright-core and Chromium (scripts/setup.sh installs them).
//!
//! `vdi-streamer-bench [SECONDS]` runs everything; `vdi-streamer-bench gpu` only the GPU figures
//! (cudarc upload throughput, NVENC encode time per 1080p frame alone and 8 at once).

use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::Parser as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use vdi_streamer::encoder::{Encoder, GstProbe, NVENC_ELEMENT, Probe as _};
use vdi_streamer::harness::{Xvfb, draw_clock, drive, ed25519_keys};
use vdi_streamer::server::Streamer;
use vdi_streamer::settings::Settings;
use vdi_streamer::token::{Claims, Verifier};

/// CPU time of this process (user + system), from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

struct Figures {
    first_frame_ms: u64,
    p50: f64,
    p99: f64,
    samples: u64,
    fps: f64,
    cores: f64,
}

fn measure(width: u32, height: u32, seconds: u32) -> anyhow::Result<Figures> {
    let x = Xvfb::start(width, height).context("start Xvfb")?;
    let mut drawer = Command::new(std::env::current_exe()?)
        .args(["draw", &x.display])
        .stdout(Stdio::null())
        .spawn()
        .context("start the clock drawer")?;
    let (private, public) = ed25519_keys().context("make keys with openssl")?;
    let w = width.to_string();
    let h = height.to_string();
    let settings = Settings::parse_from([
        "vdi-streamer",
        "--display",
        &x.display,
        "--width",
        &w,
        "--height",
        &h,
        "--session",
        "bench",
        "--encoder",
        "x264",
        "--ice-local-address",
        "127.0.0.1",
    ]);
    let verifier = Verifier::new(&public, "bench")?;
    let streamer: Arc<Streamer> = Streamer::new(settings, Encoder::X264, Some(verifier));
    let runtime = tokio::runtime::Runtime::new()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let router = streamer.router();
    runtime.spawn(async move { axum::serve(listener, router).await });
    let exp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 3600;
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &Claims {
            aud: "bench".into(),
            sub: "bench".into(),
            exp,
            sid: None,
            stream_exp: None,
        },
        &EncodingKey::from_ed_pem(&private)?,
    )?;
    let url = format!("http://{addr}/#token={token}");
    let mut window: Option<(Instant, Duration)> = None;
    let secs = seconds.to_string();
    let (events, ok) = drive(&url, "latency", &[&secs], |e| {
        if e["event"] == "first-frame" {
            window = Some((Instant::now(), cpu_time()));
        }
    })?;
    let _ = drawer.kill();
    let _ = drawer.wait();
    let (started, cpu0) = window.context("no frame was decoded")?;
    let cores = (cpu_time() - cpu0).as_secs_f64() / started.elapsed().as_secs_f64();
    if !ok {
        bail!("browser run failed: {events:?}");
    }
    let get = |name: &str| events.iter().find(|e| e["event"] == name).cloned();
    let first = get("first-frame").context("no first frame")?;
    let latency = get("latency").context("no latency figures")?;
    let stats = get("stats").context("no stats")?;
    Ok(Figures {
        first_frame_ms: first["ms"].as_u64().unwrap_or(0),
        p50: latency["p50"].as_f64().unwrap_or(f64::NAN),
        p99: latency["p99"].as_f64().unwrap_or(f64::NAN),
        samples: latency["samples"].as_u64().unwrap_or(0),
        fps: stats["fpsMeasured"].as_f64().unwrap_or(0.0),
        cores,
    })
}

/// Per-frame encode times of `pipelines` NVENC encodes of `frames` 1080p frames at once.
fn nvenc_encode(pipelines: usize, frames: u32) -> anyhow::Result<(Vec<Duration>, Duration)> {
    use gstreamer::prelude::*;
    use std::sync::Mutex;
    let times: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut running = Vec::new();
    let started = Instant::now();
    for _ in 0..pipelines {
        let description = format!(
            "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=1920,height=1080,framerate=30/1 ! cudaupload ! cudaconvert ! video/x-raw(memory:CUDAMemory),format=NV12 ! {} ! fakesink sync=false",
            Encoder::Nvenc.description(8000, 30)
        );
        let pipeline = gstreamer::parse::launch(&description)?
            .downcast::<gstreamer::Pipeline>()
            .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
        let encoder = pipeline.by_name("encoder").context("no encoder")?;
        let queue: Arc<Mutex<std::collections::VecDeque<Instant>>> = Arc::default();
        for (pad, entering) in [("sink", true), ("src", false)] {
            let (queue, times) = (queue.clone(), times.clone());
            encoder.static_pad(pad).context("pad")?.add_probe(
                gstreamer::PadProbeType::BUFFER,
                move |_, _| {
                    let mut q = queue
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if entering {
                        q.push_back(Instant::now());
                    } else if let Some(at) = q.pop_front() {
                        times
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(at.elapsed());
                    }
                    gstreamer::PadProbeReturn::Ok
                },
            );
        }
        pipeline.set_state(gstreamer::State::Playing)?;
        running.push(pipeline);
    }
    for p in &running {
        let bus = p.bus().context("bus")?;
        bus.timed_pop_filtered(
            gstreamer::ClockTime::from_seconds(120),
            &[gstreamer::MessageType::Eos, gstreamer::MessageType::Error],
        );
        p.set_state(gstreamer::State::Null)?;
    }
    let elapsed = started.elapsed();
    let mut t = times
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    t.sort();
    Ok((t, elapsed))
}

/// NVENC and cudarc figures, or why they were skipped.
fn gpu_figures() {
    let info = match vdi_streamer::gpu::probe() {
        Ok(info) => info,
        Err(reason) => {
            println!("GPU benchmark skipped: {reason}");
            return;
        }
    };
    if !GstProbe.has_element(NVENC_ELEMENT) {
        println!(
            "GPU benchmark skipped: {} is present but GStreamer has no {NVENC_ELEMENT}",
            info.name
        );
        return;
    }
    println!("GPU: {}", info.name);
    match vdi_streamer::gpu::upload_throughput(1920 * 1080 * 4, 600) {
        Ok((gbps, per_frame)) => println!(
            "cudarc upload, 1080p BGRx from pinned memory: {gbps:.1} GB/s ({:.3} ms per frame)",
            per_frame.as_secs_f64() * 1e3
        ),
        Err(e) => println!("cudarc upload failed: {e}"),
    }
    for n in [1, 8] {
        match nvenc_encode(n, 300) {
            Ok((times, elapsed)) if !times.is_empty() => {
                let q = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
                println!(
                    "NVENC 1080p, {n} encode(s) at once: per frame p50 {:.2} ms p99 {:.2} ms; {:.0} frames/s in total",
                    q(0.5).as_secs_f64() * 1e3,
                    q(0.99).as_secs_f64() * 1e3,
                    times.len() as f64 / elapsed.as_secs_f64()
                );
            }
            Ok(_) => println!("NVENC 1080p, {n} at once: no frames came out"),
            Err(e) => println!("NVENC 1080p, {n} at once failed: {e:#}"),
        }
    }
}

fn main() -> anyhow::Result<ExitCode> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("draw") {
        let display = args.get(2).context("draw <display>")?;
        draw_clock(display).map_err(anyhow::Error::msg)?;
        return Ok(ExitCode::SUCCESS);
    }
    gstreamer::init()?;
    if args.get(1).map(String::as_str) == Some("gpu") {
        gpu_figures();
        return Ok(ExitCode::SUCCESS);
    }
    let seconds: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    println!("glass-to-glass latency, x264 (zerolatency, ultrafast), {seconds} s per size");
    println!(
        "{:<10} {:>12} {:>10} {:>10} {:>9} {:>8} {:>12}",
        "size", "first frame", "p50", "p99", "samples", "fps", "CPU (cores)"
    );
    for (w, h) in [(1280, 720), (1920, 1080)] {
        let f = measure(w, h, seconds)?;
        println!(
            "{:<10} {:>9} ms {:>7.1} ms {:>7.1} ms {:>9} {:>8.1} {:>12.2}",
            format!("{w}x{h}"),
            f.first_frame_ms,
            f.p50,
            f.p99,
            f.samples,
            f.fps,
            f.cores
        );
    }
    println!();
    gpu_figures();
    Ok(ExitCode::SUCCESS)
}
