//! Rootless cgroups: as uid 65534 (via `setpriv`), a limit without delegation is a clear
//! error; with a delegated subtree given by `cgroup_parent`, limits work.
//!
//! The test re-runs its own binary as uid 65534 (`CELLBLOCK_ROOTLESS_INNER` set) for the
//! unprivileged half; the root half prepares the delegated directories and checks from
//! the host that nothing is left in them afterwards.

use std::path::Path;
use std::process::Command;

use cellblock::{CgroupLayout, Container, EndReason, Error};

use crate::common;

const INNER: &str = "CELLBLOCK_ROOTLESS_INNER";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rootless_limits_need_a_delegated_subtree() {
    if let Some(mode) = std::env::var_os(INNER) {
        return inner(mode.to_string_lossy().into_owned()).await;
    }
    if !["/usr/bin/setpriv", "/bin/setpriv"]
        .iter()
        .any(|p| Path::new(p).exists())
    {
        panic!(
            "setpriv (Debian package util-linux) is needed: the rootless cgroup checks cannot run"
        );
    }
    let layout = CgroupLayout::detect().unwrap();
    // Delegation is exercised on v1 (this machine). On v2 the unprivileged process would
    // itself have to live inside the delegated subtree, which needs a systemd scope.
    let name = format!("{}-delegated", std::process::id());
    let mut delegated = Vec::new();
    if layout != CgroupLayout::Unified {
        for ctrl in ["memory", "cpuacct", "pids", "freezer"] {
            let Some(own) = common::own_v1_dir(ctrl) else {
                continue;
            };
            let dir = own.join("cellblock").join(&name);
            std::fs::create_dir_all(&dir).unwrap();
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
            delegated.push(dir);
        }
    } else {
        eprintln!("unified host: the delegated-subtree half is NOT run (needs a systemd scope)");
    }
    let mode = if delegated.is_empty() {
        "error-only".to_owned()
    } else {
        format!("cellblock/{name}")
    };
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &common::test_name(module_path!(), "rootless_limits_need_a_delegated_subtree"),
            "--nocapture",
        ])
        .env(INNER, &mode)
        .current_dir("/")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));

    // From the host: the unprivileged run removed everything it created in the subtree.
    let leftovers: Vec<_> = delegated
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().flatten())
        .filter(|e| e.path().is_dir())
        .map(|e| e.path())
        .collect();
    for d in &delegated {
        let _ = std::fs::remove_dir(d);
        let _ = std::fs::remove_dir(d.parent().unwrap()); // `cellblock`, if now empty
    }
    assert!(out.status.success(), "the unprivileged half failed");
    assert!(text.contains("ok rootless-error:"), "{text}");
    if !delegated.is_empty() {
        assert!(text.contains("ok delegated:"), "{text}");
    }
    assert!(
        leftovers.is_empty(),
        "left in the delegated subtree: {leftovers:?}"
    );
}

/// The unprivileged half, as uid 65534.
async fn inner(mode: String) {
    assert_eq!(nix::unistd::geteuid().as_raw(), 65534);
    let err = Container::builder("/bin/true")
        .pids_limit(8)
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Cgroup { source, .. } if source.raw_os_error() == Some(libc::EACCES)),
        "{err:?}"
    );
    assert!(err.to_string().contains("delegated subtree"), "{err}");
    println!("ok rootless-error: {err}");
    if mode == "error-only" {
        return;
    }
    let (out, report) = Container::builder("/bin/cat")
        .arg("/proc/self/cgroup")
        .pids_limit(8)
        .memory_limit(64 << 20)
        .cgroup_parent(&mode)
        .output_with_report()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(report.reason, EndReason::Exited, "{report:?}");
    assert!(out.status.success());
    let pids_line = text.lines().find(|l| l.contains(":pids:")).unwrap();
    assert!(
        pids_line.contains(&format!("/{mode}/cellblock/")),
        "{pids_line}"
    );
    assert_eq!(report.pids_peak, Some(1));
    assert!(report.peak_memory.is_some());
    println!("ok delegated: {pids_line}");
}
