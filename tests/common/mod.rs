//! Helpers shared by the integration tests. Each test file uses some of them.
#![allow(dead_code)]

pub mod rootfs;

use std::collections::BTreeSet;
use std::path::Path;

/// Pids of our own zombie children (state `Z`, parent = this process).
pub fn zombie_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state, ppid, ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.trim().to_string()) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let (state, ppid) = (
            f.next().unwrap_or(""),
            f.next().and_then(|p| p.parse::<i32>().ok()).unwrap_or(0),
        );
        if state == "Z" && ppid == me {
            out.push(pid);
        }
    }
    out
}

/// The set of open descriptor numbers of this process.
pub fn open_fds() -> BTreeSet<i32> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect()
}

/// Whether process `pid` still exists (in any state but reaped).
pub fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The host's mount table, one line per mount point (mount point field of mountinfo).
pub fn host_mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().nth(4).unwrap_or("").to_string())
        .collect()
}

/// Waits (polling, up to `secs`) until `f` is true.
pub async fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    f()
}

/// stdout of a command run on the host, trimmed.
pub fn host(cmd: &str) -> String {
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", cmd])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Cgroup directories this test process created (`cellblock/<our pid>-*`) that still
/// exist, in every v1 hierarchy and the v2 one, under our own cgroup or the root.
pub fn our_cgroup_dirs() -> Vec<std::path::PathBuf> {
    let prefix = format!("{}-", std::process::id());
    let mut parents = Vec::new();
    for line in std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
    {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or("/"));
        let rel = path.trim_start_matches('/');
        if ctrls.is_empty() {
            for m in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
                parents.push(Path::new(m).join(rel).join("cellblock"));
            }
        } else {
            for c in ctrls.split(',') {
                let c = c.trim_start_matches("name=");
                parents.push(
                    Path::new("/sys/fs/cgroup")
                        .join(c)
                        .join(rel)
                        .join("cellblock"),
                );
            }
        }
    }
    let mut out = Vec::new();
    for p in parents {
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) && e.path().is_dir() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `cmd.spawn()`, retried while the kernel says ETXTBSY: a file just written by this
/// (multithreaded) test process can still be open for writing in a child that another test
/// thread is cloning right now, until that child execs. Go and Rust's own test suites meet
/// the same race.
pub fn spawn_retrying(cmd: &mut std::process::Command) -> std::process::Child {
    for _ in 0..200 {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            r => return r.unwrap(),
        }
    }
    panic!("still ETXTBSY after 2 s");
}
