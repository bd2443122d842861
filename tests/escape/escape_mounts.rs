//! The mount-side defences of issue 11: the fresh minimal `/dev` (row 1), the private
//! `/dev/shm` (row 8), the read-only `/sys` (row 2) and cgroupfs (row 4).
//!
//! Each attack runs three times, as the house rule for layered protections asks:
//!   (a) in the default container (UTS|IPC|PID|MOUNT|NET): it fails;
//!   (b) with `host_root()` and this layer's protection on: it fails;
//!   (c) with `host_root()` and this layer's protection off (`host_dev(true)`,
//!       `writable_sys(true)`): it succeeds, so the test can fail for real.
//!
//! The attacker is `tests/escape/mounts.c`, compiled once per run with the system `cc`. It
//! prints `RESULT <attempt> OK <detail>` or `RESULT <attempt> ERR <ERRNO>`. The controls
//! are harmless: device nodes are opened and closed, never written; sysfs and cgroup
//! limits get their own current value written back; a cgroup move is undone at once; the
//! POSIX shm objects are the test's own and are removed.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cellblock::{Container, ContainerBuilder, Namespaces};

/// The compiled attacker (built once per test binary).
fn attacker_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| common::compile_probe("mounts"))
}

/// The three cases of every attack.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    /// The builder's defaults.
    Defaults,
    /// `host_root()` with this layer's protection on.
    HostRootProtected,
    /// `host_root()` with this layer's protection off (the control).
    HostRootOptOut,
}

const CASES: [Case; 3] = [
    Case::Defaults,
    Case::HostRootProtected,
    Case::HostRootOptOut,
];

/// A builder running the attacker with `args` in `case`; `opt_out` switches the one
/// protection off.
fn attacker(
    args: &[&str],
    case: Case,
    opt_out: fn(&mut ContainerBuilder) -> &mut ContainerBuilder,
) -> ContainerBuilder {
    let mut b = Container::builder(attacker_bin());
    b.args(args).namespaces(common::default_ns());
    match case {
        Case::Defaults => {}
        Case::HostRootProtected => {
            b.host_root();
        }
        Case::HostRootOptOut => {
            b.host_root();
            opt_out(&mut b);
        }
    }
    b
}

async fn run(b: ContainerBuilder) -> (HashMap<String, String>, String) {
    common::probe_results(b).await
}

fn get<'a>(r: &'a HashMap<String, String>, name: &str) -> &'a str {
    common::probe_result(r, name)
}

fn host_dev(b: &mut ContainerBuilder) -> &mut ContainerBuilder {
    b.host_dev(true)
}

fn writable_sys(b: &mut ContainerBuilder) -> &mut ContainerBuilder {
    b.writable_sys(true)
}

// Row 1 -----------------------------------------------------------------------------------

/// Row 1: host device nodes. `/dev/loop0` (a block device: on an ordinary host the same
/// as `/dev/sda`) and `/dev/kmsg` opened for writing, `/dev/userfaultfd` and `/dev/kvm`
/// opened read-write. Nothing is ever written: the open itself is the escape.
#[tokio::test(flavor = "multi_thread")]
async fn row1_host_device_nodes_are_not_reachable() {
    let _d = common::deadline("row1_host_device_nodes_are_not_reachable", 90);
    let nodes = [
        ("/dev/loop0", "w", "loop0"),
        ("/dev/kmsg", "w", "kmsg"),
        ("/dev/userfaultfd", "rw", "userfaultfd"),
        ("/dev/kvm", "rw", "kvm"),
    ];
    let mut args = Vec::new();
    let mut tried = Vec::new();
    for (path, mode, name) in nodes {
        if std::fs::metadata(path).is_err() {
            println!("row 1: {path} does not exist on this host: not tried");
            continue;
        }
        args.extend(["open", path, mode, name]);
        tried.push(name);
    }
    assert!(
        tried.contains(&"loop0") && tried.contains(&"kmsg"),
        "this host lacks /dev/loop0 or /dev/kmsg: row 1 cannot be shown here"
    );
    println!("row 1: trying {tried:?}");
    for case in CASES {
        let (r, out) = run(attacker(&args, case, host_dev)).await;
        for name in &tried {
            let got = get(&r, name);
            if case == Case::HostRootOptOut {
                assert!(
                    got.starts_with("OK"),
                    "{case:?}: {name}: the control must open it: {out}"
                );
            } else {
                assert_eq!(got, "ERR ENOENT", "{case:?}: {name} must not exist: {out}");
            }
        }
    }
}

/// The fresh `/dev` holds exactly the expected entries, its nodes are the host's real
/// character devices (same major/minor), and they behave as devices: the regression test
/// for `mount_dev()` without a root filesystem, which created empty regular files (100 kB
/// to `/dev/null` failed with ENOSPC, `/dev/zero` read 0 bytes).
#[tokio::test(flavor = "multi_thread")]
async fn fresh_dev_has_exactly_the_expected_entries_and_real_nodes() {
    let _d = common::deadline("fresh_dev_has_exactly_the_expected_entries", 60);
    fresh_dev_listing(DevBuild::Template).await;
}

/// The same /dev built by the container's child itself, as for an unprivileged supervisor
/// or when a mount of the caller's lands in /dev (here a `dir`): the same entries and
/// nodes, plus that directory, on a tmpfs of the container's own (writable).
#[tokio::test(flavor = "multi_thread")]
async fn fresh_dev_built_by_the_child_has_the_same_entries() {
    let _d = common::deadline("fresh_dev_built_by_the_child_has_the_same_entries", 60);
    fresh_dev_listing(DevBuild::Child).await;
}

/// How the /dev under test is made.
#[derive(Clone, Copy, PartialEq)]
enum DevBuild {
    /// The root supervisor's read-only template, cloned (the default here).
    Template,
    /// By the child, forced by a mount of the caller's under /dev.
    Child,
}

async fn fresh_dev_listing(how: DevBuild) {
    let extra = |b: &mut ContainerBuilder| {
        if how == DevBuild::Child {
            b.dir("/dev/cellblock-extra", 0o755);
        }
    };
    let mut b = attacker(&["devlist", "devio"], Case::Defaults, host_dev);
    extra(&mut b);
    let (r, out) = run(b).await;
    let entries: BTreeMap<&str, (&str, &str)> = out
        .lines()
        .filter_map(|l| l.strip_prefix("DEV "))
        .filter_map(|l| {
            let mut f = l.splitn(3, ' ');
            Some((f.next()?, (f.next()?, f.next()?)))
        })
        .collect();
    let mut want: BTreeMap<&str, (&str, String)> = BTreeMap::new();
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let m = std::fs::metadata(Path::new("/dev").join(node)).unwrap();
        assert!(m.file_type().is_char_device());
        let rdev = m.rdev();
        want.insert(
            node,
            (
                "chr",
                format!("{:x},{:x}", libc::major(rdev), libc::minor(rdev)),
            ),
        );
    }
    for (name, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        want.insert(name, ("lnk", target.to_string()));
    }
    want.insert("pts", ("dir", "755".to_string()));
    want.insert("shm", ("dir", "1777".to_string()));
    if how == DevBuild::Child {
        want.insert("cellblock-extra", ("dir", "755".to_string()));
    }
    let got: BTreeMap<&str, (&str, String)> = entries
        .iter()
        .map(|(k, (kind, d))| (*k, (*kind, d.to_string())))
        .collect();
    assert_eq!(got, want, "the container's /dev: {out}");

    assert_eq!(get(&r, "null"), "OK 102400", "100 kB into /dev/null: {out}");
    assert_eq!(get(&r, "zero"), "OK 4096-bytes-0-nonzero", "{out}");
    assert_eq!(get(&r, "urandom"), "OK 64", "{out}");
    assert_eq!(get(&r, "full"), "ERR ENOSPC", "{out}");

    // The same with `stat -c %t,%T` (hex major,minor), as a user would check it.
    let mut b = Container::builder("/bin/sh");
    b.args([
        "-c",
        "stat -c '%n %F %t,%T' /dev/null /dev/zero /dev/urandom /dev/tty",
    ])
    .namespaces(common::default_ns());
    extra(&mut b);
    let o = b.output().await.unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    for node in ["null", "zero", "urandom", "tty"] {
        let (_, hex) = &want[node];
        let line = format!("/dev/{node} character special file {hex}");
        assert!(text.contains(&line), "want {line:?} in {text}");
    }

    // Our own mounts are nodev, except devpts (its ptys are devices) and the node binds;
    // /dev/shm is private, nosuid, nodev and noexec.
    let mut b = Container::builder("/bin/cat");
    b.arg("/proc/self/mountinfo")
        .namespaces(common::default_ns());
    extra(&mut b);
    let o = b.output().await.unwrap();
    let info = String::from_utf8_lossy(&o.stdout);
    // The options of the mount visible at `mp`: the top of the stack of mounts at `mp`
    // that sits on `under` (the mount visible at the parent directory), or on anything for
    // /dev itself. mountinfo's order is not the stacking order: a tree attached with
    // move_mount is listed before the host's mount it covers, and the host's own /dev/shm
    // is still there, under our /dev.
    let mounts: Vec<Vec<&str>> = info
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .filter(|f| f.len() > 5)
        .collect();
    let visible = |mp: &str, under: Option<&str>| -> Option<(String, String)> {
        let at: Vec<&Vec<&str>> = mounts.iter().filter(|f| f[4] == mp).collect();
        let mut m = *at
            .iter()
            .find(|f| under.map_or(!at.iter().any(|o| o[0] == f[1]), |u| f[1] == u))?;
        while let Some(up) = at.iter().find(|o| o[1] == m[0]) {
            m = up;
        }
        Some((m[0].to_string(), m[5].to_string()))
    };
    let (dev_id, dev_opts) = visible("/dev", None).expect("a mount at /dev");
    let top_opts = |mp: &str| visible(mp, Some(&dev_id)).map(|(_, o)| o);
    let top = dev_opts;
    for flag in ["nosuid", "nodev", "noexec"] {
        assert!(top.split(',').any(|f| f == flag), "/dev {top} lacks {flag}");
    }
    // The template is shared by every container of the process: read-only. The child's
    // own tmpfs is the container's alone: writable.
    let want = if how == DevBuild::Template {
        "ro"
    } else {
        "rw"
    };
    assert_eq!(top.split(',').next(), Some(want), "/dev {top}");
    let top = top_opts("/dev/shm").expect("a mount at /dev/shm");
    for flag in ["nosuid", "nodev", "noexec"] {
        assert!(
            top.split(',').any(|f| f == flag),
            "/dev/shm {top} lacks {flag}"
        );
    }
    assert!(top_opts("/dev/pts").is_some(), "{info}");
}

/// The /dev template is one tmpfs shared by every container of the supervisor, so a
/// container that could write it would reach the others' /dev. The attacker is host uid 0
/// (`host_root()`), which owns the template's root directory: creating a file there fails
/// (EROFS), and another container sees nothing. The control: a /dev built by the child (a
/// mount of the caller's under /dev forces it) is the container's own tmpfs, where the
/// same write works and still stays out of the other container's sight.
#[tokio::test(flavor = "multi_thread")]
async fn shared_dev_template_cannot_be_written() {
    let _d = common::deadline("shared_dev_template_cannot_be_written", 60);
    let name = format!("cellblock-shared-{}", std::process::id());
    let attempt = |child_built: bool| {
        let mut b = Container::builder("/bin/sh");
        b.args(["-c", &format!("touch /dev/{name} 2>&1; echo rc=$?")])
            .namespaces(common::default_ns())
            .host_root();
        if child_built {
            b.dir("/dev/cellblock-extra", 0o755);
        }
        b
    };
    let mut other = Container::builder("/bin/sh");
    other
        .args(["-c", "read x; ls -a /dev"])
        .namespaces(common::default_ns())
        .stdin(cellblock::Stdio::piped())
        .stdout(cellblock::Stdio::piped());
    for child_built in [false, true] {
        // The other container is up (its /dev attached) before the write and looks after.
        let mut c = other.spawn().await.unwrap();
        let o = attempt(child_built).output().await.unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        if child_built {
            assert!(text.contains("rc=0"), "the control's write failed: {text}");
        } else {
            assert!(
                text.contains("Read-only file system") && text.contains("rc=1"),
                "{text}"
            );
        }
        drop(c.take_stdin());
        let out = c.wait_with_output().await.unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.contains("null"), "{listing}");
        assert!(!listing.contains(&name), "{listing}");
    }
}

/// The same /dev in a user namespace (the default identity to come), where `mknod` is
/// refused and the host's nodes must be bound: the nodes still work, and so does a pty
/// made in the container's own devpts instance.
#[tokio::test(flavor = "multi_thread")]
async fn fresh_dev_and_pty_work_in_a_user_namespace() {
    use futures::StreamExt;
    let _d = common::deadline("fresh_dev_and_pty_work_in_a_user_namespace", 60);
    let mut b = Container::builder(attacker_bin());
    b.args(["devio"])
        .namespaces(common::default_ns() | Namespaces::USER);
    let (r, out) = run(b).await;
    assert_eq!(get(&r, "null"), "OK 102400", "{out}");
    assert_eq!(get(&r, "zero"), "OK 4096-bytes-0-nonzero", "{out}");
    assert_eq!(get(&r, "urandom"), "OK 64", "{out}");
    let mut c = Container::builder("/bin/sh")
        .args(["-c", "tty; echo DONE"])
        .namespaces(common::default_ns() | Namespaces::USER)
        .pty()
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let pty = c.take_pty().unwrap().unwrap();
    let mut out = pty.map(|b| String::from_utf8_lossy(&b.unwrap_or_default()).into_owned());
    let mut acc = String::new();
    while !acc.contains("DONE") {
        match tokio::time::timeout(Duration::from_secs(10), out.next()).await {
            Ok(Some(s)) => acc.push_str(&s),
            _ => break,
        }
    }
    assert!(c.wait().await.unwrap().success(), "{acc}");
    assert!(acc.starts_with("/dev/pts/"), "{acc:?}");
}

/// Without the default, the host's /dev is what the container sees (the control of the
/// listing above), and without a mount namespace nothing can change it.
#[tokio::test(flavor = "multi_thread")]
async fn host_dev_and_no_mount_namespace_show_the_hosts_dev() {
    let _d = common::deadline("host_dev_and_no_mount_namespace_show_the_hosts_dev", 60);
    let host_has = |name: &str| Path::new("/dev").join(name).exists();
    assert!(host_has("loop0"));
    let (_, out) = run(attacker(&["devlist"], Case::HostRootOptOut, host_dev)).await;
    assert!(out.contains("DEV loop0 blk"), "{out}");
    let mut b = Container::builder(attacker_bin());
    b.arg("devlist")
        .namespaces(Namespaces::UTS | Namespaces::PID);
    let (_, out) = run(b).await;
    assert!(out.contains("DEV loop0 blk"), "{out}");
}

// Row 8 -----------------------------------------------------------------------------------

/// Removes the named files of /dev/shm when dropped.
struct ShmFiles(Vec<PathBuf>);

impl Drop for ShmFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Row 8: the host's POSIX shm (`/dev/shm`): a 0600 segment the test made is invisible,
/// and a 1 MiB segment the container leaves does not outlive it.
#[tokio::test(flavor = "multi_thread")]
async fn row8_host_posix_shm_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let _d = common::deadline("row8_host_posix_shm_is_private", 90);
    let pid = std::process::id();
    let secret_name = format!("cellblock-test-secret-{pid}");
    let secret = Path::new("/dev/shm").join(&secret_name);
    let mut files = ShmFiles(vec![secret.clone()]);
    let flag = format!("host-shm-{pid}");
    std::fs::write(&secret, &flag).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    for case in CASES {
        let left_name = format!("cellblock-test-left-{pid}-{case:?}");
        let left = Path::new("/dev/shm").join(&left_name);
        files.0.push(left.clone());
        let (r, out) = run(attacker(
            &[
                "shmread",
                &format!("/{secret_name}"),
                "shmleave",
                &format!("/{left_name}"),
            ],
            case,
            host_dev,
        ))
        .await;
        // Leaving works in every case (the container has a /dev/shm); where it lands is
        // the point.
        assert!(get(&r, "shmleave").starts_with("OK"), "{case:?}: {out}");
        if case == Case::HostRootOptOut {
            assert_eq!(get(&r, "shmread"), format!("OK {flag}"), "{case:?}: {out}");
            let m = std::fs::metadata(&left).expect("the control leaves its segment on the host");
            assert_eq!(m.len(), 1 << 20);
        } else {
            assert_eq!(get(&r, "shmread"), "ERR ENOENT", "{case:?}: {out}");
            assert!(
                !left.exists(),
                "{case:?}: the segment outlived the container"
            );
        }
        let _ = std::fs::remove_file(&left);
    }
    drop(files);
    assert!(!secret.exists());
}

// Row 2 -----------------------------------------------------------------------------------

/// The sysfs attribute the control writes back: `rcu_expedited`, or THP's mode.
fn sysfs_attribute() -> &'static str {
    [
        "/sys/kernel/rcu_expedited",
        "/sys/kernel/mm/transparent_hugepage/enabled",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("neither /sys/kernel/rcu_expedited nor THP's enabled exists: row 2 cannot be shown")
}

/// Row 2: writing a root-owned sysfs attribute (its own current value, so the control
/// changes nothing), and every mount under /sys read-only (cgroupfs, /sys/kernel/*).
#[tokio::test(flavor = "multi_thread")]
async fn row2_sysfs_is_read_only() {
    let _d = common::deadline("row2_sysfs_is_read_only", 90);
    let attr = sysfs_attribute();
    let before = std::fs::read_to_string(attr).unwrap();
    for case in CASES {
        let (r, out) = run(attacker(&["sysfs", attr], case, writable_sys)).await;
        match case {
            Case::HostRootOptOut => assert!(get(&r, "sysfs").starts_with("OK"), "{case:?}: {out}"),
            Case::HostRootProtected => assert_eq!(get(&r, "sysfs"), "ERR EROFS", "{case:?}: {out}"),
            // Once the default identity is not host uid 0, the owner check (EACCES) comes
            // before the read-only mount (EROFS): either layer stops it.
            Case::Defaults => assert!(
                matches!(get(&r, "sysfs"), "ERR EROFS" | "ERR EACCES"),
                "{case:?}: {out}"
            ),
        }
    }
    // A bind the user adds under /sys keeps its own (writable) flags: the way to hand one
    // attribute or a delegated cgroup to a trusted workload without writable_sys(true).
    let mut b = attacker(&["sysfs", attr], Case::HostRootProtected, writable_sys);
    b.bind(attr, attr);
    let (r, out) = run(b).await;
    assert!(
        get(&r, "sysfs").starts_with("OK"),
        "the bound attribute is writable: {out}"
    );
    assert_eq!(
        std::fs::read_to_string(attr).unwrap(),
        before,
        "the host is unchanged"
    );

    // Recursively: every mount at or under /sys is read-only inside (the host has
    // cgroup mounts there), and none is on the host.
    let mut b = Container::builder("/bin/cat");
    b.arg("/proc/self/mountinfo")
        .namespaces(common::default_ns());
    let o = b.output().await.unwrap();
    let info = String::from_utf8_lossy(&o.stdout);
    let sys: Vec<(&str, &str)> = info
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 5 && (f[4] == "/sys" || f[4].starts_with("/sys/"))).then(|| (f[4], f[5]))
        })
        .collect();
    assert!(sys.len() > 1, "the host has mounts under /sys: {sys:?}");
    for (mp, opts) in &sys {
        assert!(opts.split(',').any(|o| o == "ro"), "{mp} is {opts} inside");
    }
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        host.lines().any(|l| l.split(' ').nth(4) == Some("/sys")
            && l.split(' ').nth(5).unwrap().starts_with("rw")),
        "the host's /sys stays writable"
    );
}

// Row 4 -----------------------------------------------------------------------------------

/// Row 4: cgroupfs. In a container with a 64 MiB memory limit, move itself into the
/// parent cgroup (`0` into its `cgroup.procs`; the control moves straight back) and
/// write its own memory limit (the current value, so the control changes nothing).
#[tokio::test(flavor = "multi_thread")]
async fn row4_cgroupfs_is_not_writable() {
    if common::ran_alone(module_path!(), "row4_cgroupfs_is_not_writable") {
        return;
    }
    let _d = common::deadline("row4_cgroupfs_is_not_writable", 90);
    let before = common::our_cgroup_dirs();
    for case in CASES {
        let mut b = attacker(&["cgroup"], case, writable_sys);
        b.memory_limit(64 << 20);
        let (r, out) = run(b).await;
        assert!(
            out.contains("/cellblock/"),
            "{case:?}: the attacker runs in a cgroup of its own: {out}"
        );
        match case {
            Case::HostRootOptOut => {
                assert_eq!(get(&r, "cgmove"), "OK moved-and-back", "{case:?}: {out}");
                assert_eq!(
                    get(&r, "cglimit"),
                    format!("OK {}", 64 << 20),
                    "{case:?}: {out}"
                );
            }
            Case::HostRootProtected => {
                assert_eq!(get(&r, "cgmove"), "ERR EROFS", "{case:?}: {out}");
                assert_eq!(get(&r, "cglimit"), "ERR EROFS", "{case:?}: {out}");
            }
            // As in row 2: EACCES once the default identity is not host uid 0.
            Case::Defaults => {
                for what in ["cgmove", "cglimit"] {
                    assert!(
                        matches!(get(&r, what), "ERR EROFS" | "ERR EACCES"),
                        "{case:?}: {what}: {out}"
                    );
                }
            }
        }
    }
    // Nothing left behind: the containers' cgroups are gone again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = common::our_cgroup_dirs();
        if now.len() <= before.len() || Instant::now() > deadline {
            assert!(
                now.len() <= before.len(),
                "cgroups left: {now:?} (before {before:?})"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// Unaffected and still working ------------------------------------------------------------

/// A container with a root filesystem gets none of the defaults above: its /dev and /sys
/// are what its configuration puts there.
#[tokio::test(flavor = "multi_thread")]
async fn rootfs_container_is_unaffected() {
    let _d = common::deadline("rootfs_container_is_unaffected", 60);
    let t = common::rootfs::TempDir::new("escape-mounts");
    let root = common::rootfs::make_root(t.path());
    std::fs::write(root.join("dev/marker"), "from the rootfs").unwrap();
    let mut b = Container::builder("/bin/sh");
    b.args(["-c", "ls -A /dev | tr '\\n' ' '; echo; echo sys: $(cut -d' ' -f5 /proc/self/mountinfo | grep ^/sys)"])
        .namespaces(common::default_ns());
    common::rootfs::use_root(&mut b, &root);
    let o = b.output().await.unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("marker "),
        "/dev is the rootfs's own: {text}"
    );
    assert_eq!(lines.next(), Some("sys:"), "no /sys mounts: {text}");
}

/// The container's terminal keeps working in the fresh /dev: it is the controlling tty,
/// `/dev/tty` reaches it, and `tty` names it under the container's own `/dev/pts`.
#[tokio::test(flavor = "multi_thread")]
async fn pty_works_in_the_fresh_dev() {
    use futures::StreamExt;
    let _d = common::deadline("pty_works_in_the_fresh_dev", 60);
    let mut c = Container::builder("/bin/sh")
        .args([
            "-c",
            "tty; echo via-dev-tty > /dev/tty; ls /dev/pts | tr '\\n' ' '; echo; echo DONE",
        ])
        .namespaces(common::default_ns())
        .pty()
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let pty = c.take_pty().unwrap().unwrap();
    let mut out = pty.map(|b| String::from_utf8_lossy(&b.unwrap_or_default()).into_owned());
    let mut acc = String::new();
    while !acc.contains("DONE") {
        match tokio::time::timeout(Duration::from_secs(10), out.next()).await {
            Ok(Some(s)) => acc.push_str(&s),
            _ => break,
        }
    }
    let status = c.wait().await.unwrap();
    assert!(status.success(), "{acc}");
    let lines: Vec<&str> = acc.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(lines[0].starts_with("/dev/pts/"), "{lines:?}");
    assert_eq!(lines[1], "via-dev-tty", "{lines:?}");
    // The container's devpts instance holds its own terminal and ptmx, nothing of the host.
    let pts: Vec<&str> = lines[2].split_whitespace().collect();
    assert!(pts.contains(&"ptmx"), "{lines:?}");
    assert!(pts.len() <= 2, "only the container's own pty: {lines:?}");
}

// Cost ------------------------------------------------------------------------------------

/// Not a check: the A/B figures of the fresh /dev and read-only /sys for the report.
/// `cargo test --release --test escape_mounts -- --ignored --nocapture spawn_cost`
/// The configurations alternate spawn by spawn (so drift in the machine's load hits all
/// alike); 200 spawns of `/bin/true` each, UTS|IPC|PID|MOUNT.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn spawn_cost_of_the_defaults() {
    let ns = Namespaces::UTS | Namespaces::IPC | Namespaces::PID | Namespaces::MOUNT;
    // (name, host_dev, writable_sys, host_root, default_budget)
    let configs = [
        (
            "defaults (identity, /dev, ro /sys, budget)",
            false,
            false,
            false,
            true,
        ),
        ("host_dev(true)", true, false, false, true),
        ("writable_sys(true)", false, true, false, true),
        ("host_root()", false, false, true, true),
        ("default_budget(false)", false, false, false, false),
        (
            "all four off (the defaults before #11)",
            true,
            true,
            true,
            false,
        ),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    // CPU time (user + system) of the reaped containers: far steadier than wall time on a
    // loaded machine, and it includes the child's setup and its mount namespace teardown.
    // And the supervisor's own CPU time (the maps and cgroups are written from there).
    let mut cpu = vec![0.0f64; configs.len()];
    let mut own = vec![0.0f64; configs.len()];
    let usage = |who: libc::c_int| {
        // SAFETY: getrusage into a zeroed struct on our stack.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut ru) };
        let tv = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    };
    for i in 0..(200 + 20) {
        for (k, &(_, dev_off, sys_off, host_root, budget)) in configs.iter().enumerate() {
            let c0 = usage(libc::RUSAGE_CHILDREN);
            let s0 = usage(libc::RUSAGE_SELF);
            let t = Instant::now();
            let mut b = Container::builder("/bin/true");
            b.namespaces(ns)
                .host_dev(dev_off)
                .writable_sys(sys_off)
                .default_budget(budget);
            if host_root {
                b.host_root();
            }
            let st = b.status().await.unwrap();
            assert!(st.success());
            if i >= 20 {
                samples[k].push(t.elapsed().as_secs_f64() * 1000.0);
                cpu[k] += usage(libc::RUSAGE_CHILDREN) - c0;
                own[k] += usage(libc::RUSAGE_SELF) - s0;
            }
        }
    }
    for (k, (name, ..)) in configs.iter().enumerate() {
        let v = &mut samples[k];
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "{name:>44}: median {:.3} ms, mean {mean:.3} ms, p10 {:.3}, p90 {:.3}, container CPU {:.3} ms, supervisor CPU {:.3} ms ({} spawns)",
            v[v.len() / 2],
            v[v.len() / 10],
            v[v.len() * 9 / 10],
            cpu[k] / v.len() as f64,
            own[k] / v.len() as f64,
            v.len()
        );
    }
}
