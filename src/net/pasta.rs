//! Rootless egress: pasta (Debian package `passt`) attached to the container's namespaces
//! before its workload starts.
//!
//! pasta gives `eth0` a copy of the host's address and routes and carries the container's
//! TCP/UDP through ordinary sockets of the supervisor's user (no privilege, no bridge, no
//! NAT rules). A connection to the gateway's address reaches the host's loopback (pasta's
//! gateway mapping). Published ports become pasta's `-t`/`-u` forwards; every automatic
//! forward is off (`-t none -u none -T none -U none`), so nothing the workload binds is
//! exposed unless published. pasta runs as a daemon of ours (`--pid`), and is ended when
//! the container is reaped.
//!
//! pasta opens `/dev/net/tun` as the supervisor's user: where that device is not
//! accessible (mode 0600), the spawn fails with its error.

use std::os::fd::{AsRawFd, OwnedFd};

use std::process::Command;

use super::netns::Netns;
use super::{Proto, Publish};
use crate::error::{Error, Result};

/// The running pasta daemon of one container; ended on drop.
#[derive(Debug)]
pub(crate) struct Pasta {
    pidfd: OwnedFd,
}

impl Drop for Pasta {
    fn drop(&mut self) {
        // SAFETY: plain syscall on a pidfd we own (no pid-reuse race).
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGTERM,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            );
        }
    }
}

/// Starts pasta on the namespaces of `helper` (the process that made them, still waiting
/// at its gate; pasta enters the user namespace first and then opens the network
/// namespace, which it could not reach through a descriptor of ours). Blocking: it
/// returns once pasta has configured the namespace and gone to the background.
pub(crate) fn attach(ns: &Netns, helper: i32, publish: &[Publish]) -> Result<Pasta> {
    let me = std::process::id();
    if ns.user.is_none() {
        return Err(Error::BadConfig(
            "rootless egress needs a user namespace".into(),
        ));
    }
    let net = format!("/proc/{helper}/ns/net");
    let user = format!("/proc/{helper}/ns/user");
    let dir = std::env::temp_dir();
    let pidfile = dir.join(format!("cellblock-pasta.{me}.{:016x}", fastrand::u64(..)));
    let ports = |proto: Proto| -> String {
        let v: Vec<String> = publish
            .iter()
            .filter(|p| p.proto == proto)
            .map(|p| format!("{}:{}", p.host_port, p.container_port))
            .collect();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(",")
        }
    };
    let out = Command::new("pasta")
        .args([
            "--config-net",
            "--quiet",
            "-4",
            "--no-dhcpv6",
            "--no-ra",
            "-I",
            "eth0",
        ])
        .args(["-t", &ports(Proto::Tcp), "-u", &ports(Proto::Udp)])
        .args(["-T", "none", "-U", "none"])
        .arg("--pid")
        .arg(&pidfile)
        .args(["--netns", &net, "--userns", &user])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::MissingTool {
                    tool: "pasta",
                    package: "passt",
                    purpose: "rootless Network::Egress",
                }
            } else {
                Error::io("running pasta")(e)
            }
        })?;
    let pid = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    let _ = std::fs::remove_file(&pidfile);
    let Some(pid) = pid.filter(|_| out.status.success()) else {
        return Err(Error::Io {
            context: "starting pasta for rootless egress",
            source: std::io::Error::other(format!(
                "pasta failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        });
    };
    let pidfd = crate::sys::pidfd_open(pid).map_err(Error::io("pidfd_open of pasta"))?;
    Ok(Pasta { pidfd })
}
