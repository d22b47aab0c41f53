//! Resizing the virtual display on the browser's request, with RandR: find or create a mode of
//! the asked size, then resize the screen and point the first output's CRTC at it. X servers
//! with a fixed mode list (Xvfb) refuse, and the error says so; Xvnc and Xorg's dummy driver work.

use x11rb::connection::Connection as _;
use x11rb::protocol::randr::{ConnectionExt as _, ModeFlag, ModeInfo, Rotation, SetConfig};
use x11rb::protocol::xproto::ConnectionExt as _;

/// Smallest and largest sizes accepted from a browser.
pub const MIN_SIDE: u16 = 320;
/// See [`MIN_SIDE`].
pub const MAX_SIDE: u16 = 7680;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Resizes `display`'s screen to `width`×`height` (both even, within bounds).
pub fn resize(display: &str, width: u16, height: u16) -> Result<(), String> {
    if !(MIN_SIDE..=MAX_SIDE).contains(&width) || !(MIN_SIDE..=MAX_SIDE).contains(&height) {
        return Err(format!(
            "{width}x{height}: each side must be within {MIN_SIDE}..={MAX_SIDE}"
        ));
    }
    let (width, height) = (width & !1, height & !1);
    let (conn, screen) = x11rb::connect(Some(display)).map_err(err)?;
    let root = conn.setup().roots[screen].root;
    let res = conn
        .randr_get_screen_resources_current(root)
        .map_err(err)?
        .reply()
        .map_err(|e| format!("the X server has no RandR: {e}"))?;
    let range = conn
        .randr_get_screen_size_range(root)
        .map_err(err)?
        .reply()
        .map_err(err)?;
    if width > range.max_width
        || height > range.max_height
        || width < range.min_width
        || height < range.min_height
    {
        return Err(format!(
            "this X server's screen can be {}x{} to {}x{}, not {width}x{height} (Xvfb's size is fixed when it starts)",
            range.min_width, range.min_height, range.max_width, range.max_height
        ));
    }
    let mut chosen = None;
    for &output in &res.outputs {
        let info = conn
            .randr_get_output_info(output, res.config_timestamp)
            .map_err(err)?
            .reply()
            .map_err(err)?;
        if info.crtc != 0 || chosen.is_none() {
            chosen = Some((output, info.crtc));
        }
    }
    let (output, mut crtc) = chosen.ok_or("the X server has no RandR output")?;
    if crtc == 0 {
        crtc = *res.crtcs.first().ok_or("the X server has no CRTC")?;
    }
    let mode = match res
        .modes
        .iter()
        .find(|m| m.width == width && m.height == height)
    {
        Some(m) => m.id,
        None => {
            let name = format!("{width}x{height}_vdi");
            let info = ModeInfo {
                id: 0,
                width,
                height,
                dot_clock: u32::from(width) * u32::from(height) * 60,
                hsync_start: width,
                hsync_end: width,
                htotal: width,
                hskew: 0,
                vsync_start: height,
                vsync_end: height,
                vtotal: height,
                name_len: u16::try_from(name.len()).unwrap_or(0),
                mode_flags: ModeFlag::default(),
            };
            let created = conn
                .randr_create_mode(root, info, name.as_bytes())
                .map_err(err)?
                .reply()
                .map_err(|e| {
                    format!("this X server cannot add a {width}x{height} mode (Xvfb has a fixed mode list): {e}")
                })?;
            conn.randr_add_output_mode(output, created.mode)
                .map_err(err)?;
            created.mode
        }
    };
    // Off, new screen size, on with the new mode.
    let off = conn
        .randr_set_crtc_config(
            crtc,
            0,
            res.config_timestamp,
            0,
            0,
            0,
            Rotation::ROTATE0,
            &[],
        )
        .map_err(err)?
        .reply()
        .map_err(err)?;
    let dpi_mm = |px: u16| (u32::from(px) * 254 / 960).max(1);
    conn.randr_set_screen_size(root, width, height, dpi_mm(width), dpi_mm(height))
        .map_err(err)?
        .check()
        .map_err(|e| format!("resizing the screen to {width}x{height}: {e}"))?;
    let on = conn
        .randr_set_crtc_config(
            crtc,
            0,
            off.timestamp,
            0,
            0,
            mode,
            Rotation::ROTATE0,
            &[output],
        )
        .map_err(err)?
        .reply()
        .map_err(err)?;
    if on.status != SetConfig::SUCCESS {
        return Err(format!(
            "the X server refused the {width}x{height} mode: {:?}",
            on.status
        ));
    }
    let geometry = conn.get_geometry(root).map_err(err)?.reply().map_err(err)?;
    if (geometry.width, geometry.height) != (width, height) {
        return Err(format!(
            "the screen is {}x{} after asking for {width}x{height}",
            geometry.width, geometry.height
        ));
    }
    conn.flush().map_err(err)?;
    Ok(())
}
