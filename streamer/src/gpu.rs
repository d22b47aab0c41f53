//! The GPU path's CUDA side, through cudarc: whether CUDA is usable on this machine (checked
//! without letting cudarc panic where the driver is missing), and frame uploads into device
//! memory from pinned host buffers with asynchronous copies, measured by the benchmark.
//!
//! The encoding pipeline itself hands frames to NVENC inside GStreamer (`cudaupload !
//! cudaconvert ! nvh264enc`, colour conversion on the GPU); see docs/architecture.md for why.
//! This module is the part that talks to the CUDA driver directly.

#![allow(
    unsafe_code,
    reason = "the CUDA driver is an FFI boundary: loading it and pinned allocations are unsafe in cudarc"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cudarc::driver::{CudaContext, CudaSlice, CudaStream, PinnedHostSlice};

/// What CUDA reports about the first device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInfo {
    /// Device name (e.g. `NVIDIA H100 80GB HBM3`).
    pub name: String,
}

/// Whether CUDA is usable, and on which device; otherwise why not (never panics).
pub fn probe() -> Result<GpuInfo, String> {
    // SAFETY: only tries to dlopen the driver library and reports whether it loaded.
    let present = unsafe { cudarc::driver::sys::is_culib_present() };
    if !present {
        return Err("the CUDA driver library (libcuda.so) is not present: no NVIDIA driver".into());
    }
    let ctx = std::panic::catch_unwind(|| CudaContext::new(0))
        .map_err(|_| "creating a CUDA context panicked".to_owned())?
        .map_err(|e| format!("no usable CUDA device: {e}"))?;
    let name = ctx.name().map_err(|e| format!("device name: {e}"))?;
    Ok(GpuInfo { name })
}

/// Uploads frames of a fixed size: copy into a pinned host buffer, then an asynchronous copy
/// to device memory on one stream.
pub struct Uploader {
    stream: Arc<CudaStream>,
    pinned: PinnedHostSlice<u8>,
    device: CudaSlice<u8>,
}

impl Uploader {
    /// Buffers for frames of `bytes` bytes on device 0.
    pub fn new(bytes: usize) -> Result<Self, String> {
        probe()?;
        let ctx = CudaContext::new(0).map_err(|e| e.to_string())?;
        let stream = ctx.default_stream();
        // SAFETY: the pinned buffer is fully written (copy_from_slice) before any read.
        let pinned = unsafe { ctx.alloc_pinned::<u8>(bytes) }.map_err(|e| e.to_string())?;
        let device = stream.alloc_zeros::<u8>(bytes).map_err(|e| e.to_string())?;
        Ok(Self {
            stream,
            pinned,
            device,
        })
    }

    /// Queues the upload of `frame` (the copy into pinned memory is synchronous, the transfer
    /// to the device is not).
    pub fn upload(&mut self, frame: &[u8]) -> Result<(), String> {
        let host = self.pinned.as_mut_slice().map_err(|e| e.to_string())?;
        let n = frame.len().min(host.len());
        host[..n].copy_from_slice(&frame[..n]);
        self.stream
            .memcpy_htod(&self.pinned, &mut self.device)
            .map_err(|e| e.to_string())
    }

    /// Waits for the queued uploads.
    pub fn synchronize(&self) -> Result<(), String> {
        self.stream.synchronize().map_err(|e| e.to_string())
    }
}

/// Upload throughput in GB/s for `frames` frames of `bytes` bytes, and the time per frame.
pub fn upload_throughput(bytes: usize, frames: usize) -> Result<(f64, Duration), String> {
    let mut up = Uploader::new(bytes)?;
    let frame = vec![0x5a_u8; bytes];
    up.upload(&frame)?;
    up.synchronize()?;
    let started = Instant::now();
    for _ in 0..frames {
        up.upload(&frame)?;
    }
    up.synchronize()?;
    let elapsed = started.elapsed();
    let gbps = (bytes * frames) as f64 / elapsed.as_secs_f64() / 1e9;
    Ok((
        gbps,
        elapsed / u32::try_from(frames.max(1)).unwrap_or(u32::MAX),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probing_never_panics_and_says_why_not() {
        match probe() {
            Ok(info) => assert!(!info.name.is_empty()),
            Err(reason) => assert!(
                reason.contains("CUDA") || reason.contains("NVIDIA"),
                "{reason}"
            ),
        }
    }
}
