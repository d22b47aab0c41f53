//! Signalling messages between the browser and the streamer, over WebSocket as JSON text.
//! Serde types only; malformed input becomes an `error` message, never a panic.

use serde::{Deserialize, Serialize};

/// What the browser sends.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ClientMessage {
    /// First message: the session token.
    Hello {
        /// Signed JWT bound to this session and user.
        token: String,
    },
    /// The browser's SDP answer to the streamer's offer.
    Answer {
        /// SDP.
        sdp: String,
    },
    /// A trickled ICE candidate.
    Ice {
        /// The candidate line (empty: end of candidates).
        candidate: String,
        /// Media line index.
        #[serde(rename = "sdpMLineIndex")]
        sdp_mline_index: u32,
    },
}

/// Role of a connected viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Sends input.
    Controller,
    /// Watches only.
    Viewer,
}

/// What the streamer sends.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage {
    /// The token was accepted.
    Welcome {
        /// The viewer's role.
        role: Role,
        /// ICE servers for the browser's RTCPeerConnection (STUN, TURN with credentials).
        #[serde(rename = "iceServers")]
        ice_servers: Vec<serde_json::Value>,
    },
    /// The streamer's SDP offer.
    Offer {
        /// SDP.
        sdp: String,
    },
    /// A trickled ICE candidate.
    Ice {
        /// The candidate line.
        candidate: String,
        /// Media line index.
        #[serde(rename = "sdpMLineIndex")]
        sdp_mline_index: u32,
    },
    /// Something was wrong; the connection may stay open.
    Error {
        /// Machine-readable code (`bad-message`, `unauthorized`, `busy`, ...).
        code: String,
        /// What was wrong.
        message: String,
    },
}

impl ServerMessage {
    /// An error message.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self::Error {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// What the browser sends on the `input` data channel.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ChannelMessage {
    /// The player's view of the stream, every second.
    Stats {
        /// Its jitter buffer delay, ms.
        #[serde(default, rename = "jitterBufferMs")]
        jitter_buffer_ms: f64,
        /// Round trip, ms.
        #[serde(default, rename = "rttMs")]
        rtt_ms: f64,
    },
    /// Text for the desktop's clipboard.
    Clipboard {
        /// The text.
        text: String,
    },
    /// The size the browser wants the desktop to have.
    Resize {
        /// Width in pixels.
        width: u16,
        /// Height in pixels.
        height: u16,
    },
    /// Keyboard, pointer and wheel input.
    #[serde(untagged)]
    Input(crate::input::InputEvent),
}

/// Largest signalling message accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 << 10;

/// Parses one text frame from the browser; errors come back as the message to send.
pub fn parse(text: &str) -> Result<ClientMessage, ServerMessage> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ServerMessage::error(
            "bad-message",
            format!(
                "message of {} bytes exceeds {MAX_MESSAGE_BYTES}",
                text.len()
            ),
        ));
    }
    serde_json::from_str(text).map_err(|e| ServerMessage::error("bad-message", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_messages_and_answers_garbage_with_an_error() {
        assert_eq!(
            parse(r#"{"type":"hello","token":"t"}"#),
            Ok(ClientMessage::Hello { token: "t".into() })
        );
        assert_eq!(
            parse(r#"{"type":"ice","candidate":"c","sdpMLineIndex":0}"#),
            Ok(ClientMessage::Ice {
                candidate: "c".into(),
                sdp_mline_index: 0
            })
        );
        for bad in [
            "",
            "{",
            r#"{"type":"offer","sdp":"x"}"#,
            r#"{"type":"hello"}"#,
            r#"{"type":"hello","token":"t","x":1}"#,
            "[1,2]",
        ] {
            match parse(bad) {
                Err(ServerMessage::Error { code, .. }) => assert_eq!(code, "bad-message", "{bad}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        assert!(parse(&"x".repeat(MAX_MESSAGE_BYTES + 1)).is_err());
        let channel =
            |t: &str| serde_json::from_str::<ChannelMessage>(t).map_err(|e| e.to_string());
        assert_eq!(
            channel(r#"{"type":"stats","fps":30,"jitterBufferMs":12.5,"rttMs":2}"#),
            Ok(ChannelMessage::Stats {
                jitter_buffer_ms: 12.5,
                rtt_ms: 2.0
            })
        );
        assert_eq!(
            channel(r#"{"type":"resize","width":800,"height":600}"#),
            Ok(ChannelMessage::Resize {
                width: 800,
                height: 600
            })
        );
        assert_eq!(
            channel(r#"{"type":"key","key":"a","down":true}"#),
            Ok(ChannelMessage::Input(crate::input::InputEvent::Key {
                key: "a".into(),
                down: true
            }))
        );
        assert!(channel(r#"{"type":"resize","width":-1,"height":600}"#).is_err());
        assert!(channel(r#"{"type":"key","key":"a"}"#).is_err());
        let welcome = serde_json::to_value(ServerMessage::Welcome {
            role: Role::Viewer,
            ice_servers: vec![],
        })
        .expect("json");
        assert_eq!(
            welcome,
            serde_json::json!({"type": "welcome", "role": "viewer", "iceServers": []})
        );
    }
}
