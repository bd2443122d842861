//! Root filesystems and mounts: pivot_root, binds, tmpfs, /proc, /dev, mqueue, sysfs,
//! read-only mounts, and what the host sees.

use crate::common;

use std::path::{Path, PathBuf};

use cellblock::{Container, Error, Namespaces, Stage};
use common::rootfs::{make_root, use_root, TempDir};

const NS: Namespaces = Namespaces::MOUNT.union(Namespaces::PID);

async fn sh(b: &mut cellblock::ContainerBuilder, script: &str) -> (bool, String, String) {
    let out = b.args(["-c", script]).output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn outside_files_unreachable_after_pivot_root() {
    let t = TempDir::new("escape");
    let root = make_root(t.path());
    let secret = t.path().join("secret");
    std::fs::write(&secret, "host-secret-42\n").unwrap();
    std::fs::write(root.join("marker"), "inside-marker\n").unwrap();
    // An absolute symlink inside the root that points at the host file.
    std::os::unix::fs::symlink(&secret, root.join("escape")).unwrap();
    let s = secret.display();
    let script = format!(
        "cat /marker; cat /escape; cat ../../../../..{s}; cat {s}; cat /proc/1/root{s}; \
         cat /proc/self/cwd/../../..{s}; cd /; cd ..; cat .{s}; cat /proc/1/cwd{s}; echo done"
    );
    let mut b = Container::builder("/bin/sh");
    b.namespaces(NS);
    use_root(&mut b, &root);
    let (ok, out, err) = sh(&mut b, &script).await;
    assert!(ok, "stderr: {err}");
    // Inside: the root's own file is there, the host file through every path is not.
    assert!(out.contains("inside-marker"), "{out}");
    assert!(out.trim_end().ends_with("done"), "{out}");
    assert!(!out.contains("host-secret-42"), "escaped the root: {out}");
    // /proc/1/root and /proc/1/cwd: ENOENT through the container's own init, or EACCES
    // once that init is non-dumpable (it is by default).
    assert_eq!(
        err.matches("No such file or directory").count() + err.matches("Permission denied").count(),
        7,
        "{err}"
    );
    // Host side: the file is really there.
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "host-secret-42\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn old_root_is_gone_from_the_mount_table() {
    let t = TempDir::new("mtab");
    let root = make_root(t.path());
    let mut b = Container::builder("/bin/cat");
    b.arg("/proc/self/mountinfo").namespaces(NS).tmpfs("/tmp");
    use_root(&mut b, &root);
    let out = b.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let points: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .collect();
    assert_eq!(points.first(), Some(&"/"), "{text}");
    for p in &points {
        let allowed = [
            "/", "/usr", "/etc", "/proc", "/tmp", "/bin", "/sbin", "/lib", "/lib64",
        ];
        assert!(
            allowed
                .iter()
                .any(|a| p == a || p.starts_with(&format!("{a}/")) && *a != "/"),
            "unexpected mount {p} inside:\n{text}"
        );
    }
    // The host's own mounts (e.g. whatever holds the root dir itself) are not listed.
    let host = common::host_mount_points();
    let host_only: Vec<_> = host
        .iter()
        .filter(|m| {
            !m.starts_with("/usr")
                && !m.starts_with("/etc")
                && !m.starts_with("/proc")
                && *m != "/"
                && !m.starts_with("/tmp")
        })
        .collect();
    for m in host_only {
        assert!(
            !points.contains(&m.as_str()),
            "host mount {m} visible inside:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_mounts_refuse_writes() {
    let t = TempDir::new("ro");
    let root = make_root(t.path());
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::create_dir_all(root.join("rw")).unwrap();
    let data = t.path().join("data");
    let rw = t.path().join("rw");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&rw).unwrap();
    // The writable bind belongs to host uid 1000, and the container's root is mapped to it
    // (with the default identity alone, its root is an unprivileged host id that may not
    // write a root-owned directory).
    std::os::unix::fs::chown(&rw, Some(1000), Some(1000)).unwrap();
    let mut b = Container::builder("/bin/sh");
    b.namespaces(NS).map_root_to(1000, 1000);
    use_root(&mut b, &root);
    b.bind_ro(&data, "/data")
        .bind(&rw, "/rw")
        .tmpfs_with("/tmp", 1 << 20, 0o1777)
        .readonly_root(true);
    let (ok, out, err) = sh(
        &mut b,
        "touch /data/x 2>&1; touch /usr/x 2>&1; touch /newfile 2>&1; \
         echo hi > /rw/written && echo rw-ok; echo t > /tmp/t && echo tmp-ok; stat -c %a /tmp",
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.matches("Read-only file system").count(), 3, "{out}");
    assert!(
        out.contains("rw-ok") && out.contains("tmp-ok") && out.contains("1777"),
        "{out}"
    );
    // Host side: nothing was written through the read-only mounts, the rw bind wrote.
    assert!(!data.join("x").exists() && !root.join("newfile").exists());
    assert_eq!(std::fs::read_to_string(rw.join("written")).unwrap(), "hi\n");
    let meta = std::fs::metadata(rw.join("written")).unwrap();
    assert_eq!(
        (
            std::os::unix::fs::MetadataExt::uid(&meta),
            std::os::unix::fs::MetadataExt::gid(&meta)
        ),
        (1000, 1000)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mounts_never_reach_the_host_and_vanish_on_exit() {
    let t = TempDir::new("leak");
    let root = make_root(t.path());
    let _host_mounts = common::host_mounts_lock().await;
    let before = common::host_mount_points();
    let mut b = Container::builder("/bin/sh");
    b.args(["-c", "grep -c . /proc/self/mountinfo; sleep 30"])
        .namespaces(NS)
        .tmpfs("/tmp")
        .mount_dev()
        .stdout(cellblock::Stdio::piped());
    use_root(&mut b, &root);
    let mut c = b.spawn().await.unwrap();
    let mut line = String::new();
    use tokio::io::AsyncBufReadExt;
    tokio::io::BufReader::new(c.take_stdout().unwrap())
        .read_line(&mut line)
        .await
        .unwrap();
    let inside: usize = line.trim().parse().unwrap();
    assert!(inside >= 5, "inside sees {inside} mounts");
    let during = common::host_mount_points();
    let root_s = root.display().to_string();
    assert!(
        !during.iter().any(|m| m.starts_with(&root_s)),
        "a container mount shows on the host: {during:?}"
    );
    c.start_kill().unwrap();
    c.wait().await.unwrap();
    let after = common::host_mount_points();
    assert!(!after.iter().any(|m| m.starts_with(&root_s)));
    // Other tests mount only inside their own namespaces, or on the host under the lock.
    assert_eq!(before.len(), after.len(), "host mount table changed");
}

#[tokio::test]
async fn missing_rootfs_bind_source_or_mount_point_fails_before_clone() {
    let t = TempDir::new("missing");
    let root = make_root(t.path());
    let err = Container::builder("/bin/true")
        .namespaces(NS)
        .rootfs(t.path().join("nope"))
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BadMount { what: "rootfs", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("nope"), "{err}");

    let mut b = Container::builder("/bin/true");
    b.namespaces(NS);
    use_root(&mut b, &root);
    let err = b
        .bind("/definitely/not/here", "/tmp")
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadMount {
                what: "bind source",
                ..
            }
        ),
        "{err}"
    );

    let mut b = Container::builder("/bin/true");
    b.namespaces(NS);
    use_root(&mut b, &root);
    let err = b.bind("/etc", "/no-such-dir").status().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadMount {
                what: "bind destination",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");

    let err = Container::builder("/bin/true")
        .namespaces(Namespaces::PID)
        .tmpfs("/mnt")
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NeedsNamespace {
                needs: Namespaces::MOUNT,
                ..
            }
        ),
        "{err}"
    );

    let mut b = Container::builder("/opt/not-in-root");
    b.namespaces(NS);
    use_root(&mut b, &root);
    let err = b.status().await.unwrap_err();
    assert!(matches!(err, Error::ProgramNotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("inside the root filesystem"),
        "{err}"
    );
    assert!(common::eventually(5, || common::zombie_children().is_empty()).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn program_and_cwd_are_looked_up_inside_the_root() {
    let t = TempDir::new("prog");
    let root = make_root(t.path());
    std::fs::create_dir_all(root.join("opt/work")).unwrap();
    let script = root.join("opt/hello");
    std::fs::write(&script, "#!/bin/sh\necho hello from $(pwd)\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert!(!Path::new("/opt/hello").exists());
    let mut b = Container::builder("/opt/hello");
    b.namespaces(NS).current_dir("/opt/work");
    use_root(&mut b, &root);
    let out = b.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from /opt/work\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn proc_inside_the_root_shows_only_the_container() {
    let t = TempDir::new("proc");
    let root = make_root(t.path());
    let mut b = Container::builder("/bin/sh");
    b.namespaces(NS | Namespaces::UTS).hostname("rooted");
    use_root(&mut b, &root);
    let (ok, out, err) = sh(&mut b, "echo $$; hostname; ls /proc | grep -c '^[0-9]'").await;
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    // PID 2 under the built-in init (issue 4).
    assert_eq!(lines[0], "2");
    assert_eq!(lines[1], "rooted");
    let pids: usize = lines[2].parse().unwrap();
    assert!(pids <= 4, "container /proc lists {pids} processes");
    // The host's /proc lists many more.
    let host_pids = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count();
    assert!(host_pids > pids);
}

#[tokio::test(flavor = "multi_thread")]
async fn minimal_dev_mqueue_and_readonly_sysfs() {
    let t = TempDir::new("dev");
    let root = make_root(t.path());
    let mut b = Container::builder("/bin/sh");
    b.namespaces(NS | Namespaces::IPC | Namespaces::NET)
        .mount_dev()
        .mount_mqueue()
        .mount_sysfs();
    use_root(&mut b, &root);
    let (ok, out, err) = sh(
        &mut b,
        "ls /dev | tr '\\n' ' '; echo; echo x > /dev/null && echo null-ok; \
         head -c 16 /dev/urandom | wc -c; head -c 3 /dev/zero | od -An -tx1; \
         test -c /dev/pts/ptmx && echo ptmx-ok; \
         grep -E ' /dev/mqueue | /sys ' /proc/self/mountinfo | awk '{print $5, $6, $9}'; \
         touch /sys/x 2>&1; ls /sys/class/net | tr '\\n' ' '",
    )
    .await;
    assert!(ok, "{err}\n{out}");
    let mut lines = out.lines();
    let dev: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    for want in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm", "fd", "mqueue",
    ] {
        assert!(dev.contains(&want), "/dev lacks {want}: {dev:?}");
    }
    // Nothing else of the host's /dev (disks, consoles) is there.
    assert!(dev.len() <= 15, "{dev:?}");
    assert!(
        out.contains("null-ok") && out.contains("\n16\n") && out.contains("00 00 00"),
        "{out}"
    );
    assert!(out.contains("ptmx-ok"), "{out}");
    assert!(out.contains("/dev/mqueue rw"), "{out}");
    assert!(out.contains("/sys ro"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    // A fresh sysfs of the new network namespace lists only lo.
    assert!(out.trim_end().ends_with("lo"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn chroot_fallback_changes_root() {
    let t = TempDir::new("chroot");
    let root = make_root(t.path());
    std::fs::write(root.join("marker"), "chrooted\n").unwrap();
    let mut b = Container::builder("/bin/sh");
    b.namespaces(NS);
    use_root(&mut b, &root);
    b.chroot(&root);
    // The test's own directory exists on the host (it holds the root), not inside.
    let host_dir = t.path().display();
    let script = format!(
        "cat /marker; test -e /work || echo no-host-work; test -e {host_dir} || echo no-host-dir"
    );
    let (ok, out, err) = sh(&mut b, &script).await;
    assert!(ok, "{err}");
    assert_eq!(out, "chrooted\nno-host-work\nno-host-dir\n");
}

#[tokio::test]
async fn setup_failure_inside_names_the_mount_stage() {
    // Only the kernel can refuse this, inside the child: a fresh /proc in a user namespace
    // that does not own the (host's) PID namespace.
    let err = Container::builder("/bin/true")
        .namespaces(Namespaces::USER | Namespaces::MOUNT)
        .mount_proc()
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Setup { stage: Stage::MountProc, errno } if errno.0 == libc::EPERM),
        "{err}"
    );
    assert!(common::eventually(5, || common::zombie_children().is_empty()).await);
}

#[tokio::test]
async fn mount_points_behind_escaping_symlinks_are_refused() {
    let t = TempDir::new("symlink-target");
    let root = make_root(t.path());
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("abs")).unwrap();
    std::os::unix::fs::symlink("../outside", root.join("rel")).unwrap();
    for dst in ["/abs", "/rel"] {
        let mut b = Container::builder("/bin/true");
        b.namespaces(NS);
        use_root(&mut b, &root);
        let err = b.tmpfs(dst).status().await.unwrap_err();
        assert!(
            matches!(err, Error::BadMount { ref reason, .. } if reason.contains("resolves outside")),
            "{dst}: {err}"
        );
    }
}

// Mount points, directories, files, links and modes made on demand inside a tmpfs of the
// container's own (bubblewrap's --dir, --symlink, --file, --chmod, --perms): the container
// sees them; the host sees none of them, and its bind source is untouched.
#[tokio::test(flavor = "multi_thread")]
async fn tmpfs_backed_mount_points_dirs_files_links_and_modes() {
    let _d = common::deadline("tmpfs-backed entries", 60);
    let t = TempDir::new("ondemand");
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("marker"), "bound-marker\n").unwrap();
    // Writable by the container's (unprivileged, by default) identity.
    std::fs::set_permissions(&src, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let tag = format!("cb-ondemand-{}", std::process::id());
    let mut b = Container::builder("/bin/sh");
    b.namespaces(NS)
        .tmpfs("/tmp")
        .bind(&src, format!("/tmp/{tag}/a/b"))
        .dir(format!("/tmp/{tag}/d/e"), 0o1741)
        .symlink("d", format!("/tmp/{tag}/link"))
        .file(format!("/tmp/{tag}/link/f.txt"), "file-contents\n", 0o640)
        .file(format!("/tmp/{tag}/new/deep/empty"), b"", 0o666)
        .chmod(format!("/tmp/{tag}/d"), 0o711);
    let script = format!(
        "cd /tmp/{tag} && cat a/b/marker && stat -c '%a %F' d/e d d/f.txt new/deep/empty new new/deep && \
         cat d/f.txt && readlink link && stat -c %s new/deep/empty && echo written > a/b/fromin"
    );
    let (ok, out, err) = sh(&mut b, &script).await;
    assert!(ok, "stderr: {err}");
    assert_eq!(
        out,
        "bound-marker\n1741 directory\n711 directory\n640 regular file\n666 regular empty file\n\
         755 directory\n755 directory\nfile-contents\nd\n0\n",
        "stderr: {err}"
    );
    // Host side: nothing of it exists in the host's /tmp; the bind source got only what the
    // container wrote through the bind.
    assert!(!Path::new("/tmp").join(&tag).exists());
    let mut names: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["fromin", "marker"]);
}

/// Mounts are listed in the container's mountinfo in the order they were asked for, binds
/// included: a bind source is grabbed before anything is mounted (so it is the host's
/// object), and since Linux 6.8 mountinfo lists mounts by mount id, so the grabbed copy
/// used to show ahead of the tmpfs mounts before it (runtime-tools' `mounts` checks the
/// order). Here a tmpfs, a bind of the host's /etc, a tmpfs, a bind: listed in that order.
#[tokio::test(flavor = "multi_thread")]
async fn mountinfo_lists_binds_in_the_order_asked() {
    let _d = common::deadline("mountinfo order", 60);
    let tag = format!("cb-order-{}", std::process::id());
    let mut b = Container::builder("/bin/cat");
    b.arg("/proc/self/mountinfo")
        .namespaces(NS)
        .tmpfs("/tmp")
        .tmpfs(format!("/tmp/{tag}/one"))
        .bind("/etc", format!("/tmp/{tag}/two"))
        .tmpfs(format!("/tmp/{tag}/three"))
        .bind("/etc", format!("/tmp/{tag}/four"));
    let out = b.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let order: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter_map(|p| p.strip_prefix(&format!("/tmp/{tag}/")))
        .collect();
    assert_eq!(order, ["one", "two", "three", "four"], "{text}");
}

// Nothing is ever created or changed on the host's own file systems through the container's
// view: a missing mount point, dir, file, link or chmod outside a tmpfs of ours is refused
// before the clone, and a link of ours leading out of the tmpfs does not help.
#[tokio::test(flavor = "multi_thread")]
async fn entries_on_host_file_systems_are_refused() {
    let _d = common::deadline("host entries refused", 60);
    let t = TempDir::new("refuse");
    let host_file = t.path().join("keep");
    std::fs::write(&host_file, "x").unwrap();
    std::fs::set_permissions(
        &host_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let missing = t.path().join("missing");
    type Case = (&'static str, Box<dyn Fn(&mut cellblock::ContainerBuilder)>);
    let (m, f, hf) = (missing.clone(), missing.clone(), host_file.clone());
    let (m2, m3) = (missing.clone(), missing.clone());
    // Outside /tmp (which the case below covers with a tmpfs): the host's /etc.
    let m4 = PathBuf::from("/etc");
    let cases: Vec<Case> = vec![
        (
            "bind destination",
            Box::new(move |b| {
                b.bind("/etc", &m);
            }),
        ),
        (
            "dir",
            Box::new(move |b| {
                b.dir(&f, 0o755);
            }),
        ),
        (
            "file",
            Box::new(move |b| {
                b.file(&m2, "x", 0o644);
            }),
        ),
        (
            "symlink",
            Box::new(move |b| {
                b.symlink("/etc", &m3);
            }),
        ),
        (
            "chmod",
            Box::new(move |b| {
                b.chmod(&hf, 0o777);
            }),
        ),
        // A link of ours in the tmpfs aimed at the host's directory: the file would land
        // on the host.
        (
            "file",
            Box::new(move |b| {
                b.tmpfs("/tmp")
                    .symlink(&m4, "/tmp/out")
                    .file("/tmp/out/x", "x", 0o644);
            }),
        ),
    ];
    for (what, add) in cases {
        let mut b = Container::builder("/bin/true");
        b.namespaces(NS);
        add(&mut b);
        let err = b.status().await.unwrap_err();
        assert!(
            matches!(&err, Error::BadMount { what: w, .. } if *w == what),
            "{what}: {err}"
        );
    }
    // Host side: nothing created, the mode unchanged.
    assert!(!missing.exists());
    assert!(!Path::new("/etc/x").exists());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&host_file).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    // An existing host directory is fine for dir() (nothing to do), as in bubblewrap.
    let ok = Container::builder("/bin/true")
        .namespaces(NS)
        .dir(t.path(), 0o700)
        .status()
        .await
        .unwrap();
    assert!(ok.success());
    assert_ne!(
        std::fs::metadata(t.path()).unwrap().permissions().mode() & 0o7777,
        0o700
    );
    // A mode beyond 0o7777 is refused.
    let err = Container::builder("/bin/true")
        .namespaces(NS)
        .tmpfs("/tmp")
        .dir("/tmp/x", 0o17777)
        .status()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadMount { what: "dir", .. }), "{err}");
}

// remount_ro: the container's copy of a mount becomes read-only (attack: write into it);
// control: the same container without remount_ro writes. The host's mount is not changed.
#[tokio::test(flavor = "multi_thread")]
async fn remount_ro_makes_the_containers_copy_read_only() {
    let _d = common::deadline("remount_ro", 60);
    let t = TempDir::new("remount");
    std::fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    for (ro, expect) in [(true, "Read-only file system"), (false, "wrote")] {
        let mut b = Container::builder("/bin/sh");
        b.namespaces(NS).bind(t.path(), t.path());
        if ro {
            b.remount_ro(t.path());
        }
        let script = format!("echo x > {}/w && echo wrote", t.path().display());
        let (_, out, err) = sh(&mut b, &script).await;
        assert!(
            out.contains(expect) || err.contains(expect),
            "ro={ro}: {out} {err}"
        );
        assert_eq!(t.path().join("w").exists(), !ro);
    }
    // Host side: the directory is still writable here.
    std::fs::write(t.path().join("host"), "y").unwrap();
    // Not a mount point: the child names the stage.
    let err = Container::builder("/bin/true")
        .namespaces(NS)
        .tmpfs("/tmp")
        .dir("/tmp/sub", 0o755)
        .remount_ro("/tmp/sub")
        .status()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
}

// overlay(lower, dst): inside, the lower directory's files are visible and writable; every
// change goes to the tmpfs upper layer. Host side: the lower directory is unchanged. Both in
// the default user namespace and as host root; control: a plain bind lets the same writes
// reach the host.
#[tokio::test(flavor = "multi_thread")]
async fn overlay_with_tmpfs_upper_leaves_the_lower_untouched() {
    let _d = common::deadline("overlay", 60);
    let t = TempDir::new("overlay");
    let lower = t.path().join("lower");
    std::fs::create_dir(&lower).unwrap();
    std::fs::set_permissions(&lower, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let orig = lower.join("orig");
    std::fs::write(&orig, "original\n").unwrap();
    std::fs::set_permissions(&orig, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    // In the default user namespace the lower file belongs to host root, an id outside the
    // container's map: overlayfs cannot copy it up (EOVERFLOW), so it stays read-only there;
    // new entries work. As host root every change is copied up.
    let script = "cat /mnt/o/orig && { echo changed > /mnt/o/orig || echo changed; } && \
                  echo new > /mnt/o/new && mkdir /mnt/o/d && cat /mnt/o/orig /mnt/o/new";
    for (host_root, overlay) in [(false, true), (true, true), (true, false)] {
        let mut b = Container::builder("/bin/sh");
        b.namespaces(NS).tmpfs("/mnt");
        if host_root {
            b.host_root();
        }
        if overlay {
            b.overlay(&lower, "/mnt/o");
        } else {
            b.bind(&lower, "/mnt/o");
        }
        let (ok, out, err) = sh(&mut b, script).await;
        assert!(ok, "host_root={host_root} overlay={overlay}: {err}");
        let want = if host_root {
            "original\nchanged\nnew\n"
        } else {
            "original\nchanged\noriginal\nnew\n"
        };
        assert_eq!(out, want, "host_root={host_root} overlay={overlay}");
        if host_root {
            assert_eq!(err, "");
        } else {
            assert!(err.contains("Value too large"), "{err}");
        }
        let host = std::fs::read_to_string(&orig).unwrap();
        if overlay {
            assert_eq!(host, "original\n", "host_root={host_root}");
            assert!(!lower.join("new").exists() && !lower.join("d").exists());
        } else {
            // Control: the same writes through a bind reach the host.
            assert_eq!(host, "changed\n");
            assert!(lower.join("new").exists());
        }
    }
    let err = Container::builder("/bin/true")
        .namespaces(NS)
        .overlay("/definitely/not/here", "/mnt")
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadMount {
                what: "overlay",
                ..
            }
        ),
        "{err}"
    );
}

/// A program named without a `/` is looked up in the container's PATH, inside its root. A
/// directory of that PATH inside a file system of ours (here the root itself is a tmpfs)
/// starts empty, so a name there is not a match unless the caller put a file there: the
/// lookup goes on to the bound `/usr/bin`. (It used to stop at the first such directory,
/// and execve failed with ENOENT: found with bubblewrap's front end, examples/bwrap.rs.)
/// Control: a `file()` at exactly that path is what runs.
#[tokio::test(flavor = "multi_thread")]
async fn path_lookup_skips_empty_directories_of_our_own() {
    let _d = common::deadline("path_lookup_skips_empty_directories_of_our_own", 60);
    let t = TempDir::new("tmpfs-root");
    let base = |b: &mut cellblock::ContainerBuilder| {
        b.namespaces(NS)
            .rootfs(t.path())
            .tmpfs("/")
            .bind_ro("/usr", "/usr")
            .env("PATH", "/opt/bin:/usr/bin");
        for lib in ["/lib", "/lib64", "/bin"] {
            if let Ok(target) = std::fs::read_link(lib) {
                b.symlink(target, lib);
            } else if Path::new(lib).is_dir() {
                b.bind_ro(lib, lib);
            }
        }
    };
    let mut b = Container::builder("true");
    base(&mut b);
    let st = b.status().await.unwrap();
    assert!(st.success(), "{st:?}");
    // Control: a script placed at /opt/bin/true is found first and runs (exit 7).
    let mut b = Container::builder("true");
    base(&mut b);
    b.file("/opt/bin/true", b"#!/usr/bin/sh\nexit 7\n", 0o755);
    let st = b.status().await.unwrap();
    assert_eq!(st.code(), Some(7), "{st:?}");
}

/// A root filesystem in a *joined* mount namespace (OCI `create` with a `mnt` namespace
/// path, runtime-tools `linux_ns_path`), as runc sets it up: the workload runs in that
/// namespace at the new root. `pivot_root` moves every process of the namespace whose
/// root was the old one, so the namespace's own process (an `unshare` here) is moved into
/// the container's root too: a documented consequence, asserted from the host. The
/// joined namespace shares a mount with the host (a shared tmpfs holding the root, and
/// `unshare --propagation unchanged`): the container's mounts still never reach the host,
/// since `/` of the joined namespace is made private before anything is mounted. With
/// the root change in the supervisor's own mount namespace (by path, or through a
/// container that shares it), the spawn is refused before anything runs: it would move
/// the supervisor into the container.
#[tokio::test(flavor = "multi_thread")]
async fn a_root_filesystem_in_a_joined_mount_namespace() {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let _d = common::deadline("root filesystem in a joined mount namespace", 60);
    let _host_mounts = common::host_mounts_lock().await;
    let before = common::host_mount_points();
    let t = TempDir::new("joinmnt");
    let shared = t.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    mount(
        Some("tmpfs"),
        &shared,
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    mount(
        None::<&str>,
        &shared,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .unwrap();
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = umount2(&self.0, MntFlags::MNT_DETACH);
        }
    }
    let _unmount = Unmount(shared.clone());
    let root = make_root(&shared);
    std::fs::write(root.join("marker"), "inside-marker\n").unwrap();
    /// Kills and reaps the `unshare` (by its pid: our child) however the test ends.
    struct Reaped(std::process::Child);
    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let target = Reaped(
        std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "unchanged", "sleep", "100"])
            .spawn()
            .unwrap(),
    );
    let tpid = target.0.id() as i32;
    let ours = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let tns = format!("/proc/{tpid}/ns/mnt");
    assert!(
        common::eventually(10, || {
            std::fs::read_link(&tns).is_ok_and(|n| n != ours)
                && std::fs::read_link(format!("/proc/{tpid}/exe"))
                    .is_ok_and(|e| e.ends_with("sleep"))
        })
        .await,
        "unshare did not make its mount namespace"
    );
    let theirs = std::fs::read_link(&tns).unwrap();
    assert!(!Path::new(&format!("/proc/{tpid}/root/marker")).exists());
    // The control: a mount made in that namespace as it is reaches the host (what every
    // mount of the container's would do, were `/` not made private first; with that step
    // off, 23 of them leak and pivot_root then fails with EINVAL).
    let probe = shared.join("probe");
    std::fs::create_dir(&probe).unwrap();
    let made = std::process::Command::new("nsenter")
        .arg(format!("--mount={tns}"))
        .args(["mount", "-t", "tmpfs", "probe"])
        .arg(&probe)
        .status()
        .unwrap();
    assert!(made.success());
    let probe_s = probe.display().to_string();
    let reached = common::host_mount_points().contains(&probe_s);
    umount2(&probe, MntFlags::MNT_DETACH).unwrap();
    assert!(
        reached,
        "the control: a mount in the joined namespace reaches the host"
    );

    let mut b = Container::builder("/bin/sh");
    b.args([
        "-c",
        "cat /marker; readlink /proc/self/ns/mnt; echo ready; sleep 30",
    ])
    .namespaces(Namespaces::PID)
    .host_root()
    .join_path(Namespaces::MOUNT, &tns)
    .tmpfs("/tmp")
    .stdout(cellblock::Stdio::piped());
    use_root(&mut b, &root);
    let mut c = b.spawn().await.unwrap();
    let mut out = String::new();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(c.take_stdout().unwrap()).lines();
    while let Some(l) = lines.next_line().await.unwrap() {
        if l == "ready" {
            break;
        }
        out.push_str(&l);
        out.push('\n');
    }
    // Seen from the host while it runs: in the joined namespace; none of its mounts (the
    // root bound on itself, /proc, /tmp, the binds) shows here, though the root lies in a
    // mount shared with the namespace it joined; the namespace's process was moved.
    let during = common::host_mount_points();
    let moved = std::fs::read_to_string(format!("/proc/{tpid}/root/marker"));
    let joined = std::fs::read_link(format!("/proc/{}/ns/mnt", c.pid())).unwrap();
    c.start_kill().unwrap();
    c.wait().await.unwrap();
    drop(target);
    assert_eq!(
        out,
        format!("inside-marker\n{}\n", theirs.display()),
        "the workload's view"
    );
    assert_eq!(joined, theirs);
    let root_s = root.display().to_string();
    assert!(
        !during.iter().any(|m| m.starts_with(&root_s)),
        "a container mount reached the host: {during:?}"
    );
    assert_eq!(
        moved.ok().as_deref(),
        Some("inside-marker\n"),
        "pivot_root moves the joined namespace's other processes into the new root"
    );

    // The supervisor's own mount namespace: by path, and through a container sharing it.
    let mut b = Container::builder("/bin/true");
    b.namespaces(Namespaces::PID)
        .host_root()
        .join_path(Namespaces::MOUNT, "/proc/self/ns/mnt");
    use_root(&mut b, &root);
    let e = b.spawn().await.unwrap_err();
    assert!(
        matches!(&e, Error::BadJoin { reason, .. } if reason.contains("the supervisor's own mount namespace")),
        "{e}"
    );
    let mut sharing = Container::builder("/bin/sleep")
        .arg("100")
        .namespaces(Namespaces::PID)
        .spawn()
        .await
        .unwrap();
    let mut b = Container::builder("/bin/true");
    b.namespaces(Namespaces::PID)
        .join(Namespaces::MOUNT, &sharing);
    use_root(&mut b, &root);
    let e = b.spawn().await.unwrap_err();
    sharing.kill().await.unwrap();
    assert!(
        matches!(&e, Error::BadJoin { reason, .. } if reason.contains("the supervisor's own mount namespace")),
        "{e}"
    );
    // Without a root filesystem, joining our own mount namespace changes nothing, and is
    // allowed (an `exec` into a container that shares it).
    let out = Container::builder("/bin/true")
        .namespaces(Namespaces::PID)
        .host_root()
        .join_path(Namespaces::MOUNT, "/proc/self/ns/mnt")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    drop(_unmount);
    assert_eq!(
        common::host_mount_points(),
        before,
        "host mount table changed"
    );
}
