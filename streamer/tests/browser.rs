//! The streamer end to end: an Xvfb display, the streamer serving its web player, and headless
//! Chromium (driven by `tests/browser/drive.mjs` through playwright-core) decoding the stream and
//! sending input, which is checked from the X server's side.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser as _;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;
use vdi_streamer::encoder::Encoder;
use vdi_streamer::harness::{self, Turn, Xvfb};
use vdi_streamer::server::Streamer;
use vdi_streamer::settings::Settings;
use vdi_streamer::token::{Claims, Verifier};
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::ConnectionExt as _;

struct Keys {
    signing: EncodingKey,
    public_pem: Vec<u8>,
}

fn keys() -> Keys {
    let signing = SigningKey::generate(&mut rand::rngs::OsRng);
    let private = signing.to_pkcs8_pem(Default::default()).unwrap();
    let public = signing
        .verifying_key()
        .to_public_key_pem(Default::default())
        .unwrap();
    Keys {
        signing: EncodingKey::from_ed_pem(private.as_bytes()).unwrap(),
        public_pem: public.into_bytes(),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(keys: &Keys, session: &str, exp: u64) -> String {
    let claims = Claims {
        aud: session.into(),
        sub: "alice".into(),
        exp,
        sid: None,
        stream_exp: None,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &keys.signing).unwrap()
}

/// The streamer serving on a free loopback port, in this process.
struct Served {
    addr: std::net::SocketAddr,
    runtime: tokio::runtime::Runtime,
    streamer: Arc<Streamer>,
}

fn serve(display: &str, keys: &Keys, extra: &[&str]) -> Served {
    serve_with(display, keys, extra, Encoder::X264)
}

fn serve_with(display: &str, keys: &Keys, extra: &[&str], encoder: Encoder) -> Served {
    gstreamer::init().unwrap();
    let mut args = vec![
        "vdi-streamer",
        "--display",
        display,
        "--session",
        "desk-1",
        "--encoder",
        "x264",
        "--ice-local-address",
        "127.0.0.1",
    ];
    args.extend_from_slice(extra);
    let settings = Settings::parse_from(args);
    let verifier = Verifier::new(&keys.public_pem, "desk-1").unwrap();
    let streamer = Streamer::new(settings, encoder, Some(verifier));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let router = streamer.router();
    runtime.spawn(async move { axum::serve(listener, router).await });
    Served {
        addr,
        runtime,
        streamer,
    }
}

/// Runs a browser scenario; calls `on_event` for each JSON line as it comes; returns them all.
fn drive(url: &str, scenario: &str, on_event: impl FnMut(&Value)) -> Vec<Value> {
    let (events, ok) = harness::drive(url, scenario, &[], on_event)
        .expect("run node (scripts/setup.sh installs playwright-core)");
    assert!(ok, "browser scenario {scenario} failed: {events:?}");
    events
}

/// The web player's address with a valid token for `desk-1` (`query` e.g. `?relay=1`).
fn player_url(served: &Served, keys: &Keys, query: &str) -> String {
    format!(
        "http://{}/{query}#token={}",
        served.addr,
        token(keys, "desk-1", now() + 600)
    )
}

fn find<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| panic!("no {name} event in {events:?}"))
}

fn get(served: &Served, path: &str) -> String {
    served.runtime.block_on(async {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut s = tokio::net::TcpStream::connect(served.addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).await.unwrap();
        body[body.find("\r\n\r\n").unwrap() + 4..].to_owned()
    })
}

fn activity(served: &Served) -> Value {
    serde_json::from_str(&get(served, "/activity")).unwrap()
}

fn health(served: &Served) -> Value {
    serde_json::from_str(&get(served, "/healthz")).unwrap()
}

/// The value of an OpenMetrics sample line starting with `name`.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

/// X clients connected now (XRes).
fn x_clients(conn: &impl x11rb::connection::RequestConnection) -> usize {
    use x11rb::protocol::res::ConnectionExt as _;
    conn.res_query_clients()
        .unwrap()
        .reply()
        .unwrap()
        .clients
        .len()
}

#[test]
fn chromium_decodes_the_desktop_and_its_input_reaches_the_x_server() {
    let x = Xvfb::start(1280, 720).expect("start Xvfb");
    let keys = keys();
    let served = serve(&x.display, &keys, &[]);
    let url = player_url(&served, &keys, "");
    let (conn, screen) = x11rb::connect(Some(&x.display)).unwrap();
    let root = conn.setup().roots[screen].root;
    let keycode_of = |sym: u32| {
        let setup = conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let map = conn
            .get_keyboard_mapping(min, max - min + 1)
            .unwrap()
            .reply()
            .unwrap();
        let per = usize::from(map.keysyms_per_keycode);
        let i = map.keysyms.iter().position(|s| *s == sym).unwrap() / per;
        min + u8::try_from(i).unwrap()
    };
    let a_keycode = keycode_of(0x61);
    let b_keycode = keycode_of(0x62);
    let is_down = |code: u8| {
        let keys = conn.query_keymap().unwrap().reply().unwrap().keys;
        keys[usize::from(code / 8)] & (1 << (code % 8)) != 0
    };
    let key_is_down = || is_down(a_keycode);
    let mut b_held = false;
    let mut b_released = false;
    let desktop_clipboard = vdi_streamer::clipboard::Clipboard::connect(&x.display).unwrap();
    let clients_before = x_clients(&conn);
    let mut from_browser = None;
    let mut pointer = None;
    let mut down_seen = false;
    let mut at_first_frame = None;
    let events = drive(&url, "input", |e| match e["event"].as_str() {
        Some("first-frame") => {
            // The streamer records the frame it sent before the browser decodes it; the note
            // travels through the viewer's event loop, so give it a moment.
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut now = activity(&served);
            while now["firstFrameAt"].is_null() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
                now = activity(&served);
            }
            at_first_frame = Some(now);
        }
        Some("pointer-moved") => {
            let p = conn.query_pointer(root).unwrap().reply().unwrap();
            pointer = Some((p.root_x, p.root_y));
        }
        Some("b-down") => b_held = is_down(b_keycode),
        Some("disconnected-holding-b") => b_released = !is_down(b_keycode),
        Some("clipboard-set") => {
            from_browser = desktop_clipboard.get().unwrap();
            desktop_clipboard.set("hello from X").unwrap();
        }
        Some("key-down") => {
            let deadline = Instant::now() + Duration::from_secs(1);
            while !down_seen && Instant::now() < deadline {
                down_seen = key_is_down();
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        _ => {}
    });
    let first = find(&events, "first-frame");
    assert!(first["ms"].as_u64().unwrap() < 10_000, "{first}");
    let stats = find(&events, "stats");
    assert!(
        stats["fpsMeasured"].as_f64().unwrap() >= 25.0,
        "about 30 fps expected: {stats}"
    );
    // Loopback loses nothing unless the machine stalls past the viewer branch's leaky 500 ms
    // queue (a CI run with every core busy did, losing 10 packets in 183 frames); a real fault
    // (a broken payloader, a pipeline that stops) loses far more than one packet in ten frames.
    let lost = stats["packetsLost"].as_u64().unwrap_or(u64::MAX);
    let decoded = stats["framesDecoded"].as_u64().unwrap_or(0);
    assert!(
        lost <= decoded / 10,
        "{lost} packets lost over loopback: {stats}"
    );
    assert_eq!(stats["role"], "controller");
    assert!(stats["codec"].as_str().unwrap().contains("H264"), "{stats}");
    let (px, py) = pointer.expect("pointer position read");
    assert!(
        (i32::from(px) - 640).abs() <= 2 && (i32::from(py) - 360).abs() <= 2,
        "pointer at {px},{py}, expected the centre"
    );
    assert!(down_seen, "the key press never reached the X server");
    assert_eq!(from_browser.as_deref(), Some("hello from the browser"));
    assert!(b_held, "the held key never reached the X server");
    assert!(b_released, "a key held when the viewer dropped stayed down");
    find(&events, "clipboard-received");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!key_is_down(), "the key stayed down after key-up");
    // The viewer is gone: no pipeline left running; the metrics saw the stream.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(health(&served)["pipelines"], 0);
    let metrics = get(&served, "/metrics");
    assert!(
        sample(&metrics, "vdi_streamer_frames_encoded_total") > 100.0,
        "{metrics}"
    );
    assert!(
        sample(&metrics, "vdi_streamer_encode_seconds_count") > 100.0,
        "{metrics}"
    );
    assert!(
        sample(&metrics, "vdi_streamer_input_events_total") >= 3.0,
        "{metrics}"
    );
    assert!(
        sample(&metrics, "vdi_streamer_glass_to_glass_estimate_ms") > 0.0,
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "vdi_streamer_viewers"), 0.0);
    assert!(
        sample(&metrics, "vdi_streamer_first_frame_seconds") > 0.0,
        "{metrics}"
    );
    // The operator's view: the first frame sent, and input after it.
    let during = at_first_frame.expect("activity read at the first frame");
    let after = activity(&served);
    let time = |v: &Value, field: &str| {
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {v}"))
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    assert_eq!(during["controllerConnected"], true, "{during}");
    assert_eq!(during["viewers"], 1, "{during}");
    assert_eq!(after["firstFrameAt"], during["firstFrameAt"], "{after}");
    assert!(time(&during, "firstFrameAt") > time(&during, "startedAt"));
    assert!(
        time(&after, "lastInputAt") > time(&during, "lastInputAt"),
        "input after the first frame did not move lastInputAt: {during} → {after}"
    );
    assert_eq!(after["viewers"], 0, "{after}");
    assert_eq!(after["controllerConnected"], false, "{after}");
    // Capture, input and clipboard connections to the X server are all closed again.
    assert_eq!(x_clients(&conn), clients_before, "X connections leaked");
    drop(served.streamer);
}

#[test]
fn tokens_and_signalling_are_checked_and_viewers_reconnect() {
    let x = Xvfb::start(640, 480).expect("start Xvfb");
    let keys = keys();
    let served = serve(&x.display, &keys, &["--width", "640", "--height", "480"]);
    let base = format!("http://{}/", served.addr);
    for (what, fragment) in [
        ("missing", String::new()),
        (
            "expired",
            format!("#token={}", token(&keys, "desk-1", now() - 10)),
        ),
        (
            "wrong session",
            format!("#token={}", token(&keys, "desk-2", now() + 600)),
        ),
        ("garbage", "#token=not.a.jwt".to_owned()),
    ] {
        let events = drive(&format!("{base}{fragment}"), "refused", |_| {});
        assert_eq!(find(&events, "refused")["code"], "unauthorized", "{what}");
    }
    let replies = drive(&base, "garbage", |_| {});
    let replies = find(&replies, "replies")["replies"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(replies.len(), 4, "{replies:?}");
    assert!(replies.iter().all(|r| r["type"] == "error"), "{replies:?}");
    assert!(
        replies.iter().any(|r| r["code"] == "bad-message"),
        "{replies:?}"
    );

    let url = format!("{base}#token={}", token(&keys, "desk-1", now() + 600));
    let events = drive(&url, "reconnect", |_| {});
    assert!(find(&events, "reconnected")["connects"].as_u64().unwrap() >= 2);
    assert!(find(&events, "stats")["framesDecoded"].as_u64().unwrap() > 0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        health(&served)["pipelines"],
        0,
        "pipelines left after the viewer went"
    );
}

#[test]
fn a_relay_only_browser_gets_the_stream_through_coturn() {
    let x = Xvfb::start(640, 480).expect("start Xvfb");
    let keys = keys();
    let turn = Turn::start("turn-secret").expect("start coturn (scripts/setup.sh installs it)");
    let turn_url = format!("turn:127.0.0.1:{}", turn.port);
    let served = serve(
        &x.display,
        &keys,
        &[
            "--width",
            "640",
            "--height",
            "480",
            "--turn",
            &turn_url,
            "--turn-secret",
            "turn-secret",
        ],
    );
    let url = player_url(&served, &keys, "?relay=1");
    let events = drive(&url, "watch", |_| {});
    let stats = find(&events, "stats");
    assert_eq!(stats["candidateType"], "relay", "{stats}");
    assert!(stats["fpsMeasured"].as_f64().unwrap() >= 20.0, "{stats}");
}

#[test]
fn a_failing_nvenc_falls_back_to_the_cpu_and_keeps_the_viewer() {
    use vdi_streamer::encoder::{GstProbe, NVENC_ELEMENT, Probe as _};
    let x = Xvfb::start(640, 480).expect("start Xvfb");
    let keys = keys();
    // Without an NVIDIA GPU the NVENC pipeline fails: the viewer must still get a stream.
    let served = serve_with(
        &x.display,
        &keys,
        &["--width", "640", "--height", "480"],
        Encoder::Nvenc,
    );
    let url = player_url(&served, &keys, "");
    let events = drive(&url, "watch", |_| {});
    assert!(find(&events, "stats")["fpsMeasured"].as_f64().unwrap() >= 20.0);
    let expected = if GstProbe.has_element(NVENC_ELEMENT) {
        NVENC_ELEMENT
    } else {
        "x264enc"
    };
    assert_eq!(health(&served)["encoder"], expected);
    if expected == "x264enc" {
        let metrics = get(&served, "/metrics");
        assert!(
            sample(&metrics, "vdi_streamer_pipeline_failures_total") >= 1.0,
            "{metrics}"
        );
    }
}

#[test]
fn under_packet_loss_the_bitrate_backs_off_and_the_stream_goes_on() {
    let x = Xvfb::start(640, 480).expect("start Xvfb");
    let keys = keys();
    let served = serve(
        &x.display,
        &keys,
        &[
            "--width",
            "640",
            "--height",
            "480",
            "--max-bitrate-kbps",
            "4000",
            "--drop-probability",
            "0.08",
        ],
    );
    let url = player_url(&served, &keys, "");
    let mut during = String::new();
    let events = drive(&url, "watch", |e| {
        if e["event"] == "first-frame" {
            // Let a few receiver reports arrive while the stream runs.
            std::thread::sleep(Duration::from_secs(3));
            during = get(&served, "/metrics");
        }
    });
    let stats = find(&events, "stats");
    assert!(stats["framesDecoded"].as_u64().unwrap() > 0, "{stats}");
    assert!(
        sample(&during, "vdi_streamer_packets_lost") > 0.0,
        "{during}"
    );
    assert!(
        sample(&during, "vdi_streamer_target_bitrate_kbps") < 4000.0,
        "the bitrate never backed off under 8 % loss:\n{during}"
    );
}

#[test]
fn the_browser_resizes_the_display_where_the_x_server_can() {
    let keys = keys();
    // Xvnc (RandR can add modes): the display and the stream take the size.
    let x = Xvfb::start_resizable(1024, 768).expect("start Xvnc (scripts/setup.sh installs it)");
    let served = serve(&x.display, &keys, &["--width", "1024", "--height", "768"]);
    let url = player_url(&served, &keys, "");
    let events = drive(&url, "resize", |_| {});
    let resized = find(&events, "resized");
    assert_eq!(
        (resized["width"].as_u64(), resized["height"].as_u64()),
        (Some(800), Some(600)),
        "{resized}"
    );
    let (conn, screen) = x11rb::connect(Some(&x.display)).unwrap();
    let root = conn.setup().roots[screen].root;
    let g = conn.get_geometry(root).unwrap().reply().unwrap();
    assert_eq!((g.width, g.height), (800, 600));
    drop(served);

    // Xvfb (a fixed mode list): refused with the reason, and the stream goes on.
    let x = Xvfb::start(640, 480).expect("start Xvfb");
    let served = serve(&x.display, &keys, &["--width", "640", "--height", "480"]);
    let url = player_url(&served, &keys, "");
    let events = drive(&url, "resize", |_| {});
    let resized = find(&events, "resized");
    assert!(
        resized["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not 800x600"),
        "{resized}"
    );
    assert!(find(&events, "stats")["framesDecoded"].as_u64().unwrap() > 0);
}

#[test]
fn a_view_only_viewer_shares_the_controllers_encode() {
    let x = Xvfb::start(640, 480).expect("start Xvfb");
    let keys = keys();
    let served = serve(&x.display, &keys, &["--width", "640", "--height", "480"]);
    let url = player_url(&served, &keys, "");
    let mut while_both = None;
    let events = drive(&url, "shared", |e| {
        if e["event"] == "both-playing" {
            // Let the encoder run a couple of seconds with both viewers on it.
            std::thread::sleep(Duration::from_secs(2));
            while_both = Some((health(&served), get(&served, "/metrics")));
        }
    });
    let (health_both, metrics) = while_both.expect("read while both played");
    assert_eq!(health_both["viewers"], 2, "{health_both}");
    assert_eq!(
        health_both["pipelines"], 1,
        "one encode for both: {health_both}"
    );
    let fps = sample(&metrics, "vdi_streamer_fps");
    assert!(
        (20.0..=40.0).contains(&fps),
        "one encoder at about 30 fps, not one per viewer: {fps}"
    );
    let joined = find(&events, "both-playing");
    assert!(
        joined["secondFirstFrameMs"].as_u64().unwrap() < 10_000,
        "{joined}"
    );
    let shared = find(&events, "shared");
    assert_eq!(shared["roles"], serde_json::json!(["controller", "viewer"]));
    for fps in shared["fps"].as_array().unwrap() {
        assert!(fps.as_f64().unwrap() >= 20.0, "{shared}");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        health(&served)["pipelines"],
        0,
        "the encode stopped with its viewers"
    );
}
