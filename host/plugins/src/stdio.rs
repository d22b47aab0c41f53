//! Guest stdout/stderr: a pipe that never refuses a write (a plugin that prints 1 MiB still
//! decides) but keeps only a bounded head and tail, and reports how much it dropped.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Bytes kept from the start of a stream.
pub const HEAD_BYTES: usize = 32 << 10;
/// Bytes kept from the end of a stream (where a panic message lands).
pub const TAIL_BYTES: usize = 4 << 10;
/// Largest write the guest is told it may make at once.
const WRITE_BUDGET: usize = 64 << 10;

#[derive(Debug, Default)]
struct Buffer {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    /// Bytes that are in neither `head` nor `tail`.
    dropped: usize,
}

impl Buffer {
    fn push(&mut self, mut bytes: &[u8]) {
        let room = HEAD_BYTES.saturating_sub(self.head.len());
        let (into_head, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(into_head);
        bytes = rest;
        // Only the last TAIL_BYTES of this write can survive in the tail.
        let skip = bytes.len().saturating_sub(TAIL_BYTES);
        self.dropped += skip;
        bytes = bytes.get(skip..).unwrap_or_default();
        self.tail.extend(bytes);
        let over = self.tail.len().saturating_sub(TAIL_BYTES);
        self.tail.drain(..over);
        self.dropped += over;
    }
}

/// What a capped stream captured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// The first bytes written.
    pub head: Vec<u8>,
    /// The last bytes written after the head filled (empty if all fit in the head).
    pub tail: Vec<u8>,
    /// Bytes dropped between them.
    pub dropped: usize,
}

impl Captured {
    /// Head and tail as text, with a marker where bytes were dropped.
    pub fn text(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped > 0 {
            out.push_str(&format!("\n… [{} bytes truncated] …\n", self.dropped));
        }
        out.push_str(&String::from_utf8_lossy(&self.tail));
        out
    }

    /// The last bytes written (the tail, or the end of the head when nothing overflowed).
    pub fn last(&self) -> &[u8] {
        if self.tail.is_empty() {
            let start = self.head.len().saturating_sub(TAIL_BYTES);
            self.head.get(start..).unwrap_or_default()
        } else {
            // `tail` is contiguous once captured (see `captured`).
            &self.tail
        }
    }
}

/// An output pipe that accepts every write and keeps a bounded head and tail.
#[derive(Debug, Clone, Default)]
pub struct CappedOutput {
    buffer: Arc<Mutex<Buffer>>,
}

impl CappedOutput {
    fn write_bytes(&self, bytes: &[u8]) {
        self.buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(bytes);
    }

    /// What was written so far.
    pub fn captured(&self) -> Captured {
        let b = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        Captured {
            head: b.head.clone(),
            tail: b.tail.iter().copied().collect(),
            dropped: b.dropped,
        }
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_BUDGET)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CappedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_is_kept_whole() {
        let out = CappedOutput::default();
        out.write_bytes(b"hello\n");
        let c = out.captured();
        assert_eq!(c.text(), "hello\n");
        assert_eq!(c.dropped, 0);
        assert_eq!(c.last(), b"hello\n");
    }

    #[test]
    fn a_flood_keeps_head_and_tail_and_counts_the_rest() {
        let out = CappedOutput::default();
        for _ in 0..1024 {
            out.write_bytes(&[b'x'; 1024]);
        }
        out.write_bytes(b"panicked at the end");
        let c = out.captured();
        assert_eq!(c.head.len(), HEAD_BYTES);
        assert_eq!(c.tail.len(), TAIL_BYTES);
        assert_eq!(c.dropped, (1 << 20) + 19 - HEAD_BYTES - TAIL_BYTES);
        assert!(c.last().ends_with(b"panicked at the end"));
        assert!(c.text().contains("bytes truncated"), "{}", c.text());
    }

    #[test]
    fn one_huge_write_keeps_only_its_end_in_the_tail() {
        let out = CappedOutput::default();
        let mut big = vec![b'a'; 1 << 20];
        big.extend_from_slice(b"END");
        out.write_bytes(&big);
        let c = out.captured();
        assert_eq!(c.head.len() + c.tail.len() + c.dropped, big.len());
        assert!(c.tail.ends_with(b"END"));
    }
}
