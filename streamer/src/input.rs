//! Input from the browser, injected into the X server with XTest: keys (by DOM `key` value),
//! absolute and relative pointer motion, buttons and the wheel. Every key and button still down
//! is released when the controlling viewer goes, so nothing stays stuck.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{
    BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT, ConnectionExt as _, KEY_PRESS_EVENT,
    KEY_RELEASE_EVENT, MOTION_NOTIFY_EVENT, Window,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

/// One input event, as the web player sends it on the data channel (JSON).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum InputEvent {
    /// A key went down or up; `key` is the DOM `KeyboardEvent.key`.
    Key {
        /// `a`, `A`, `Enter`, `Shift`, ...
        key: String,
        /// Down or up.
        down: bool,
    },
    /// Pointer at a position, each axis 0.0..=1.0 of the video.
    PointerAbs {
        /// Horizontal share.
        x: f64,
        /// Vertical share.
        y: f64,
    },
    /// Pointer moved by pixels (pointer lock).
    PointerRel {
        /// Pixels right.
        dx: i32,
        /// Pixels down.
        dy: i32,
    },
    /// A mouse button (1 left, 2 middle, 3 right).
    Button {
        /// X button number.
        button: u8,
        /// Down or up.
        down: bool,
    },
    /// Wheel steps (positive: down/right).
    Wheel {
        /// Horizontal steps.
        #[serde(default)]
        dx: i32,
        /// Vertical steps.
        #[serde(default)]
        dy: i32,
    },
}

/// Why input could not be injected.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Connecting to the display failed.
    #[error("X display {0}: {1}")]
    Connect(String, String),
    /// The X server refused or the connection broke.
    #[error("X: {0}")]
    X(String),
    /// The message is not an input event.
    #[error("bad input event: {0}")]
    Bad(String),
}

fn x_err(e: impl std::fmt::Display) -> InputError {
    InputError::X(e.to_string())
}

/// The X keysym for a DOM key value, if it has one.
pub fn keysym(key: &str) -> Option<u32> {
    let mut chars = key.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        let cp = u32::from(c);
        return Some(match cp {
            0x20..=0x7e | 0xa0..=0xff => cp,
            _ => 0x0100_0000 + cp,
        });
    }
    Some(match key {
        "Enter" => 0xff0d,
        "Backspace" => 0xff08,
        "Tab" => 0xff09,
        "Escape" => 0xff1b,
        "Delete" => 0xffff,
        "Home" => 0xff50,
        "ArrowLeft" => 0xff51,
        "ArrowUp" => 0xff52,
        "ArrowRight" => 0xff53,
        "ArrowDown" => 0xff54,
        "PageUp" => 0xff55,
        "PageDown" => 0xff56,
        "End" => 0xff57,
        "Insert" => 0xff63,
        "Shift" => 0xffe1,
        "Control" => 0xffe3,
        "CapsLock" => 0xffe5,
        "Alt" => 0xffe9,
        "Meta" => 0xffeb,
        "F1" => 0xffbe,
        "F2" => 0xffbf,
        "F3" => 0xffc0,
        "F4" => 0xffc1,
        "F5" => 0xffc2,
        "F6" => 0xffc3,
        "F7" => 0xffc4,
        "F8" => 0xffc5,
        "F9" => 0xffc6,
        "F10" => 0xffc7,
        "F11" => 0xffc8,
        "F12" => 0xffc9,
        _ => return None,
    })
}

/// Injects input into one X display.
pub struct Injector {
    conn: RustConnection,
    root: Window,
    width: u16,
    height: u16,
    keycodes: HashMap<u32, u8>,
    keys_down: BTreeSet<u8>,
    buttons_down: BTreeSet<u8>,
}

impl Injector {
    /// Connects to `display` and reads its keyboard mapping.
    pub fn connect(display: &str) -> Result<Self, InputError> {
        let (conn, screen) = x11rb::connect(Some(display))
            .map_err(|e| InputError::Connect(display.to_owned(), e.to_string()))?;
        let (root, width, height, min, max) = {
            let setup = conn.setup();
            let s = &setup.roots[screen];
            (
                s.root,
                s.width_in_pixels,
                s.height_in_pixels,
                setup.min_keycode,
                setup.max_keycode,
            )
        };
        let mapping = conn
            .get_keyboard_mapping(min, max - min + 1)
            .map_err(x_err)?
            .reply()
            .map_err(x_err)?;
        let per = usize::from(mapping.keysyms_per_keycode.max(1));
        let mut keycodes = HashMap::new();
        for (i, syms) in mapping.keysyms.chunks(per).enumerate() {
            let code = min + u8::try_from(i).unwrap_or(0);
            for &sym in syms.iter().filter(|s| **s != 0) {
                keycodes.entry(sym).or_insert(code);
            }
        }
        Ok(Self {
            conn,
            root,
            width,
            height,
            keycodes,
            keys_down: BTreeSet::new(),
            buttons_down: BTreeSet::new(),
        })
    }

    fn fake(&self, kind: u8, detail: u8, x: i16, y: i16) -> Result<(), InputError> {
        self.conn
            .xtest_fake_input(kind, detail, x11rb::CURRENT_TIME, self.root, x, y, 0)
            .map_err(x_err)?;
        Ok(())
    }

    fn keycode(&self, key: &str) -> Option<u8> {
        let sym = keysym(key)?;
        self.keycodes.get(&sym).copied().or_else(|| {
            // Upper-case letters share the key of their lower case.
            let lower = key.to_lowercase();
            self.keycodes.get(&keysym(&lower)?).copied()
        })
    }

    /// Injects one event.
    pub fn handle(&mut self, event: &InputEvent) -> Result<(), InputError> {
        match *event {
            InputEvent::Key { ref key, down } => {
                let Some(code) = self.keycode(key) else {
                    tracing::debug!(%key, "no keycode for key");
                    return Ok(());
                };
                if down {
                    self.keys_down.insert(code);
                    self.fake(KEY_PRESS_EVENT, code, 0, 0)?;
                } else {
                    self.keys_down.remove(&code);
                    self.fake(KEY_RELEASE_EVENT, code, 0, 0)?;
                }
            }
            InputEvent::PointerAbs { x, y } => {
                let px = (x.clamp(0.0, 1.0) * f64::from(self.width.saturating_sub(1))).round();
                let py = (y.clamp(0.0, 1.0) * f64::from(self.height.saturating_sub(1))).round();
                self.fake(MOTION_NOTIFY_EVENT, 0, px as i16, py as i16)?;
            }
            InputEvent::PointerRel { dx, dy } => {
                let clamp = |v: i32| v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
                // detail 1: relative motion.
                self.fake(MOTION_NOTIFY_EVENT, 1, clamp(dx), clamp(dy))?;
            }
            InputEvent::Button { button, down } => {
                if !(1..=9).contains(&button) {
                    return Err(InputError::Bad(format!("button {button} is not 1..=9")));
                }
                if down {
                    self.buttons_down.insert(button);
                    self.fake(BUTTON_PRESS_EVENT, button, 0, 0)?;
                } else {
                    self.buttons_down.remove(&button);
                    self.fake(BUTTON_RELEASE_EVENT, button, 0, 0)?;
                }
            }
            InputEvent::Wheel { dx, dy } => {
                let steps = [(dy, 5u8, 4u8), (dx, 7, 6)];
                for (n, positive, negative) in steps {
                    let button = if n > 0 { positive } else { negative };
                    for _ in 0..n.unsigned_abs().min(20) {
                        self.fake(BUTTON_PRESS_EVENT, button, 0, 0)?;
                        self.fake(BUTTON_RELEASE_EVENT, button, 0, 0)?;
                    }
                }
            }
        }
        self.conn.flush().map_err(x_err)?;
        Ok(())
    }

    /// Releases every key and button still down.
    pub fn release_all(&mut self) {
        for code in std::mem::take(&mut self.keys_down) {
            let _ = self.fake(KEY_RELEASE_EVENT, code, 0, 0);
        }
        for button in std::mem::take(&mut self.buttons_down) {
            let _ = self.fake(BUTTON_RELEASE_EVENT, button, 0, 0);
        }
        let _ = self.conn.flush();
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        self.release_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_dom_keys_to_keysyms_and_parses_events() {
        assert_eq!(keysym("a"), Some(0x61));
        assert_eq!(keysym("Enter"), Some(0xff0d));
        assert_eq!(keysym("é"), Some(0xe9));
        assert_eq!(keysym("€"), Some(0x0100_20ac));
        assert_eq!(keysym("Unidentified"), None);
        let e: InputEvent =
            serde_json::from_str(r#"{"type":"pointer-abs","x":0.5,"y":0.25}"#).unwrap();
        assert_eq!(e, InputEvent::PointerAbs { x: 0.5, y: 0.25 });
        let e: InputEvent = serde_json::from_str(r#"{"type":"wheel","dy":-2}"#).unwrap();
        assert_eq!(e, InputEvent::Wheel { dx: 0, dy: -2 });
        assert!(serde_json::from_str::<InputEvent>(r#"{"type":"key","key":"a"}"#).is_err());
    }
}
