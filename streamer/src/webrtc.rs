//! One viewer's branch on the session's shared encode ([`crate::media::Encode`]): tee → leaky
//! queue → `webrtcbin`, the SDP offer, trickle ICE both ways, and the `input` data channel.
//! Everything the browser must hear comes out as [`PeerEvent`]s on a channel; the signalling
//! server forwards them.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc::UnboundedSender;

use crate::media::{BRANCH_PREFIX, Encode};

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
    /// This viewer's branch failed; the viewer should be told and dropped.
    Failed(String),
    /// The shared encode failed: every viewer hears it and moves to a new one.
    EncodeFailed(String),
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

/// One viewer's branch on a running [`Encode`].
pub struct Peer {
    encode: Arc<Encode>,
    id: u64,
    tee_pad: gst::Pad,
    queue: gst::Element,
    webrtc: gst::Element,
    channel: gst_webrtc::WebRTCDataChannel,
}

/// How much a slow viewer's queue holds before it drops (the others never wait for it).
const BRANCH_QUEUE_NS: u64 = 500_000_000;

/// The upstream event that asks an encoder for a key frame with its headers (GstVideo's
/// `GstForceKeyUnit`, built by hand: the video library's helper is not bound here).
fn force_key_unit() -> gst::Event {
    let s = gst::Structure::builder("GstForceKeyUnit")
        .field("running-time", u64::MAX)
        .field("all-headers", true)
        .field("count", 0u32)
        .build();
    gst::event::CustomUpstream::new(s)
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
        if state == gst_webrtc::WebRTCPeerConnectionState::Connected
            && !flag.swap(true, Ordering::AcqRel)
        {
            // The shared encoder's next frame may be far from a key frame: ask for one, so
            // a viewer joining a running encode sees a picture at once.
            if let Some(pad) = element.sink_pads().first() {
                let _ = pad.push_event(force_key_unit());
            }
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
    /// Hangs a branch on `encode`, creates the `input` data channel and starts it; the offer
    /// follows as a [`PeerEvent::Offer`].
    pub fn attach(
        encode: &Arc<Encode>,
        ice: &IceConfig,
        events: UnboundedSender<PeerEvent>,
    ) -> Result<Self, String> {
        let id = encode.register(events.clone());
        let name = format!("{BRANCH_PREFIX}{id}");
        let built = Self::build(encode, id, &name, ice, events);
        if built.is_err() {
            encode.unregister(id);
            for suffix in ["", "-queue"] {
                if let Some(e) = encode.pipeline.by_name(&format!("{name}{suffix}")) {
                    let _ = e.set_state(gst::State::Null);
                    let _ = encode.pipeline.remove(&e);
                }
            }
        }
        built
    }

    fn build(
        encode: &Arc<Encode>,
        id: u64,
        name: &str,
        ice: &IceConfig,
        events: UnboundedSender<PeerEvent>,
    ) -> Result<Self, String> {
        let queue = gst::ElementFactory::make("queue")
            .name(format!("{name}-queue"))
            .property_from_str("leaky", "downstream")
            .property("max-size-buffers", 0u32)
            .property("max-size-bytes", 0u32)
            .property("max-size-time", BRANCH_QUEUE_NS)
            .build()
            .map_err(|e| format!("queue: {e}"))?;
        let webrtc = gst::ElementFactory::make("webrtcbin")
            .name(name)
            .property_from_str("bundle-policy", "max-bundle")
            .property("latency", 0u32)
            .build()
            .map_err(|e| format!("webrtcbin: {e}"))?;
        encode
            .pipeline
            .add_many([&queue, &webrtc])
            .map_err(|e| format!("branch: {e}"))?;
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
            let webrtc = values.first()?.get::<gst::Element>().ok()?;
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
            let mline = values.get(1)?.get::<u32>().ok()?;
            let candidate = values.get(2)?.get::<String>().ok()?;
            let _ = tx.send(PeerEvent::Ice { mline, candidate });
            None
        });
        queue
            .link(&webrtc)
            .map_err(|e| format!("queue to webrtcbin: {e}"))?;
        webrtc
            .set_state(gst::State::Ready)
            .map_err(|e| format!("webrtcbin to Ready: {e}"))?;
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
        watch_first_frame(&webrtc, events)?;
        for element in [&webrtc, &queue] {
            element
                .sync_state_with_parent()
                .map_err(|e| format!("branch to Playing: {e}"))?;
        }
        let tee_pad = encode
            .tee
            .request_pad_simple("src_%u")
            .ok_or("tee: no source pad")?;
        let queue_sink = queue.static_pad("sink").ok_or("queue: no sink pad")?;
        if let Err(e) = tee_pad.link(&queue_sink) {
            encode.tee.release_request_pad(&tee_pad);
            return Err(format!("tee to queue: {e:?}"));
        }
        Ok(Self {
            encode: encode.clone(),
            id,
            tee_pad,
            queue,
            webrtc,
            channel,
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

    /// The encode this branch hangs on.
    pub fn encode(&self) -> &Arc<Encode> {
        &self.encode
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
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Off the tee first (releasing the pad unlinks it), so no buffer reaches elements on
        // their way out.
        self.encode.tee.release_request_pad(&self.tee_pad);
        // Downstream first: until it is negotiated webrtcbin blocks its sink pad, and the queue
        // pushing into it could not stop while it holds the buffer.
        for element in [&self.webrtc, &self.queue] {
            let _ = element.set_state(gst::State::Null);
        }
        let _ = self
            .encode
            .pipeline
            .remove_many([&self.queue, &self.webrtc]);
        self.encode.unregister(self.id);
    }
}
