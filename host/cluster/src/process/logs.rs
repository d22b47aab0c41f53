//! Container logs: each instance's stdout and stderr appended, line by line, to
//! `<pod dir>/logs/<container>/<instance>.log` as `<RFC 3339 nanosecond time> <line>`; a
//! `<instance>.done` file marks an instance whose output is complete. Reading applies
//! `sinceTime`, `tailLines`, `timestamps` and `limitBytes`, and follows a running instance.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::error::{ApiError, Result};
use crate::node_logs::{LogRequest, LogStream, NodeLogs};

/// How often a follow checks for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// Longest line kept whole; longer ones are split.
const MAX_LINE: usize = 64 * 1024;

/// The log directory of a container.
pub(crate) fn dir(pod_dir: &Path, container: &str) -> PathBuf {
    pod_dir.join("logs").join(container)
}

fn instance_file(dir: &Path, instance: u32) -> PathBuf {
    dir.join(format!("{instance}.log"))
}

fn done_file(dir: &Path, instance: u32) -> PathBuf {
    dir.join(format!("{instance}.done"))
}

/// The log file one instance writes.
pub(crate) struct Writer {
    file: Mutex<std::fs::File>,
    done: PathBuf,
}

impl Writer {
    /// Creates `<instance>.log` (and its directory).
    pub(crate) fn create(
        pod_dir: &Path,
        container: &str,
        instance: u32,
    ) -> std::io::Result<Arc<Self>> {
        let dir = dir(pod_dir, container);
        std::fs::create_dir_all(&dir)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(instance_file(&dir, instance))?;
        Ok(Arc::new(Self {
            file: Mutex::new(file),
            done: done_file(&dir, instance),
        }))
    }

    /// Appends one line with the time now.
    pub(crate) fn line(&self, line: &[u8]) {
        let stamp = format!("{:.9} ", jiff::Timestamp::now());
        let mut record = Vec::with_capacity(stamp.len() + line.len() + 1);
        record.extend_from_slice(stamp.as_bytes());
        record.extend_from_slice(line);
        record.push(b'\n');
        let mut f = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = f.write_all(&record) {
            tracing::warn!(error = %e, "container log not written");
        }
    }

    /// Marks the instance's output complete.
    pub(crate) fn finish(&self) {
        if let Err(e) = std::fs::write(&self.done, b"") {
            tracing::warn!(error = %e, "container log end not marked");
        }
    }
}

/// Copies a pipe into the log, a line at a time, until it closes.
pub(crate) async fn pump(pipe: impl AsyncRead + Unpin, writer: Arc<Writer>) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .await;
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
                writer.line(line.strip_suffix(b"\r").unwrap_or(line));
            }
        }
    }
}

use tokio::io::AsyncReadExt as _;

/// One stored record: (time, text).
fn parse_record(record: &[u8]) -> Option<(jiff::Timestamp, &[u8])> {
    let space = record.iter().position(|b| *b == b' ')?;
    let time = std::str::from_utf8(&record[..space]).ok()?.parse().ok()?;
    Some((time, &record[space + 1..]))
}

/// Renders the selected records of `data` (whole lines) as the response body.
pub(crate) fn select(data: &[u8], request: &LogRequest) -> Vec<u8> {
    let mut lines: Vec<&[u8]> = data
        .split_inclusive(|b| *b == b'\n')
        .filter(|r| r.ends_with(b"\n"))
        .filter(|r| {
            request
                .since
                .is_none_or(|since| parse_record(r).is_some_and(|(t, _)| t >= since))
        })
        .collect();
    if let Some(n) = request.tail_lines {
        let keep = usize::try_from(n).unwrap_or(usize::MAX).min(lines.len());
        lines.drain(..lines.len() - keep);
    }
    let mut out = Vec::new();
    for r in lines {
        if request.timestamps {
            out.extend_from_slice(r);
        } else {
            match parse_record(r) {
                Some((_, text)) => out.extend_from_slice(text),
                None => out.extend_from_slice(r),
            }
        }
    }
    if let Some(limit) = request.limit_bytes {
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    out
}

/// Instances of a container present on disk, ascending.
fn instances(dir: &Path) -> Vec<u32> {
    let mut found: Vec<u32> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".log")?.parse().ok())
        .collect();
    found.sort_unstable();
    found
}

/// Reads the process node's logs for the kubelet endpoint.
pub(crate) struct Reader {
    /// `<data dir>/pods`.
    pub pods_dir: PathBuf,
}

impl NodeLogs for Reader {
    fn read(&self, pod: &Value, container: &str, request: &LogRequest) -> Result<LogStream> {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
        if uid.is_empty() || uid.contains('/') || uid.contains("..") {
            return Err(ApiError::BadRequest(format!(
                "pod {name:?} has no usable uid"
            )));
        }
        let dir = dir(&self.pods_dir.join(uid), container);
        let found = instances(&dir);
        let latest = found.last().copied();
        let instance = if request.previous {
            latest.and_then(|l| found.iter().rev().copied().find(|i| *i < l))
        } else {
            latest
        };
        let Some(instance) = instance else {
            return Err(ApiError::BadRequest(if request.previous {
                format!("previous terminated container {container:?} in pod {name:?} not found")
            } else {
                format!("container {container:?} in pod {name:?} has no log yet")
            }));
        };
        let path = instance_file(&dir, instance);
        let done = done_file(&dir, instance);
        let mut file = std::fs::File::open(&path)
            .map_err(|e| ApiError::Internal(format!("open {}: {e}", path.display())))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(|e| ApiError::Internal(format!("read {}: {e}", path.display())))?;
        // Only whole lines now; a partial one is sent when completed (when following).
        let whole = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let first = Bytes::from(select(&data[..whole], request));
        if !request.follow || request.previous {
            return Ok(Box::pin(futures::stream::iter([Ok(first)])));
        }
        let mut sent = first.len() as u64;
        let state = Follow {
            file,
            offset: whole as u64,
            done,
            ended: false,
            request: LogRequest {
                tail_lines: None,
                ..request.clone()
            },
        };
        let head = futures::stream::iter([Ok(first)]);
        let tail = futures::stream::unfold(state, move |mut st| async move {
            loop {
                if st.ended {
                    return None;
                }
                // Checked before reading: output written before the mark is read below.
                let finished = st.done.exists();
                match st.more() {
                    Ok(chunk) if !chunk.is_empty() => {
                        let mut chunk = select(&chunk, &st.request);
                        if let Some(limit) = st.request.limit_bytes {
                            let left = limit.saturating_sub(sent);
                            chunk.truncate(usize::try_from(left).unwrap_or(usize::MAX));
                            if left == 0 {
                                return None;
                            }
                        }
                        sent += chunk.len() as u64;
                        if !chunk.is_empty() {
                            return Some((Ok(Bytes::from(chunk)), st));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => return Some((Err(e), Follow { ended: true, ..st })),
                }
                // Done, or the pod and its logs were removed.
                if finished || !st.done.parent().is_some_and(Path::exists) {
                    return None;
                }
                tokio::time::sleep(FOLLOW_POLL).await;
            }
        });
        Ok(Box::pin(futures::StreamExt::chain(head, tail)))
    }
}

/// A follow in progress.
struct Follow {
    file: std::fs::File,
    offset: u64,
    done: PathBuf,
    ended: bool,
    request: LogRequest,
}

impl Follow {
    /// Whole lines written since the last call.
    fn more(&mut self) -> std::io::Result<Vec<u8>> {
        self.file.seek(SeekFrom::Start(self.offset))?;
        let mut data = Vec::new();
        self.file.read_to_end(&mut data)?;
        let whole = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        data.truncate(whole);
        self.offset += whole as u64;
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &[u8] = b"2026-01-01T00:00:01.000000001Z one\n2026-01-01T00:00:02.5Z two\n2026-01-01T00:00:03Z three\n2026-01-01T00:00:04Z partial";

    #[test]
    fn options_select_lines() {
        let all = select(DATA, &LogRequest::default());
        assert_eq!(all, b"one\ntwo\nthree\n");
        let stamped = select(
            DATA,
            &LogRequest {
                timestamps: true,
                tail_lines: Some(1),
                ..LogRequest::default()
            },
        );
        assert_eq!(stamped, b"2026-01-01T00:00:03Z three\n");
        let since = select(
            DATA,
            &LogRequest {
                since: Some("2026-01-01T00:00:02Z".parse().expect("time")),
                ..LogRequest::default()
            },
        );
        assert_eq!(since, b"two\nthree\n");
        let limited = select(
            DATA,
            &LogRequest {
                limit_bytes: Some(5),
                ..LogRequest::default()
            },
        );
        assert_eq!(limited, b"one\nt");
        let none = select(
            DATA,
            &LogRequest {
                tail_lines: Some(0),
                ..LogRequest::default()
            },
        );
        assert!(none.is_empty());
    }

    #[test]
    fn writer_stamps_lines_and_reader_finds_previous() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pod_dir = dir.path().join("u1");
        for i in 0..2 {
            let w = Writer::create(&pod_dir, "c", i).expect("writer");
            w.line(format!("instance {i}").as_bytes());
            w.finish();
        }
        let reader = Reader {
            pods_dir: dir.path().to_owned(),
        };
        let pod = serde_json::json!({"metadata": {"name": "p", "uid": "u1"}});
        let read = |previous| {
            let stream = reader
                .read(
                    &pod,
                    "c",
                    &LogRequest {
                        previous,
                        ..LogRequest::default()
                    },
                )
                .expect("read");
            futures::executor::block_on(futures::StreamExt::collect::<Vec<_>>(stream))
                .into_iter()
                .map(|b| b.expect("chunk").to_vec())
                .collect::<Vec<_>>()
                .concat()
        };
        assert_eq!(read(false), b"instance 1\n");
        assert_eq!(read(true), b"instance 0\n");
        let other = serde_json::json!({"metadata": {"name": "q", "uid": "u2"}});
        let err = reader
            .read(
                &other,
                "c",
                &LogRequest {
                    previous: true,
                    ..LogRequest::default()
                },
            )
            .err()
            .expect("no previous");
        assert!(
            err.to_string().contains("previous terminated container"),
            "{err}"
        );
    }
}
