//! What the agent asks of the operating system: process groups and signals, `/proc`, pid files,
//! X display numbers, loopback ports and memory limits (cgroup v2 when delegated, else
//! `RLIMIT_DATA`).

use std::path::{Path, PathBuf};

use rustix::process::{Pid, Signal};

/// `/tmp/.X11-unix/X<n>` and `/tmp/.X<n>-lock`.
pub(crate) fn display_files(n: u32) -> [PathBuf; 2] {
    [
        PathBuf::from(format!("/tmp/.X11-unix/X{n}")),
        PathBuf::from(format!("/tmp/.X{n}-lock")),
    ]
}

/// Whether display `n` looks unused (neither its socket nor its lock file exists).
pub(crate) fn display_free(n: u32) -> bool {
    display_files(n)
        .iter()
        .all(|p| !p.exists() && p.symlink_metadata().is_err())
}

/// Removes a display's socket and lock file (after its X server is gone).
pub(crate) fn remove_display(n: u32) {
    for p in display_files(n) {
        if let Err(e) = std::fs::remove_file(&p)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %p.display(), error = %e, "display file not removed");
        }
    }
}

/// A loopback port free now (the container binds it later).
pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// Sends `signal` to process group `pgid`; false when the group is gone.
pub(crate) fn signal_group(pgid: i32, signal: Signal) -> bool {
    match Pid::from_raw(pgid) {
        Some(pid) if pgid > 1 => rustix::process::kill_process_group(pid, signal).is_ok(),
        _ => false,
    }
}

/// Fields of `/proc/<pid>/stat` after the command: (state, pgrp, starttime).
pub(crate) fn parse_stat(stat: &str) -> Option<(char, i32, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let pgrp = fields.get(2)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, pgrp, start))
}

fn stat(pid: i32) -> Option<(char, i32, u64)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Live (not zombie) processes of group `pgid`.
pub(crate) fn group_members(pgid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| stat(*pid).is_some_and(|(state, g, _)| g == pgid && state != 'Z'))
        .collect()
}

/// The start time (clock ticks after boot) of a live process.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    stat(pid).filter(|(s, _, _)| *s != 'Z').map(|(_, _, t)| t)
}

/// Records a container's process group: `<pgid> <start time>`.
pub(crate) fn write_pid_file(path: &Path, pgid: i32) -> std::io::Result<()> {
    let start = start_time(pgid).unwrap_or(0);
    std::fs::write(path, format!("{pgid} {start}\n"))
}

/// Kills the group a pid file names if its leader is still the process that was recorded
/// (same start time) and runs as this user, or, when the leader is gone, if members of the
/// group remain (the kernel does not hand out a group's id while the group exists, so they are
/// the recorded group's). Returns whether it did.
pub(crate) fn kill_recorded(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let mut parts = text.split_whitespace();
    let (Some(Ok(pgid)), Some(Ok(start))) = (
        parts.next().map(str::parse::<i32>),
        parts.next().map(str::parse::<u64>),
    ) else {
        return false;
    };
    let ours = std::fs::metadata(format!("/proc/{pgid}"))
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == rustix::process::getuid().as_raw())
        .unwrap_or(false);
    match start_time(pgid) {
        Some(t) => ours && t == start && signal_group(pgid, Signal::KILL),
        None => !group_members(pgid).is_empty() && signal_group(pgid, Signal::KILL),
    }
}

/// Ends what a previous run of the agent left in `pods_dir`: recorded process groups still
/// alive, X displays, pod directories.
pub(crate) fn clean_leftovers(pods_dir: &Path) {
    for pod in std::fs::read_dir(pods_dir).into_iter().flatten().flatten() {
        let dir = pod.path();
        for pid_file in std::fs::read_dir(dir.join("pids"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if kill_recorded(&pid_file.path()) {
                tracing::info!(pod = %dir.display(), "process node: killed a process group left by a previous run");
            }
        }
        if let Some(n) = std::fs::read_to_string(dir.join("display"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            remove_display(n);
        }
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "leftover pod directory not removed");
        }
    }
}

/// A delegated cgroup v2 directory the agent may create child groups in, with the memory
/// controller enabled for them.
pub(crate) fn delegated_cgroup() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let controllers = std::fs::read_to_string(dir.join("cgroup.subtree_control")).ok()?;
    let writable = rustix::fs::access(&dir, rustix::fs::Access::WRITE_OK).is_ok();
    (writable && controllers.split_whitespace().any(|c| c == "memory")).then_some(dir)
}

/// A container instance's cgroup (removed on drop).
pub(crate) struct Cgroup(PathBuf);

impl Cgroup {
    /// Creates `<parent>/<name>` with `memory.max`.
    pub(crate) fn create(parent: &Path, name: &str, memory_max: u64) -> std::io::Result<Self> {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("memory.max"), memory_max.to_string())?;
        Ok(Self(dir))
    }

    /// Moves a process into the group.
    pub(crate) fn add(&self, pid: u32) -> std::io::Result<()> {
        std::fs::write(self.0.join("cgroup.procs"), pid.to_string())
    }

    /// Whether the kernel's OOM killer struck in the group.
    pub(crate) fn oom_killed(&self) -> bool {
        std::fs::read_to_string(self.0.join("memory.events"))
            .ok()
            .and_then(|e| {
                e.lines()
                    .find_map(|l| l.strip_prefix("oom_kill "))
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
            .is_some_and(|n| n > 0)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Limits the data segment (heap and private mappings) of the process `command` starts:
/// `RLIMIT_DATA`, set in the child between fork and exec.
#[allow(
    unsafe_code,
    reason = "pre_exec is unsafe: the closure runs between fork and exec and calls only setrlimit, which is async-signal-safe"
)]
pub(crate) fn limit_data(command: &mut tokio::process::Command, bytes: u64) {
    let limit = rustix::process::Rlimit {
        current: Some(bytes),
        maximum: Some(bytes),
    };
    // SAFETY: setrlimit is a single system call; nothing is allocated or locked in the child.
    unsafe {
        command.pre_exec(move || {
            rustix::process::setrlimit(rustix::process::Resource::Data, limit)
                .map_err(std::io::Error::from)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_spaces_and_parens_in_the_command() {
        let stat = "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_stat(stat), Some(('S', 1234, 98765)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_in_its_group_listing() {
        let me = std::process::id() as i32;
        let pgid = stat(me).map(|(_, g, _)| g).expect("own stat");
        assert!(group_members(pgid).contains(&me));
        assert!(start_time(me).is_some());
    }
}
