//! The session's one encode: X11 capture → encoder → RTP payloader → `tee`. Every viewer's
//! `webrtcbin` is a branch on that tee ([`crate::webrtc::Peer`]), so view-only viewers share the
//! controller's encode instead of running an encoder each. A failing branch is that viewer's
//! alone; a failing encode is everyone's (each branch hears [`PeerEvent::EncodeFailed`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use tokio::sync::mpsc::UnboundedSender;

use crate::encoder::Encoder;
use crate::settings::Settings;
use crate::webrtc::PeerEvent;

/// Name prefix of the elements of one viewer's branch (`viewer-<id>`, `viewer-<id>-queue`).
pub(crate) const BRANCH_PREFIX: &str = "viewer-";

fn rtp_caps(encoder: Encoder) -> &'static str {
    match encoder {
        Encoder::Nvenc | Encoder::X264 => {
            "application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000"
        }
        Encoder::Vp8 => {
            "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000"
        }
    }
}

/// The shared part of the pipeline, up to the tee that viewers' branches hang on.
pub fn pipeline_description(settings: &Settings, encoder: Encoder) -> String {
    let chaos = if settings.drop_probability > 0.0 {
        format!(" ! identity drop-probability={}", settings.drop_probability)
    } else {
        String::new()
    };
    format!(
        "{capture}{chaos} ! {caps} ! tee name=fanout allow-not-linked=true",
        capture = crate::capture_pipeline(settings, encoder),
        caps = rtp_caps(encoder),
    )
}

/// The branch a pipeline element belongs to, from its name or its parents' names.
pub(crate) fn branch_of(element: Option<&gst::Object>) -> Option<u64> {
    let mut at = element.cloned();
    while let Some(object) = at {
        let name = object.name();
        if let Some(rest) = name.strip_prefix(BRANCH_PREFIX) {
            let digits = rest.split('-').next().unwrap_or_default();
            if let Ok(id) = digits.parse() {
                return Some(id);
            }
        }
        at = object.parent();
    }
    None
}

/// Encode times measured between the encoder's sink and source pads.
#[derive(Debug, Default)]
struct EncodeClock {
    started: VecDeque<Instant>,
    done: Vec<Duration>,
    frames: u64,
    sampled: Option<(Instant, u64)>,
}

/// What the encoder did since the last sample.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeSample {
    /// Time each frame spent in the encoder.
    pub times: Vec<Duration>,
    /// Frames encoded.
    pub frames: u64,
    /// Frames per second over the interval.
    pub fps: f64,
}

/// The running shared pipeline.
pub struct Encode {
    pub(crate) pipeline: gst::Pipeline,
    pub(crate) tee: gst::Element,
    encoder: gst::Element,
    kind: Encoder,
    clock: Arc<Mutex<EncodeClock>>,
    branches: Arc<Mutex<HashMap<u64, UnboundedSender<PeerEvent>>>>,
    next_branch: AtomicU64,
    live: Arc<AtomicU64>,
}

impl Encode {
    /// Builds and plays the shared pipeline; `live` counts running encodes.
    pub fn start(
        settings: &Settings,
        encoder: Encoder,
        live: Arc<AtomicU64>,
    ) -> Result<Arc<Self>, String> {
        let pipeline = gst::parse::launch(&pipeline_description(settings, encoder))
            .map_err(|e| format!("pipeline: {e}"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "pipeline: not a pipeline".to_owned())?;
        let tee = pipeline.by_name("fanout").ok_or("pipeline: no tee")?;
        let encoder_element = pipeline.by_name("encoder").ok_or("pipeline: no encoder")?;
        let branches: Arc<Mutex<HashMap<u64, UnboundedSender<PeerEvent>>>> = Arc::default();
        let routes = branches.clone();
        let bus = pipeline.bus().ok_or("pipeline: no bus")?;
        bus.set_sync_handler(move |_, msg| {
            if let gst::MessageView::Error(e) = msg.view() {
                let what = format!(
                    "{}: {}",
                    e.src().map(|s| s.name().to_string()).unwrap_or_default(),
                    e.error()
                );
                let routes = routes.lock().unwrap_or_else(PoisonError::into_inner);
                match branch_of(e.src()) {
                    Some(id) => {
                        if let Some(tx) = routes.get(&id) {
                            let _ = tx.send(PeerEvent::Failed(what));
                        }
                    }
                    None => {
                        for tx in routes.values() {
                            let _ = tx.send(PeerEvent::EncodeFailed(what.clone()));
                        }
                    }
                }
            }
            gst::BusSyncReply::Drop
        });
        let clock = Arc::new(Mutex::new(EncodeClock::default()));
        for (pad, entering) in [("sink", true), ("src", false)] {
            let clock = clock.clone();
            let pad = encoder_element
                .static_pad(pad)
                .ok_or_else(|| format!("encoder has no {pad} pad"))?;
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                let mut c = clock.lock().unwrap_or_else(PoisonError::into_inner);
                if entering {
                    if c.started.len() > 64 {
                        c.started.pop_front();
                    }
                    c.started.push_back(Instant::now());
                } else {
                    c.frames += 1;
                    // Latency-tuned encoders emit frames in order, one per input (their output
                    // timestamps may be shifted, so order, not PTS, pairs them).
                    if let Some(at) = c.started.pop_front()
                        && c.done.len() < 1024
                    {
                        c.done.push(at.elapsed());
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
        let encode = Arc::new(Self {
            pipeline,
            tee,
            encoder: encoder_element,
            kind: encoder,
            clock,
            branches,
            next_branch: AtomicU64::new(0),
            live,
        });
        encode.live.fetch_add(1, Ordering::AcqRel);
        // From here Drop sets the pipeline to Null, whatever happens next.
        encode
            .pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("pipeline to Playing: {e}"))?;
        Ok(encode)
    }

    /// The encoder this pipeline runs.
    pub fn encoder(&self) -> Encoder {
        self.kind
    }

    /// A fresh branch id whose pipeline errors go to `events`.
    pub(crate) fn register(&self, events: UnboundedSender<PeerEvent>) -> u64 {
        let id = self.next_branch.fetch_add(1, Ordering::AcqRel);
        self.branches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, events);
        id
    }

    /// Forgets a branch.
    pub(crate) fn unregister(&self, id: u64) {
        self.branches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// What the encoder did since the last sample, once at least `every` has passed (whoever
    /// asks first gets it, so each frame is counted once however many viewers there are).
    pub fn sample(&self, every: Duration) -> Option<EncodeSample> {
        let now = Instant::now();
        let mut c = self.clock.lock().unwrap_or_else(PoisonError::into_inner);
        let (since, frames_then) = *c.sampled.get_or_insert((now, 0));
        let elapsed = now.saturating_duration_since(since);
        if elapsed < every {
            return None;
        }
        let frames = c.frames.saturating_sub(frames_then);
        c.sampled = Some((now, c.frames));
        Some(EncodeSample {
            times: std::mem::take(&mut c.done),
            frames,
            fps: frames as f64 / elapsed.as_secs_f64().max(1e-3),
        })
    }

    /// Changes the encoder's bitrate while it runs.
    pub fn set_bitrate(&self, kbps: u32) {
        self.kind.set_bitrate(&self.encoder, kbps);
    }
}

impl Drop for Encode {
    fn drop(&mut self) {
        // A pipeline must reach Null before it is dropped.
        let _ = self.pipeline.set_state(gst::State::Null);
        self.live.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_routed_to_the_branch_they_come_from() {
        gst::init().expect("GStreamer");
        let bin = gst::Bin::with_name("viewer-7");
        let inner = gst::ElementFactory::make("queue")
            .name("inner")
            .build()
            .expect("queue");
        bin.add(&inner).expect("add");
        assert_eq!(branch_of(Some(inner.upcast_ref())), Some(7));
        let queue = gst::ElementFactory::make("queue")
            .name("viewer-12-queue")
            .build()
            .expect("queue");
        assert_eq!(branch_of(Some(queue.upcast_ref())), Some(12));
        let encoder = gst::ElementFactory::make("queue")
            .name("encoder")
            .build()
            .expect("queue");
        assert_eq!(branch_of(Some(encoder.upcast_ref())), None);
        assert_eq!(branch_of(None), None);
    }

    #[test]
    fn the_shared_part_ends_at_the_tee() {
        use clap::Parser as _;
        let settings = Settings::parse_from(["vdi-streamer"]);
        let d = pipeline_description(&settings, Encoder::X264);
        assert!(d.contains("x264enc"), "{d}");
        assert!(d.ends_with("tee name=fanout allow-not-linked=true"), "{d}");
        assert!(!d.contains("webrtcbin"), "{d}");
    }
}
