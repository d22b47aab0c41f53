//! The X clipboard (the `CLIPBOARD` selection, UTF-8 text), both ways: text from the browser
//! becomes the selection this process owns and serves to X clients; the desktop's selection is
//! read on request, so the streamer can forward changes to the browser.
//!
//! One X connection and one hidden window per controlling viewer; a thread answers selection
//! requests and conversions for as long as the `Clipboard` lives.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use x11rb::connection::Connection as _;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, PropMode,
    SELECTION_NOTIFY_EVENT, SelectionNotifyEvent, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// Largest clipboard text carried, in bytes.
pub const MAX_CLIPBOARD_BYTES: usize = 256 << 10;

struct Atoms {
    clipboard: Atom,
    utf8: Atom,
    targets: Atom,
    property: Atom,
}

/// The clipboard of one X display.
pub struct Clipboard {
    conn: Arc<RustConnection>,
    window: u32,
    atoms: Arc<Atoms>,
    owned: Arc<Mutex<Option<String>>>,
    conversions: Mutex<Receiver<Option<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn intern(conn: &RustConnection, name: &str) -> Result<Atom, String> {
    Ok(conn
        .intern_atom(false, name.as_bytes())
        .map_err(err)?
        .reply()
        .map_err(err)?
        .atom)
}

impl Clipboard {
    /// Connects to `display` and starts answering selection traffic.
    pub fn connect(display: &str) -> Result<Self, String> {
        let (conn, screen) = x11rb::connect(Some(display)).map_err(err)?;
        let root = conn.setup().roots[screen].root;
        let window = conn.generate_id().map_err(err)?;
        conn.create_window(
            0,
            window,
            root,
            0,
            0,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )
        .map_err(err)?;
        let atoms = Arc::new(Atoms {
            clipboard: intern(&conn, "CLIPBOARD")?,
            utf8: intern(&conn, "UTF8_STRING")?,
            targets: intern(&conn, "TARGETS")?,
            property: intern(&conn, "VDI_CLIPBOARD")?,
        });
        conn.flush().map_err(err)?;
        let conn = Arc::new(conn);
        let owned: Arc<Mutex<Option<String>>> = Arc::default();
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (conn, atoms, owned, stop) =
                (conn.clone(), atoms.clone(), owned.clone(), stop.clone());
            std::thread::spawn(move || serve(&conn, window, &atoms, &owned, &tx, &stop))
        };
        Ok(Self {
            conn,
            window,
            atoms,
            owned,
            conversions: Mutex::new(rx),
            stop,
            thread: Some(thread),
        })
    }

    /// Makes `text` the clipboard's content (this process owns the selection until another
    /// client takes it).
    pub fn set(&self, text: &str) -> Result<(), String> {
        let mut text = text.to_owned();
        if text.len() > MAX_CLIPBOARD_BYTES {
            let mut end = MAX_CLIPBOARD_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        *self
            .owned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(text);
        self.conn
            .set_selection_owner(self.window, self.atoms.clipboard, x11rb::CURRENT_TIME)
            .map_err(err)?;
        self.conn.flush().map_err(err)?;
        Ok(())
    }

    /// The clipboard's text now (`None` when it is empty or not text).
    pub fn get(&self) -> Result<Option<String>, String> {
        let owner = self
            .conn
            .get_selection_owner(self.atoms.clipboard)
            .map_err(err)?
            .reply()
            .map_err(err)?
            .owner;
        if owner == x11rb::NONE {
            return Ok(None);
        }
        if owner == self.window {
            return Ok(self
                .owned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone());
        }
        let rx = self
            .conversions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while rx.try_recv().is_ok() {}
        self.conn
            .convert_selection(
                self.window,
                self.atoms.clipboard,
                self.atoms.utf8,
                self.atoms.property,
                x11rb::CURRENT_TIME,
            )
            .map_err(err)?;
        self.conn.flush().map_err(err)?;
        rx.recv_timeout(Duration::from_secs(1))
            .map_err(|_| "the clipboard owner did not answer".to_owned())
    }
}

impl Drop for Clipboard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = self.conn.destroy_window(self.window);
        let _ = self.conn.flush();
    }
}

fn serve(
    conn: &RustConnection,
    window: u32,
    atoms: &Atoms,
    owned: &Mutex<Option<String>>,
    conversions: &Sender<Option<String>>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Acquire) {
        let event = match conn.poll_for_event() {
            Ok(Some(e)) => e,
            Ok(None) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(_) => return,
        };
        match event {
            Event::SelectionRequest(req) => {
                let text = owned
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                let property = if req.property == x11rb::NONE {
                    req.target
                } else {
                    req.property
                };
                let answered = match text {
                    Some(_) if req.target == atoms.targets => conn
                        .change_property32(
                            PropMode::REPLACE,
                            req.requestor,
                            property,
                            AtomEnum::ATOM,
                            &[atoms.targets, atoms.utf8, u32::from(AtomEnum::STRING)],
                        )
                        .is_ok(),
                    Some(t)
                        if req.target == atoms.utf8
                            || req.target == u32::from(AtomEnum::STRING) =>
                    {
                        conn.change_property8(
                            PropMode::REPLACE,
                            req.requestor,
                            property,
                            req.target,
                            t.as_bytes(),
                        )
                        .is_ok()
                    }
                    _ => false,
                };
                let notify = SelectionNotifyEvent {
                    response_type: SELECTION_NOTIFY_EVENT,
                    sequence: 0,
                    time: req.time,
                    requestor: req.requestor,
                    selection: req.selection,
                    target: req.target,
                    property: if answered { property } else { x11rb::NONE },
                };
                let _ = conn.send_event(false, req.requestor, EventMask::NO_EVENT, notify);
                let _ = conn.flush();
            }
            Event::SelectionClear(_) => {
                *owned
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            }
            Event::SelectionNotify(n) if n.requestor == window => {
                let text = if n.property == x11rb::NONE {
                    None
                } else {
                    conn.get_property(
                        true,
                        window,
                        n.property,
                        AtomEnum::ANY,
                        0,
                        (MAX_CLIPBOARD_BYTES / 4) as u32,
                    )
                    .ok()
                    .and_then(|c| c.reply().ok())
                    .map(|r| String::from_utf8_lossy(&r.value).into_owned())
                };
                let _ = conversions.send(text);
            }
            _ => {}
        }
    }
}
