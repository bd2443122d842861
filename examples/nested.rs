//! Nesting: a program inside a container uses cellblock to start its own container.
//!
//! ```text
//! cargo run --release --example nested            # host -> level 1 -> level 2
//! cargo run --release --example nested -- 3       # one level deeper
//! ```
//!
//! Each level prints one line `level=N hostname=H pid=P ns=IDS` (its own view), then
//! starts the next level running this same binary: level 1 on a root filesystem built from
//! the machine (read-only binds of /usr, /etc, the lib directories and the directory
//! holding this binary), deeper levels with fresh namespaces only. Every level sees
//! itself as PID 1 with its own hostname and namespaces. Without root, USER is added at
//! every level (user namespaces nest); inside a container it always is, and every container
//! that starts another one opts in with `.nesting(true)`.

use std::path::{Path, PathBuf};

use cellblock::{Container, NamespaceIds, Namespaces};

/// Where the binary is visible inside level 1.
const INSIDE_DIR: &str = "/cellblock-bin";

/// Builds `<dir>/root`: empty mount points plus the host's top-level symlinks
/// (`bin -> usr/bin`). Returns it and the top-level host directories among `bin`, `sbin`,
/// `lib`, `lib64` that are real directories, to bind read-only at the same place.
fn build_root(dir: &Path) -> std::io::Result<(PathBuf, Vec<PathBuf>)> {
    let root = dir.join("root");
    for d in ["etc", "proc", "dev", "tmp", "usr", &INSIDE_DIR[1..]] {
        std::fs::create_dir_all(root.join(d))?;
    }
    let mut binds = Vec::new();
    for name in ["bin", "sbin", "lib", "lib64"] {
        let host = Path::new("/").join(name);
        if let Ok(target) = std::fs::read_link(&host) {
            std::os::unix::fs::symlink(target, root.join(name))?;
        } else if host.is_dir() {
            std::fs::create_dir_all(root.join(name))?;
            binds.push(host);
        }
    }
    Ok((root, binds))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let remaining: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let level: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0);

    let hostname = nix::unistd::gethostname()?.to_string_lossy().into_owned();
    let ids = NamespaceIds::current()?;
    println!(
        "level={level} hostname={hostname} pid={} ns={ids}",
        std::process::id()
    );
    if remaining == 0 {
        return Ok(());
    }

    let exe = std::env::current_exe()?;
    let next = level + 1;
    let mut ns = Namespaces::UTS
        | Namespaces::PID
        | Namespaces::MOUNT
        | Namespaces::IPC
        | Namespaces::NET
        | Namespaces::CGROUP;
    // Inside a container (level >= 1) no capability over the host's user namespace is
    // left (hardening drops them), so deeper levels create a user namespace of their own.
    if !nix::unistd::geteuid().is_root() || level >= 1 {
        ns |= Namespaces::USER;
    }
    let tmp = std::env::temp_dir().join(format!("cellblock-nested-{}-{level}", std::process::id()));
    let mut b;
    if level == 0 {
        // The outer container gets a root filesystem; the binary and its libraries must be
        // visible inside it.
        let (root, binds) = build_root(&tmp)?;
        let dir = exe.parent().ok_or("binary has no directory")?;
        let name = exe.file_name().ok_or("binary has no name")?;
        b = Container::builder(Path::new(INSIDE_DIR).join(name));
        b.rootfs(&root)
            .bind_ro("/usr", "/usr")
            .bind_ro("/etc", "/etc")
            .bind_ro(dir, INSIDE_DIR)
            .mount_dev()
            .tmpfs("/tmp");
        for host in &binds {
            b.bind_ro(host, host);
        }
    } else {
        b = Container::builder(&exe);
    }
    b.args([(remaining - 1).to_string(), next.to_string()])
        .namespaces(ns)
        .hostname(format!("level-{next}"));
    if remaining > 1 {
        // The next level starts a container of its own: allow exactly that (see
        // `ContainerBuilder::nesting`), and leave its /proc unmasked so that the inner user
        // namespace may mount a fresh one.
        b.nesting(true).masked_paths(false);
    }
    let status = b.status().await;
    let _ = std::fs::remove_dir_all(&tmp);
    let status = status?;
    if !status.success() {
        return Err(format!("level {next} failed: {status}").into());
    }
    Ok(())
}
