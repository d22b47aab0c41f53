//! One viewer's media path: X11 capture → encoder → RTP → `webrtcbin`, the SDP offer, trickle
//! ICE both ways, and the `input` data channel. Everything the browser must hear comes out as
//! [`PeerEvent`]s on a channel; the signalling server forwards them.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::encoder::Encoder;
use crate::settings::Settings;

/// What a peer tells the signalling side.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerEvent {
    /// The SDP offer to send.
    Offer(String),
    /// A local ICE candidate to send.
    Ice {
        /// Media line index.
        mline: u32,
        /// Candidate line.
        candidate: String,
    },
    /// A text message on the `input` data channel.
    Input(String),
    /// The first encoded frame went out to the browser: the first RTP buffer that reached
    /// `webrtcbin` once its peer connection was `connected` (sent once per pipeline).
    FrameSent,
    /// The pipeline failed; the viewer should be told and dropped.
    Failed(String),
}

/// ICE servers in GStreamer's form.
#[derive(Debug, Clone, Default)]
pub struct IceConfig {
    /// `stun://host:port`.
    pub stun: Option<String>,
    /// `turn://user:password@host:port` (user and password URL-encoded).
    pub turns: Vec<String>,
    /// Local addresses libnice should also use (it skips loopback unless told).
    pub local_addresses: Vec<String>,
}

/// What webrtcbin reports about the outgoing video (cumulative counters; the viewer's view
/// comes from its RTCP receiver reports).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerStats {
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Packets sent.
    pub packets_sent: u64,
    /// Round trip, from RTCP, in ms.
    pub rtt_ms: Option<f64>,
    /// Fraction of packets lost in the last report interval.
    pub fraction_lost: Option<f64>,
    /// Packets lost in total.
    pub packets_lost: Option<i64>,
}

/// Encode times measured between the encoder's sink and source pads.
#[derive(Debug, Default)]
struct EncodeClock {
    started: VecDeque<Instant>,
    done: Vec<Duration>,
    frames: u64,
}

/// A running media pipeline for one viewer.
pub struct Peer {
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
    encoder: gst::Element,
    kind: Encoder,
    channel: gst_webrtc::WebRTCDataChannel,
    clock: Arc<Mutex<EncodeClock>>,
}

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

/// The whole pipeline description for one viewer.
pub fn pipeline_description(settings: &Settings, encoder: Encoder) -> String {
    let chaos = if settings.drop_probability > 0.0 {
        format!(" ! identity drop-probability={}", settings.drop_probability)
    } else {
        String::new()
    };
    format!(
        "{capture}{chaos} ! {caps} ! webrtcbin name=webrtc bundle-policy=max-bundle latency=0",
        capture = crate::capture_pipeline(settings, encoder),
        caps = rtp_caps(encoder),
    )
}

/// Sends [`PeerEvent::FrameSent`] for the first RTP buffer that reaches `webrtc` after its peer
/// connection became `connected`: before that, buffers are dropped inside webrtcbin, after it
/// they go out on the wire.
fn watch_first_frame(
    webrtc: &gst::Element,
    events: UnboundedSender<PeerEvent>,
) -> Result<(), String> {
    let connected = Arc::new(AtomicBool::new(false));
    let flag = connected.clone();
    webrtc.connect_notify(Some("connection-state"), move |element, _| {
        let state = element.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
        if state == gst_webrtc::WebRTCPeerConnectionState::Connected {
            flag.store(true, Ordering::Release);
        }
    });
    let pad = webrtc
        .sink_pads()
        .into_iter()
        .next()
        .ok_or("webrtcbin has no sink pad")?;
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        if !connected.load(Ordering::Acquire) {
            return gst::PadProbeReturn::Ok;
        }
        let _ = events.send(PeerEvent::FrameSent);
        gst::PadProbeReturn::Remove
    });
    Ok(())
}

impl Peer {
    /// Builds the pipeline, creates the `input` data channel and starts it; the offer follows
    /// as a [`PeerEvent::Offer`].
    pub fn start(
        settings: &Settings,
        encoder: Encoder,
        ice: &IceConfig,
        events: UnboundedSender<PeerEvent>,
    ) -> Result<Self, String> {
        let pipeline = gst::parse::launch(&pipeline_description(settings, encoder))
            .map_err(|e| format!("pipeline: {e}"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "pipeline: not a pipeline".to_owned())?;
        let webrtc = pipeline.by_name("webrtc").ok_or("pipeline: no webrtcbin")?;
        if let Some(stun) = &ice.stun {
            webrtc.set_property("stun-server", stun);
        }
        for turn in &ice.turns {
            let _ = webrtc.emit_by_name::<bool>("add-turn-server", &[turn]);
        }
        if !ice.local_addresses.is_empty() {
            let agent = webrtc.property::<glib::Object>("ice-agent");
            for addr in &ice.local_addresses {
                let _ = agent.emit_by_name::<bool>("add-local-ip-address", &[addr]);
            }
        }
        let tx = events.clone();
        webrtc.connect("on-negotiation-needed", false, move |values| {
            let Ok(webrtc) = values[0].get::<gst::Element>() else {
                return None;
            };
            let tx = tx.clone();
            let element = webrtc.clone();
            let promise = gst::Promise::with_change_func(move |reply| {
                let offer = match reply {
                    Ok(Some(s)) => s
                        .value("offer")
                        .ok()
                        .and_then(|v| v.get::<gst_webrtc::WebRTCSessionDescription>().ok()),
                    _ => None,
                };
                let Some(offer) = offer else {
                    let _ = tx.send(PeerEvent::Failed("creating the offer failed".into()));
                    return;
                };
                element
                    .emit_by_name::<()>("set-local-description", &[&offer, &None::<gst::Promise>]);
                match offer.sdp().as_text() {
                    Ok(text) => {
                        let _ = tx.send(PeerEvent::Offer(text));
                    }
                    Err(e) => {
                        let _ = tx.send(PeerEvent::Failed(format!("offer SDP: {e}")));
                    }
                }
            });
            webrtc.emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
            None
        });
        let tx = events.clone();
        webrtc.connect("on-ice-candidate", false, move |values| {
            let mline = values[1].get::<u32>().ok()?;
            let candidate = values[2].get::<String>().ok()?;
            let _ = tx.send(PeerEvent::Ice { mline, candidate });
            None
        });
        pipeline
            .set_state(gst::State::Ready)
            .map_err(|e| format!("pipeline to Ready: {e}"))?;
        let channel = webrtc.emit_by_name::<gst_webrtc::WebRTCDataChannel>(
            "create-data-channel",
            &[&"input", &None::<gst::Structure>],
        );
        let tx = events.clone();
        channel.connect_on_message_string(move |_, text| {
            if let Some(text) = text {
                let _ = tx.send(PeerEvent::Input(text.to_owned()));
            }
        });
        let bus = pipeline.bus().ok_or("pipeline: no bus")?;
        let events_for_frames = events.clone();
        let tx = events;
        bus.set_sync_handler(move |_, msg| {
            if let gst::MessageView::Error(e) = msg.view() {
                let _ = tx.send(PeerEvent::Failed(format!(
                    "{}: {}",
                    e.src().map(|s| s.name().to_string()).unwrap_or_default(),
                    e.error()
                )));
            }
            gst::BusSyncReply::Drop
        });
        watch_first_frame(&webrtc, events_for_frames)?;
        let encoder_element = pipeline.by_name("encoder").ok_or("pipeline: no encoder")?;
        let clock = Arc::new(Mutex::new(EncodeClock::default()));
        for (pad, entering) in [("sink", true), ("src", false)] {
            let clock = clock.clone();
            let pad = encoder_element
                .static_pad(pad)
                .ok_or_else(|| format!("encoder has no {pad} pad"))?;
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                let mut c = clock
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("pipeline to Playing: {e}"))?;
        Ok(Self {
            pipeline,
            webrtc,
            encoder: encoder_element,
            kind: encoder,
            channel,
            clock,
        })
    }

    /// Applies the browser's answer.
    pub fn set_answer(&self, sdp: &str) -> Result<(), String> {
        let message = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes())
            .map_err(|e| format!("answer SDP: {e}"))?;
        let answer =
            gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, message);
        self.webrtc
            .emit_by_name::<()>("set-remote-description", &[&answer, &None::<gst::Promise>]);
        Ok(())
    }

    /// Adds the browser's ICE candidate (an empty one ends the trickle and is ignored).
    pub fn add_ice(&self, mline: u32, candidate: &str) {
        if !candidate.is_empty() {
            self.webrtc
                .emit_by_name::<()>("add-ice-candidate", &[&mline, &candidate]);
        }
    }

    /// Sends text to the browser on the `input` data channel (clipboard, acknowledgements).
    pub fn send(&self, text: &str) -> Result<(), String> {
        self.channel
            .send_string_full(Some(text))
            .map_err(|e| e.to_string())
    }

    /// Encode times since the last call, and frames encoded in total.
    pub fn take_encode_times(&self) -> (Vec<Duration>, u64) {
        let mut c = self
            .clock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (std::mem::take(&mut c.done), c.frames)
    }

    /// Changes the encoder's bitrate while it runs.
    pub fn set_bitrate(&self, kbps: u32) {
        self.kind.set_bitrate(&self.encoder, kbps);
    }

    /// Asks webrtcbin for its statistics.
    pub async fn stats(&self) -> PeerStats {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let promise = gst::Promise::with_change_func(move |reply| {
            let _ = tx.send(reply.ok().flatten().map(ToOwned::to_owned));
        });
        self.webrtc
            .emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
        let Ok(Some(reply)) = rx.await else {
            return PeerStats::default();
        };
        let mut out = PeerStats::default();
        for (_, value) in reply.iter() {
            let Ok(s) = value.get::<gst::Structure>() else {
                continue;
            };
            match s.get::<gst_webrtc::WebRTCStatsType>("type") {
                Ok(gst_webrtc::WebRTCStatsType::OutboundRtp) => {
                    out.bytes_sent += s.get::<u64>("bytes-sent").unwrap_or(0);
                    out.packets_sent += s.get::<u64>("packets-sent").unwrap_or(0);
                }
                Ok(gst_webrtc::WebRTCStatsType::RemoteInboundRtp) => {
                    out.rtt_ms = s.get::<f64>("round-trip-time").ok().map(|r| r * 1000.0);
                    out.fraction_lost = s.get::<f64>("fraction-lost").ok();
                    out.packets_lost = s
                        .get::<i64>("packets-lost")
                        .ok()
                        .or_else(|| s.get::<i32>("packets-lost").ok().map(i64::from));
                }
                _ => {}
            }
        }
        out
    }

    /// Stops the pipeline (it cannot be restarted).
    pub fn stop(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // A pipeline must reach Null before it is dropped.
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
