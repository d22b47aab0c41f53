//! The streamer end to end: an Xvfb display, the streamer serving its web player, and headless
//! Chromium (driven by `tests/browser/drive.mjs` through playwright-core) decoding the stream and
//! sending input, which is checked from the X server's side.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser as _;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;
use vdi_streamer::encoder::Encoder;
use vdi_streamer::server::Streamer;
use vdi_streamer::settings::Settings;
use vdi_streamer::token::{Claims, Verifier};
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::ConnectionExt as _;

/// An Xvfb server on a free display number, killed on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start(width: u32, height: u32) -> Self {
        // -displayfd: Xvfb picks a free display itself and writes its number when ready, so
        // tests running at once never share (or fight over) a display.
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{width}x{height}x24"),
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb (scripts/setup.sh installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let n: u32 = line.trim().parse().expect("Xvfb wrote its display number");
        Self {
            child,
            display: format!(":{n}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    let streamer = Streamer::new(settings, Encoder::X264, Some(verifier));
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

fn drive_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/drive.mjs")
}

/// Runs the browser scenario; calls `on_event` for each JSON line as it comes; returns them all.
fn drive(url: &str, scenario: &str, mut on_event: impl FnMut(&Value)) -> Vec<Value> {
    let mut child = Command::new("node")
        .arg(drive_script())
        .args([url, scenario])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run node (scripts/setup.sh installs playwright-core)");
    let stdout = child.stdout.take().unwrap();
    let mut events = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        on_event(&v);
        events.push(v);
    }
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "browser scenario {scenario} failed: {events:?}"
    );
    events
}

fn find<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| panic!("no {name} event in {events:?}"))
}

fn health(served: &Served) -> Value {
    served.runtime.block_on(async {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut s = tokio::net::TcpStream::connect(served.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).await.unwrap();
        let json = &body[body.find("\r\n\r\n").unwrap() + 4..];
        serde_json::from_str(json).unwrap()
    })
}

#[test]
fn chromium_decodes_the_desktop_and_its_input_reaches_the_x_server() {
    let x = Xvfb::start(1280, 720);
    let keys = keys();
    let served = serve(&x.display, &keys, &[]);
    let url = format!(
        "http://{}/#token={}",
        served.addr,
        token(&keys, "desk-1", now() + 600)
    );
    let (conn, screen) = x11rb::connect(Some(&x.display)).unwrap();
    let root = conn.setup().roots[screen].root;
    let a_keycode = {
        let setup = conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let map = conn
            .get_keyboard_mapping(min, max - min + 1)
            .unwrap()
            .reply()
            .unwrap();
        let per = usize::from(map.keysyms_per_keycode);
        let i = map.keysyms.iter().position(|s| *s == 0x61).unwrap() / per;
        min + u8::try_from(i).unwrap()
    };
    let key_is_down = || {
        let keys = conn.query_keymap().unwrap().reply().unwrap().keys;
        keys[usize::from(a_keycode / 8)] & (1 << (a_keycode % 8)) != 0
    };
    let mut pointer = None;
    let mut down_seen = false;
    let events = drive(&url, "input", |e| match e["event"].as_str() {
        Some("pointer-moved") => {
            let p = conn.query_pointer(root).unwrap().reply().unwrap();
            pointer = Some((p.root_x, p.root_y));
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
    assert_eq!(stats["packetsLost"], 0, "{stats}");
    assert_eq!(stats["role"], "controller");
    assert!(stats["codec"].as_str().unwrap().contains("H264"), "{stats}");
    let (px, py) = pointer.expect("pointer position read");
    assert!(
        (i32::from(px) - 640).abs() <= 2 && (i32::from(py) - 360).abs() <= 2,
        "pointer at {px},{py}, expected the centre"
    );
    assert!(down_seen, "the key press never reached the X server");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!key_is_down(), "the key stayed down after key-up");
    // The viewer is gone: no pipeline left running.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(health(&served)["pipelines"], 0);
    drop(served.streamer);
}

#[test]
fn tokens_and_signalling_are_checked_and_viewers_reconnect() {
    let x = Xvfb::start(640, 480);
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

/// coturn on a free loopback port with REST-style credentials, killed on drop.
struct Turn {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Turn {
    fn start(secret: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("turnserver")
            .args([
                "--listening-ip=127.0.0.1",
                "--relay-ip=127.0.0.1",
                &format!("--listening-port={port}"),
                "--min-port=49160",
                "--max-port=49760",
                "--use-auth-secret",
                &format!("--static-auth-secret={secret}"),
                "--realm=vdi.test",
                "--allow-loopback-peers",
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--no-stun",
                "--log-file=stdout",
                "--simple-log",
            ])
            .arg(format!(
                "--pidfile={}",
                dir.path().join("turn.pid").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start turnserver (scripts/setup.sh installs coturn)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "coturn did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_relay_only_browser_gets_the_stream_through_coturn() {
    let x = Xvfb::start(640, 480);
    let keys = keys();
    let turn = Turn::start("turn-secret");
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
    let url = format!(
        "http://{}/?relay=1#token={}",
        served.addr,
        token(&keys, "desk-1", now() + 600)
    );
    let events = drive(&url, "watch", |_| {});
    let stats = find(&events, "stats");
    assert_eq!(stats["candidateType"], "relay", "{stats}");
    assert!(stats["fpsMeasured"].as_f64().unwrap() >= 20.0, "{stats}");
}
