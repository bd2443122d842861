//! A root filesystem built at test time from the machine itself: a directory of empty
//! mount points and the host's top-level symlinks, with read-only binds of /usr and /etc
//! and, for top-level directories that are not symlinks here, of those too.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use cellblock::ContainerBuilder;

/// A directory under /tmp (mode 0755, traversable by any uid) removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "cellblock-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Top-level host directories made visible read-only inside the test root.
const SYSTEM: [&str; 5] = ["usr", "bin", "sbin", "lib", "lib64"];

/// Creates `<dir>/root` with mount points usr, etc, proc, dev, sys, tmp, and the host's
/// top-level symlinks (bin -> usr/bin on merged-/usr systems) copied as symlinks.
pub fn make_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    for d in ["etc", "proc", "dev", "sys", "tmp", "usr"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for name in SYSTEM {
        let host = Path::new("/").join(name);
        let Ok(meta) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        let inside = root.join(name);
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&host).unwrap();
            let _ = std::os::unix::fs::symlink(target, &inside);
        } else if meta.is_dir() {
            std::fs::create_dir_all(&inside).unwrap();
        }
    }
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    root
}

/// Configures `b` to run on `root` with the host's system directories bound read-only.
pub fn use_root(b: &mut ContainerBuilder, root: &Path) {
    b.rootfs(root);
    for name in SYSTEM {
        let host = Path::new("/").join(name);
        if let Ok(meta) = std::fs::symlink_metadata(&host) {
            if meta.is_dir() && !meta.file_type().is_symlink() {
                b.bind_ro(&host, Path::new("/").join(name));
            }
        }
    }
    b.bind_ro("/etc", "/etc");
}

/// A copy of the example binary `name` (built by `cargo test` along with the tests) in a
/// fresh 0755 temp directory, so that any uid can run it wherever the checkout lives.
pub fn example_binary(name: &str) -> (TempDir, PathBuf) {
    let built = super::example(name);
    let dir = TempDir::new(&format!("bin-{name}"));
    let copy = dir.path().join(name);
    std::fs::copy(&built, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, copy)
}

/// Runs a command to completion, retrying while the kernel reports "Text file busy": a
/// freshly copied binary stays busy while any process forked (by another test of this
/// binary, concurrently) still holds the copy's write descriptor, until that process execs.
pub fn output_retrying(
    mut make: impl FnMut() -> std::process::Command,
) -> (u32, std::process::Output) {
    for _ in 0..100 {
        match make()
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
        {
            Ok(child) => {
                let pid = child.id();
                let out = child.wait_with_output().unwrap();
                // setpriv/unshare exec the binary themselves and report the same error.
                if !out.status.success()
                    && String::from_utf8_lossy(&out.stderr).contains("Text file busy")
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                }
                return (pid, out);
            }
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("spawning: {e}"),
        }
    }
    panic!("the binary stayed busy (ETXTBSY) for 2 seconds");
}
