//! The signalling server's guards over real WebSockets (no browser): the session uid in connect
//! tokens, the authentication timeout, the socket and viewer caps, `/activity` at the root and
//! under the base path, and the refusal metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser as _;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use futures::{SinkExt as _, StreamExt as _};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use vdi_streamer::encoder::Encoder;
use vdi_streamer::harness::Xvfb;
use vdi_streamer::server::Streamer;
use vdi_streamer::settings::Settings;
use vdi_streamer::token::{Claims, Verifier, audience};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const NAMESPACE: &str = "team-a";
const SESSION: &str = "desk-1";
const UID: &str = "uid-2";
const BASE: &str = "/sessions/team-a/desk-1/";

struct Keys {
    signing: EncodingKey,
    public_pem: Vec<u8>,
}

fn keys() -> Keys {
    let signing = SigningKey::generate(&mut rand::rngs::OsRng);
    let private = signing.to_pkcs8_pem(Default::default()).expect("pkcs8");
    let public = signing
        .verifying_key()
        .to_public_key_pem(Default::default())
        .expect("spki");
    Keys {
        signing: EncodingKey::from_ed_pem(private.as_bytes()).expect("key"),
        public_pem: public.into_bytes(),
    }
}

fn token(keys: &Keys, sid: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = Claims {
        aud: audience(NAMESPACE, SESSION),
        sub: "alice".into(),
        exp: now + 300,
        sid: Some(sid.into()),
        stream_exp: None,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &keys.signing).expect("sign")
}

/// The streamer on a free loopback port (stopped with the runtime when dropped).
struct Served {
    addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    _streamer: Arc<Streamer>,
    _x: Xvfb,
}

fn serve(keys: &Keys, extra: &[&str]) -> Served {
    gstreamer::init().expect("GStreamer");
    let x = Xvfb::start(320, 240).expect("start Xvfb");
    let mut args = vec![
        "vdi-streamer",
        "--display",
        &x.display,
        "--width",
        "320",
        "--height",
        "240",
        "--encoder",
        "x264",
        "--namespace",
        NAMESPACE,
        "--session",
        SESSION,
        "--session-uid",
        UID,
        "--base-path",
        BASE,
        "--ice-local-address",
        "127.0.0.1",
    ];
    args.extend_from_slice(extra);
    let settings = Settings::parse_from(args);
    settings.validate().expect("valid settings");
    let verifier = Verifier::new(&keys.public_pem, &audience(NAMESPACE, SESSION))
        .expect("verifier")
        .with_session_uid(settings.session_uid.clone());
    let streamer = Streamer::new(settings, Encoder::X264, Some(verifier));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = streamer.router();
    runtime.spawn(async move { axum::serve(listener, router).await });
    Served {
        addr,
        runtime,
        _streamer: streamer,
        _x: x,
    }
}

impl Served {
    async fn connect(&self) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
        let url = format!("ws://{}{BASE}ws", self.addr);
        tokio_tungstenite::connect_async(url).await.map(|(s, _)| s)
    }

    /// `GET path`: the status and the body.
    async fn get(&self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut s = TcpStream::connect(self.addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.expect("write");
        let mut raw = String::new();
        s.read_to_string(&mut raw).await.expect("read");
        let status = raw
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status line");
        let body = raw
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    async fn activity(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("activity JSON")
    }
}

async fn hello(socket: &mut Socket, token: &str) {
    let msg = json!({"type": "hello", "token": token}).to_string();
    socket.send(Message::text(msg)).await.expect("send hello");
}

/// The next JSON text message; `None` when the socket closed.
async fn next_json(socket: &mut Socket) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("the server answered in time");
        match msg {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).expect("JSON")),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Asserts the next message is `error/<code>` and the socket then closes; returns its message.
async fn refused(socket: &mut Socket, code: &str) -> String {
    let msg = next_json(socket).await.expect("an error before the close");
    assert_eq!(msg["type"], "error", "{msg}");
    assert_eq!(msg["code"], code, "{msg}");
    assert!(next_json(socket).await.is_none(), "the socket stays open");
    msg["message"].as_str().unwrap_or_default().to_owned()
}

/// The value of an OpenMetrics sample line that starts with `name`.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

#[test]
fn a_token_for_another_session_uid_is_refused() {
    let keys = keys();
    let served = serve(&keys, &[]);
    served.runtime.block_on(async {
        let mut s = served.connect().await.expect("connect");
        hello(&mut s, &token(&keys, "uid-1")).await;
        let message = refused(&mut s, "unauthorized").await;
        assert_eq!(message, "the connect token is for another session");
        let mut s = served.connect().await.expect("connect");
        hello(&mut s, &token(&keys, UID)).await;
        let welcome = next_json(&mut s).await.expect("welcome");
        assert_eq!(welcome["type"], "welcome", "{welcome}");
    });
}

#[test]
fn a_socket_that_does_not_authenticate_is_closed_after_the_timeout() {
    let keys = keys();
    let served = serve(&keys, &["--auth-timeout-seconds", "1"]);
    served.runtime.block_on(async {
        let mut s = served.connect().await.expect("connect");
        // A message other than hello does not stop the clock.
        let msg = json!({"type": "answer", "sdp": "v=0"}).to_string();
        s.send(Message::text(msg)).await.expect("send");
        let first = next_json(&mut s).await.expect("an answer");
        assert_eq!(first["code"], "unauthorized", "{first}");
        let message = refused(&mut s, "unauthorized").await;
        assert!(message.contains("within 1 s"), "{message}");
        let (_, metrics) = served.get("/metrics").await;
        assert_eq!(
            sample(
                &metrics,
                r#"vdi_streamer_refused_total{reason="auth-timeout"}"#
            ),
            1.0
        );
    });
}

#[test]
fn sockets_and_viewers_are_capped_and_activity_is_reported() {
    let keys = keys();
    let served = serve(&keys, &["--max-connections", "3", "--max-viewers", "1"]);
    served.runtime.block_on(async {
        let before = served.activity("/activity").await;
        assert_eq!(before["firstFrameAt"], Value::Null, "{before}");
        assert_eq!(before["lastInputAt"], Value::Null, "{before}");
        assert_eq!(before["viewers"], 0, "{before}");
        assert_eq!(before["controllerConnected"], false, "{before}");
        assert!(before["startedAt"].as_str().is_some(), "{before}");
        let under_base = served.activity(&format!("{BASE}activity")).await;
        assert_eq!(under_base["startedAt"], before["startedAt"]);
        let (status, _) = served.get(BASE.trim_end_matches('/')).await;
        assert_eq!(status, 308, "the bare base path redirects to <base>/");

        let mut controller = served.connect().await.expect("connect");
        hello(&mut controller, &token(&keys, UID)).await;
        let welcome = next_json(&mut controller).await.expect("welcome");
        assert_eq!(welcome["role"], "controller", "{welcome}");
        let now = served.activity("/activity").await;
        assert_eq!(now["viewers"], 1, "{now}");
        assert_eq!(now["controllerConnected"], true, "{now}");
        assert!(
            now["lastInputAt"].as_str().is_some(),
            "a controller connecting is activity: {now}"
        );

        let mut second = served.connect().await.expect("connect");
        let _third = served.connect().await.expect("connect");
        match served.connect().await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 503);
            }
            other => panic!("a fourth socket was not refused: {other:?}"),
        }
        hello(&mut second, &token(&keys, UID)).await;
        let message = refused(&mut second, "busy").await;
        assert!(message.contains("most viewers"), "{message}");

        let (_, metrics) = served.get("/metrics").await;
        for reason in ["max-connections", "max-viewers"] {
            let name = format!(r#"vdi_streamer_refused_total{{reason="{reason}"}}"#);
            assert_eq!(sample(&metrics, &name), 1.0, "{reason}");
        }
        assert!(sample(&metrics, "vdi_streamer_seconds_since_last_input") >= 0.0);
    });
}
