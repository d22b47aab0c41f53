//! Real parts for the streamer's browser tests and its latency benchmark: an Xvfb display, a
//! coturn relay, headless Chromium driven by `tests/browser/drive.mjs` (playwright-core), and a
//! drawer that paints the wall clock into the display as a bit pattern the browser reads back.
//! Every process is started on loopback with free ports and killed on drop.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// An X server (Xvfb, or Xvnc when resizable) on a display it picked itself (`-displayfd`),
/// killed on drop.
pub struct Xvfb {
    child: Child,
    /// `:N`.
    pub display: String,
}

impl Xvfb {
    /// Starts a `width`×`height` 24-bit Xvfb screen and waits until it is ready.
    pub fn start(width: u32, height: u32) -> std::io::Result<Self> {
        let mut cmd = Command::new("Xvfb");
        cmd.args(["-screen", "0"])
            .arg(format!("{width}x{height}x24"));
        Self::spawn(cmd)
    }

    /// Starts a resizable screen instead: TigerVNC's Xvnc (no VNC port), whose RandR can add
    /// modes, as a session image's X server would be.
    pub fn start_resizable(width: u32, height: u32) -> std::io::Result<Self> {
        let mut cmd = Command::new("Xvnc");
        cmd.arg("-geometry").arg(format!("{width}x{height}")).args([
            "-depth",
            "24",
            "-SecurityTypes",
            "None",
            "-rfbport",
            "-1",
        ]);
        Self::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> std::io::Result<Self> {
        // -displayfd: the server picks a free display and writes its number when ready, so
        // servers started at once never share (or fight over) a display.
        let mut child = cmd
            .args(["-displayfd", "1", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        let n: u32 = line.trim().parse().map_err(|_| {
            std::io::Error::other(format!("the X server did not report a display: {line:?}"))
        })?;
        Ok(Self {
            child,
            display: format!(":{n}"),
        })
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// coturn on a free loopback port with REST-style credentials (`use-auth-secret`), killed on drop.
pub struct Turn {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl Turn {
    /// Starts coturn with `secret` and waits until it listens.
    pub fn start(secret: &str) -> std::io::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("turnserver")
            .args([
                "--listening-ip=127.0.0.1",
                "--relay-ip=127.0.0.1",
                "--min-port=49160",
                "--max-port=49760",
                "--use-auth-secret",
                "--realm=vdi.test",
                "--allow-loopback-peers",
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--no-stun",
                "--log-file=stdout",
                "--simple-log",
                "--pidfile=/dev/null",
            ])
            .arg(format!("--listening-port={port}"))
            .arg(format!("--static-auth-secret={secret}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(std::io::Error::other("coturn did not listen"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { child, port })
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser driver script.
pub fn drive_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/drive.mjs")
}

/// Runs a browser scenario of `drive.mjs` against `url` (extra arguments after the scenario);
/// calls `on_event` for each JSON line as it comes; returns all lines and whether it succeeded.
pub fn drive(
    url: &str,
    scenario: &str,
    extra: &[&str],
    mut on_event: impl FnMut(&Value),
) -> std::io::Result<(Vec<Value>, bool)> {
    let mut child = Command::new("node")
        .arg(drive_script())
        .args([url, scenario])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut events = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(v) = serde_json::from_str::<Value>(&line?) else {
                continue;
            };
            on_event(&v);
            events.push(v);
        }
    }
    let ok = child.wait()?.success();
    Ok((events, ok))
}

/// Bits of the clock pattern, each a square block in the top row of the screen.
pub const CLOCK_BITS: u32 = 32;
/// Side of one block, in pixels.
pub const CLOCK_BLOCK: u16 = 24;

/// Milliseconds since the Unix epoch, modulo 2³² (what the pattern carries).
pub fn clock_ms() -> u32 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    (ms & 0xffff_ffff) as u32
}

/// Paints the wall clock into `display` every 2 ms, as [`CLOCK_BITS`] black/white blocks (most
/// significant first) along the top edge, and a bar sweeping across the screen below them, until
/// the process ends.
pub fn draw_clock(display: &str) -> Result<(), String> {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::{
        ChangeGCAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, Rectangle, WindowClass,
    };
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let (conn, screen) = x11rb::connect(Some(display)).map_err(|x| e(&x))?;
    let s = conn.setup().roots[screen].clone();
    let window = conn.generate_id().map_err(|x| e(&x))?;
    conn.create_window(
        s.root_depth,
        window,
        s.root,
        0,
        0,
        s.width_in_pixels,
        s.height_in_pixels,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new()
            .background_pixel(s.black_pixel)
            .override_redirect(1),
    )
    .map_err(|x| e(&x))?;
    conn.map_window(window).map_err(|x| e(&x))?;
    let gc = conn.generate_id().map_err(|x| e(&x))?;
    conn.create_gc(gc, window, &CreateGCAux::new().foreground(s.white_pixel))
        .map_err(|x| e(&x))?;
    let (w, h) = (s.width_in_pixels, s.height_in_pixels);
    let mut frame: u32 = 0;
    loop {
        let t = clock_ms();
        let (mut white, mut black) = (Vec::new(), Vec::new());
        for bit in 0..CLOCK_BITS {
            let r = Rectangle {
                x: i16::try_from(bit * u32::from(CLOCK_BLOCK)).unwrap_or(i16::MAX),
                y: 0,
                width: CLOCK_BLOCK,
                height: CLOCK_BLOCK,
            };
            if t >> (CLOCK_BITS - 1 - bit) & 1 == 1 {
                white.push(r);
            } else {
                black.push(r);
            }
        }
        // Moving content below the clock: a bar sweeping across.
        frame = frame.wrapping_add(1);
        let x = (frame * 8 % u32::from(w)) as i16;
        black.push(Rectangle {
            x: 0,
            y: CLOCK_BLOCK as i16 * 2,
            width: w,
            height: h.saturating_sub(CLOCK_BLOCK * 2),
        });
        let bar = Rectangle {
            x,
            y: CLOCK_BLOCK as i16 * 2,
            width: 40,
            height: h.saturating_sub(CLOCK_BLOCK * 2),
        };
        conn.change_gc(gc, &ChangeGCAux::new().foreground(s.black_pixel))
            .map_err(|x| e(&x))?;
        conn.poly_fill_rectangle(window, gc, &black)
            .map_err(|x| e(&x))?;
        conn.change_gc(gc, &ChangeGCAux::new().foreground(s.white_pixel))
            .map_err(|x| e(&x))?;
        white.push(bar);
        conn.poly_fill_rectangle(window, gc, &white)
            .map_err(|x| e(&x))?;
        x11rb::wrapper::ConnectionExt::sync(&conn).map_err(|x| e(&x))?;
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// An Ed25519 key pair made with the `openssl` command: (private PKCS#8 PEM, public PEM).
pub fn ed25519_keys() -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let private = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519"])
        .output()?;
    if !private.status.success() {
        return Err(std::io::Error::other("openssl genpkey failed"));
    }
    let mut child = Command::new("openssl")
        .args(["pkey", "-pubout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, &private.stdout)?;
    }
    let public = child.wait_with_output()?;
    Ok((private.stdout, public.stdout))
}
