//! The session's shared encode as the server sees it: started by the first viewer, stopped when
//! the last goes (viewers hold it, the server only a weak reference), replaced for everyone when
//! it fails (NVENC → CPU fallback) or the controller resizes the display. A replacement bumps a
//! generation every viewer watches, so each moves its branch to the new encode and renegotiates.

use std::sync::{Arc, PoisonError, Weak};

use tokio::sync::watch;

use super::Streamer;
use crate::encoder::GstProbe;
use crate::media::Encode;
use crate::settings::Settings;

/// What runs now, and at which size.
pub(crate) struct MediaState {
    current: Weak<Encode>,
    settings: Settings,
}

impl MediaState {
    /// Nothing running yet; encodes use `settings` (until a resize).
    pub(crate) fn new(settings: Settings) -> Self {
        Self {
            current: Weak::new(),
            settings,
        }
    }
}

impl Streamer {
    /// Announces replacements of the shared encode.
    pub(crate) fn media_changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Starts an encode with the current encoder, falling back (NVENC → CPU) while one cannot
    /// start.
    fn start_encode(&self, settings: &Settings) -> Result<Arc<Encode>, String> {
        loop {
            let encoder = self.encoder.get();
            match Encode::start(settings, encoder, self.active_pipelines.clone()) {
                Ok(encode) => return Ok(encode),
                Err(e) => {
                    self.metrics.pipeline_failures.inc();
                    let next = encoder.fallback(&GstProbe).ok_or_else(|| e.clone())?;
                    tracing::warn!(error = %e, from = encoder.element(), to = next.element(), "encoder cannot start; falling back");
                    self.encoder.set(next);
                }
            }
        }
    }

    /// The running encode, or a new one.
    pub(crate) fn acquire_encode(&self) -> Result<Arc<Encode>, String> {
        let mut state = self.media.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = state.current.upgrade() {
            return Ok(running);
        }
        let encode = self.start_encode(&state.settings)?;
        state.current = Arc::downgrade(&encode);
        Ok(encode)
    }

    /// `failed` failed (`why`): the encode that replaces it, started with the fallback encoder
    /// unless another viewer did that already; `Err` when there is nothing to fall back to.
    pub(crate) fn recover_encode(
        &self,
        failed: &Arc<Encode>,
        why: &str,
    ) -> Result<Arc<Encode>, String> {
        let mut state = self.media.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = state.current.upgrade()
            && !Arc::ptr_eq(&running, failed)
        {
            return Ok(running);
        }
        self.metrics.pipeline_failures.inc();
        let broken = failed.encoder();
        let next = broken.fallback(&GstProbe).ok_or_else(|| why.to_owned())?;
        tracing::warn!(error = %why, from = broken.element(), to = next.element(), "encoder failed; falling back");
        self.encoder.set(next);
        let encode = self.start_encode(&state.settings)?;
        state.current = Arc::downgrade(&encode);
        self.generation.send_modify(|g| *g += 1);
        Ok(encode)
    }

    /// The display now has `width`×`height`: a new encode at that size, for every viewer.
    pub(crate) fn resize_encode(&self, width: u32, height: u32) -> Result<Arc<Encode>, String> {
        let mut state = self.media.lock().unwrap_or_else(PoisonError::into_inner);
        state.settings.width = width;
        state.settings.height = height;
        let encode = self.start_encode(&state.settings)?;
        state.current = Arc::downgrade(&encode);
        self.generation.send_modify(|g| *g += 1);
        Ok(encode)
    }
}
