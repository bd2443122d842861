//! `--console-socket`: the caller (containerd's shim, conmon) listens on a Unix socket and
//! the runtime sends it the container's pty master with `SCM_RIGHTS`, as runc does (one
//! message whose data is the terminal's name, `/dev/ptmx`, and whose control message
//! carries the descriptor). The runtime then closes its own copy.

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Why the pty master could not be handed over.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("connecting to the console socket {}: {source}", path.display())]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sending the pty master over the console socket {}: {source}", path.display())]
    Send { path: PathBuf, source: nix::Error },
    #[error(
        "--console-socket given, but the container has no terminal (process.terminal is false)"
    )]
    NoTerminal,
}

/// Connects to the socket at `path` and sends `master` over it.
pub fn send_master(path: &Path, master: &OwnedFd) -> Result<(), ConsoleError> {
    let sock = UnixStream::connect(path).map_err(|source| ConsoleError::Connect {
        path: path.to_path_buf(),
        source,
    })?;
    let fds = [master.as_raw_fd()];
    let name = b"/dev/ptmx";
    sendmsg::<UnixAddr>(
        sock.as_raw_fd(),
        &[IoSlice::new(name)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|source| ConsoleError::Send {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    use std::io::{IoSliceMut, Read, Write};
    use std::os::fd::FromRawFd;
    use std::os::unix::net::UnixListener;

    /// What a caller does (containerd's `console.NewConsoleSocket` + `ReceiveMaster`): listen,
    /// accept, recvmsg the descriptor. The received descriptor is the same pipe: bytes
    /// written into it come out of the read end we kept.
    #[test]
    fn the_descriptor_arrives_with_scm_rights() {
        let dir = std::env::temp_dir().join(format!("cellblock-console-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pty.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let (mut rd, wr) = std::io::pipe().unwrap();
        let wr = OwnedFd::from(wr);
        let sender = {
            let path = path.clone();
            std::thread::spawn(move || send_master(&path, &wr))
        };
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<UnixAddr>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .unwrap();
        let mut fds = Vec::new();
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(f) = c {
                fds.extend(f);
            }
        }
        let n = msg.bytes;
        assert_eq!(&buf[..n], b"/dev/ptmx");
        assert_eq!(fds.len(), 1, "one descriptor expected");
        sender.join().unwrap().unwrap();
        // SAFETY: the descriptor recvmsg just installed in this process is ours alone.
        let mut got = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        got.write_all(b"through").unwrap();
        drop(got);
        let mut s = String::new();
        rd.read_to_string(&mut s).unwrap();
        assert_eq!(s, "through");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_socket_is_named() {
        let (_rd, wr) = std::io::pipe().unwrap();
        let e = send_master(Path::new("/nonexistent/pty.sock"), &OwnedFd::from(wr)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("/nonexistent/pty.sock") && msg.contains("No such file"),
            "{msg}"
        );
    }
}
