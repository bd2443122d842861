//! A minimal container on a directory root filesystem: the template to copy.
//!
//! ```text
//! cargo run --example rootfs                  # builds a root from this machine, runs a demo
//! cargo run --example rootfs -- DIR CMD...    # runs CMD in an existing root directory DIR
//! ```
//!
//! Without arguments it builds a root in a temporary directory: empty mount points plus
//! the host's top-level symlinks (`bin -> usr/bin`), with the host's `/usr` and `/etc`
//! bound read-only, a fresh `/proc`, a minimal `/dev` and a tmpfs `/tmp`. Nothing is
//! downloaded. Run it as root, or as any user where unprivileged user namespaces are
//! allowed (it then adds `Namespaces::USER`).

use std::path::{Path, PathBuf};

use cellblock::{Container, Namespaces};

/// Builds `<dir>/root` from the running machine; returns it and the host directories to
/// bind read-only at the same place.
fn build_root(dir: &Path) -> std::io::Result<(PathBuf, Vec<PathBuf>)> {
    let root = dir.join("root");
    for d in ["etc", "proc", "dev", "tmp", "usr", "sys"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    let mut binds = vec![PathBuf::from("/usr"), PathBuf::from("/etc")];
    for name in ["bin", "sbin", "lib", "lib64"] {
        let host = Path::new("/").join(name);
        let Ok(meta) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&host)?, root.join(name))?;
        } else if meta.is_dir() {
            std::fs::create_dir_all(root.join(name))?;
            binds.push(host);
        }
    }
    Ok((root, binds))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tmp = std::env::temp_dir().join(format!("cellblock-rootfs-example-{}", std::process::id()));
    let (root, binds, cmd) = if args.len() >= 2 {
        (PathBuf::from(&args[0]), Vec::new(), args[1..].to_vec())
    } else {
        std::fs::create_dir_all(&tmp)?;
        let (root, binds) = build_root(&tmp)?;
        let script = "echo \"hostname: $(hostname)   pid: $$   uid: $(id -u)\"; \
                      echo '/ holds:' $(ls /); echo 'mounts:'; awk '{print \"  \" $5, $6}' /proc/self/mountinfo; \
                      touch /usr/x 2>&1 | sed 's/^/  write to \\/usr: /'; echo ok > /tmp/ok && echo '  write to /tmp: ok'";
        (
            root,
            binds,
            vec!["/bin/sh".into(), "-c".into(), script.into()],
        )
    };

    let mut ns =
        Namespaces::MOUNT | Namespaces::PID | Namespaces::UTS | Namespaces::IPC | Namespaces::NET;
    if !nix::unistd::geteuid().is_root() {
        ns |= Namespaces::USER; // rootless: our own uid becomes root inside
    }
    let mut b = Container::builder(&cmd[0]);
    b.args(&cmd[1..])
        .namespaces(ns)
        // CMD may be anything: it gets PATH and nothing of our environment.
        .env_clear()
        .env("PATH", cellblock::DEFAULT_PATH)
        .hostname("rootfs-demo")
        .rootfs(&root);
    for dir in &binds {
        b.bind_ro(dir, dir);
    }
    if !binds.is_empty() {
        b.mount_dev()
            .tmpfs_with("/tmp", 16 << 20, 0o1777)
            .readonly_root(true);
    }
    let status = b.status().await;
    let _ = std::fs::remove_dir_all(&tmp);
    let status = status?;
    std::process::exit(status.code().unwrap_or(1));
}
