//! The file system plan without root and without the host: the decisions (`wanted`), the
//! mount model, and the compiler's steps against a host described by a table.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::compile::{compile, Compiled, Input};
use super::host::{Host, Kind};
use super::model::{container_path, Layer, Model};
use super::{wanted, Wanted};
use crate::builder::fs::{DataSource, MountOp, MAX_TMPFS_SIZE};
use crate::child::fs::{MountStep, Op};
use crate::error::{Error, Stage};
use crate::plan::Ctx;
use crate::{Container, ContainerBuilder, Namespaces};

/// A host file system given as a table: directories, files and symlinks.
#[derive(Default)]
struct FakeHost {
    entries: HashMap<PathBuf, Entry>,
}

enum Entry {
    Dir,
    File,
    Link(PathBuf),
}

impl FakeHost {
    fn new(dirs: &[&str], files: &[&str], links: &[(&str, &str)]) -> FakeHost {
        let mut entries = HashMap::new();
        entries.insert(PathBuf::from("/"), Entry::Dir);
        for d in dirs {
            entries.insert(PathBuf::from(d), Entry::Dir);
        }
        for f in files {
            entries.insert(PathBuf::from(f), Entry::File);
        }
        for (at, target) in links {
            entries.insert(PathBuf::from(at), Entry::Link(PathBuf::from(target)));
        }
        FakeHost { entries }
    }
}

fn not_found() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOENT)
}

impl Host for FakeHost {
    fn kind(&self, path: &Path) -> io::Result<Kind> {
        match self.entries.get(&self.canonicalize(path)?) {
            Some(Entry::Dir) => Ok(Kind::Dir),
            Some(Entry::File) => Ok(Kind::File),
            _ => Err(not_found()),
        }
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        match self.entries.get(path) {
            Some(Entry::Link(t)) => Ok(t.clone()),
            _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let mut out = PathBuf::from("/");
        let mut rest: Vec<PathBuf> = path
            .components()
            .rev()
            .map(|c| PathBuf::from(c.as_os_str()))
            .collect();
        let mut hops = 0;
        while let Some(c) = rest.pop() {
            match c.components().next() {
                Some(Component::RootDir) | Some(Component::CurDir) | None => continue,
                Some(Component::ParentDir) => {
                    out.pop();
                    continue;
                }
                _ => {}
            }
            let next = out.join(&c);
            match self.entries.get(&next) {
                Some(Entry::Link(t)) => {
                    hops += 1;
                    if hops > 40 {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    if t.is_absolute() {
                        out = PathBuf::from("/");
                    }
                    rest.extend(t.components().rev().map(|c| PathBuf::from(c.as_os_str())));
                }
                Some(_) => out = next,
                None => return Err(not_found()),
            }
        }
        Ok(out)
    }

    fn current_dir(&self) -> io::Result<PathBuf> {
        Ok(PathBuf::from("/work"))
    }

    fn data(&self, source: &DataSource, _dst: &Path) -> crate::Result<Arc<[u8]>> {
        match source {
            DataSource::Bytes(b) => Ok(b.clone()),
            DataSource::Fd(_) => panic!("no descriptors in these tests"),
        }
    }

    fn fd_path(&self, _fd: &OwnedFd) -> io::Result<PathBuf> {
        Err(io::Error::from_raw_os_error(libc::EBADF))
    }

    fn dup_above(&self, _fd: &OwnedFd, _min: libc::c_int) -> io::Result<OwnedFd> {
        Err(io::Error::from_raw_os_error(libc::EBADF))
    }
}

/// A host with /dev nodes, /sys, /usr/bin and a root filesystem at /srv/root.
fn host() -> FakeHost {
    FakeHost::new(
        &[
            "/dev",
            "/sys",
            "/proc",
            "/tmp",
            "/mnt",
            "/usr",
            "/usr/bin",
            "/etc",
            "/srv",
            "/srv/root",
            "/srv/root/usr",
            "/srv/root/proc",
            "/srv/root/tmp",
            "/srv/root/etc",
            "/srv/data",
        ],
        &[
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/random",
            "/dev/urandom",
            "/dev/tty",
            "/usr/bin/sh",
            "/etc/hosts",
            "/srv/root/etc/hosts",
        ],
        &[("/srv/root/bin", "usr/bin"), ("/srv/root/escape", "/etc")],
    )
}

fn builder(ns: Namespaces) -> ContainerBuilder {
    let mut b = Container::builder("/bin/true");
    b.namespaces(ns);
    b
}

fn input(root: Option<&str>) -> Input {
    Input {
        root: root.map(PathBuf::from),
        readonly_sys: false,
        fresh_dev: false,
        root_proc: false,
        devpts: None,
        dev_tree: None,
        min_fd: 3,
    }
}

fn compile_b(b: &ContainerBuilder, input: Input) -> crate::Result<Compiled> {
    compile(&b.fs.ops, input, &host())
}

fn c(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).unwrap()
}

fn step(op: Op, stage: Stage) -> MountStep {
    MountStep { op, stage }
}

fn bad_mount(r: crate::Result<Compiled>) -> (&'static str, PathBuf, String) {
    match r {
        Err(Error::BadMount { what, path, reason }) => (what, path, reason),
        Err(e) => panic!("expected BadMount, got {e:?}"),
        Ok(out) => panic!("expected BadMount, got steps {:?}", out.steps),
    }
}

// ---- paths

#[test]
fn container_paths_are_absolute_and_normalised() {
    let p = container_path(Path::new("/a/./b//c/"), "x").unwrap();
    assert_eq!(p, Path::new("/a/b/c"));
    let err = container_path(Path::new("a/b"), "bind destination").unwrap_err();
    assert!(
        matches!(&err, Error::BadMount { what: "bind destination", reason, .. } if reason.contains("absolute")),
        "{err:?}"
    );
    let err = container_path(Path::new("/a/../etc"), "tmpfs destination").unwrap_err();
    assert!(
        matches!(&err, Error::BadMount { reason, .. } if reason.contains("'..'")),
        "{err:?}"
    );
}

// ---- the model

#[test]
fn the_deepest_and_then_latest_mount_covers_a_path() {
    let mut m = Model::new(Some(PathBuf::from("/srv/root")));
    assert_eq!(
        m.view(Path::new("/etc/hosts")),
        Layer::Host("/srv/root/etc/hosts".into())
    );
    m.push("/usr".into(), Layer::Host("/usr".into()));
    m.push("/usr/lib".into(), Layer::Fresh);
    assert_eq!(
        m.view(Path::new("/usr/bin/sh")),
        Layer::Host("/usr/bin/sh".into())
    );
    assert_eq!(m.view(Path::new("/usr")), Layer::Host("/usr".into()));
    assert_eq!(m.view(Path::new("/usr/lib/x")), Layer::Fresh);
    // A later mount on the same path hides the earlier one; a shallower one does not hide
    // a deeper one made before it.
    m.push("/usr".into(), Layer::Kernel);
    assert_eq!(m.view(Path::new("/usr/bin")), Layer::Kernel);
    assert_eq!(m.view(Path::new("/usr/lib/x")), Layer::Fresh);
    assert_eq!(
        m.host_base(Path::new("/etc/x")),
        Some(Path::new("/srv/root"))
    );
    assert_eq!(m.host_base(Path::new("/usr/bin")), None);
    assert_eq!(
        m.pre_pivot(Path::new("/tmp/x")),
        Path::new("/srv/root/tmp/x")
    );
}

#[test]
fn links_of_ours_are_resolved_and_hidden_by_later_mounts() {
    let mut m = Model::new(None);
    m.push("/tmp".into(), Layer::Fresh);
    m.link("/tmp/l".into(), "d/e".into());
    m.link("/tmp/abs".into(), "/run".into());
    assert_eq!(
        m.resolve_ours(Path::new("/tmp/l/x")).unwrap(),
        Path::new("/tmp/d/e/x")
    );
    assert_eq!(
        m.resolve_ours(Path::new("/tmp/abs/y")).unwrap(),
        Path::new("/run/y")
    );
    assert!(m.made_here(Path::new("/tmp/l")));
    m.link("/tmp/a".into(), "b".into());
    m.link("/tmp/b".into(), "a".into());
    assert_eq!(m.resolve_ours(Path::new("/tmp/a/x")), None, "a loop");
    // A mount over /tmp hides the links made in the tmpfs below it.
    m.push("/tmp".into(), Layer::Fresh);
    assert_eq!(
        m.resolve_ours(Path::new("/tmp/l/x")).unwrap(),
        Path::new("/tmp/l/x")
    );
    assert!(!m.made_here(Path::new("/tmp/l")));
}

#[test]
fn lookups_follow_the_hosts_links_inside_the_container() {
    let mut m = Model::new(Some(PathBuf::from("/srv/root")));
    m.push("/usr".into(), Layer::Host("/usr".into()));
    // /bin -> usr/bin in the root filesystem, then the /usr bind.
    assert_eq!(
        m.resolve(Path::new("/bin/sh"), &host()),
        Layer::Host("/usr/bin/sh".into())
    );
    // An absolute link is taken from the container's root, not the host's.
    assert_eq!(
        m.resolve(Path::new("/escape/hosts"), &host()),
        Layer::Host("/srv/root/etc/hosts".into())
    );
}

// ---- what the configuration asks for

#[test]
fn mounts_need_a_mount_namespace_and_mqueue_an_ipc_one() {
    let mut b = builder(Namespaces::PID);
    b.tmpfs("/tmp");
    let err = wanted(&b.fs, &Ctx::new(&b)).unwrap_err();
    assert!(
        matches!(err, Error::NeedsNamespace { option: "mounts (bind, tmpfs, mount_*)", needs } if needs == Namespaces::MOUNT)
    );
    b.rootfs("/srv/root");
    let err = wanted(&b.fs, &Ctx::new(&b)).unwrap_err();
    assert!(matches!(
        err,
        Error::NeedsNamespace {
            option: "rootfs/chroot",
            ..
        }
    ));
    let mut b = builder(Namespaces::MOUNT);
    b.mount_mqueue();
    let err = wanted(&b.fs, &Ctx::new(&b)).unwrap_err();
    assert!(
        matches!(err, Error::NeedsNamespace { option: "mount_mqueue", needs } if needs == Namespaces::IPC)
    );
    // A joined IPC namespace is one to mount mqueue in.
    b.join_path(Namespaces::IPC, "/proc/1/ns/ipc");
    assert!(wanted(&b.fs, &Ctx::new(&b)).is_ok());
    // A joined mount namespace takes a root filesystem (set up there, as runc does), but
    // no mounts without one (they would land among its owner's).
    let mut b = builder(Namespaces::PID);
    b.join_path(Namespaces::MOUNT, "/proc/1/ns/mnt")
        .tmpfs("/tmp");
    let err = wanted(&b.fs, &Ctx::new(&b)).unwrap_err();
    assert!(
        matches!(err, Error::NeedsNamespace { option: "mounts (bind, tmpfs, mount_*)", needs } if needs == Namespaces::MOUNT)
    );
    b.rootfs("/srv/root");
    assert!(wanted(&b.fs, &Ctx::new(&b)).is_ok());
    let mut b = builder(Namespaces::MOUNT);
    b.readonly_root(true);
    assert!(matches!(
        wanted(&b.fs, &Ctx::new(&b)),
        Err(Error::BadConfig(_))
    ));
}

#[test]
fn the_defaults_apply_only_to_a_mount_namespace_of_our_own_without_a_root() {
    let b = builder(Namespaces::MOUNT | Namespaces::PID);
    let w = wanted(&b.fs, &Ctx::new(&b)).unwrap();
    assert_eq!(
        w,
        Wanted {
            fresh_dev: true,
            readonly_sys: true,
            builds_dev: true,
            dev_template: true,
            root_proc: false,
            mounts_proc: false,
        }
    );
    // No mount namespace: nothing at all.
    let b = builder(Namespaces::PID);
    let w = wanted(&b.fs, &Ctx::new(&b)).unwrap();
    assert!(!w.fresh_dev && !w.readonly_sys && !w.builds_dev);
    // A root filesystem: its /dev and /sys are the caller's; /proc is mounted inside it.
    let mut b = builder(Namespaces::MOUNT | Namespaces::PID);
    b.rootfs("/srv/root");
    let w = wanted(&b.fs, &Ctx::new(&b)).unwrap();
    assert!(!w.fresh_dev && !w.readonly_sys && w.root_proc && w.mounts_proc);
    // A joined mount namespace is another container's.
    let mut b = builder(Namespaces::MOUNT);
    b.join_path(Namespaces::MOUNT, "/proc/1/ns/mnt");
    let w = wanted(&b.fs, &Ctx::new(&b)).unwrap();
    assert!(!w.fresh_dev && !w.readonly_sys);
    // The opt-outs.
    let mut b = builder(Namespaces::MOUNT);
    b.host_dev(true).writable_sys(true);
    let w = wanted(&b.fs, &Ctx::new(&b)).unwrap();
    assert!(!w.fresh_dev && !w.readonly_sys && !w.builds_dev);
    // A mount of the caller's under /dev: the /dev must be writable, not the template.
    let mut b = builder(Namespaces::MOUNT);
    b.bind("/dev/fuse", "/dev/fuse");
    let w = wanted(&b.fs, &Ctx::new(&b)).unwrap();
    assert!(w.fresh_dev && !w.dev_template);
    // An explicit /proc is the caller's.
    let mut b = builder(Namespaces::MOUNT | Namespaces::PID);
    b.mount_proc();
    assert!(wanted(&b.fs, &Ctx::new(&b)).unwrap().mounts_proc);
}

// ---- the compiler

/// Every grab runs before every other step, and each place attaches a slot grabbed (or
/// filled by the parent) before it.
fn assert_grabs_first(out: &Compiled) {
    let first_other = out
        .steps
        .iter()
        .position(|s| !matches!(s.op, Op::Grab { .. } | Op::SameFile { .. }))
        .unwrap_or(out.steps.len());
    let mut filled: Vec<usize> = out.prefilled.iter().map(|(s, _)| *s).collect();
    for (i, s) in out.steps.iter().enumerate() {
        match &s.op {
            Op::Grab { slot, .. } => {
                assert!(i < first_other, "grab after other steps: {:?}", out.steps);
                filled.push(*slot);
            }
            Op::Place { slot, .. } => {
                assert!(*slot < out.slots);
                assert!(
                    filled.contains(slot),
                    "slot {slot} placed before it is filled"
                );
            }
            _ => {}
        }
    }
}

#[test]
fn the_default_dev_and_sys_built_by_the_child() {
    let b = builder(Namespaces::MOUNT);
    let mut i = input(None);
    i.readonly_sys = true;
    i.fresh_dev = true;
    let out = compile_b(&b, i).unwrap();
    assert_grabs_first(&out);
    let grabs: Vec<_> = out
        .steps
        .iter()
        .filter_map(|s| match &s.op {
            Op::Grab { src, recursive, .. } => Some((src.clone(), *recursive)),
            _ => None,
        })
        .collect();
    assert_eq!(
        grabs,
        ["null", "zero", "full", "random", "urandom", "tty"]
            .map(|n| (c(&format!("/dev/{n}")), false))
    );
    // Mount points in our tmpfs (Mkdir, an existing one is fine) left out.
    let others: Vec<&MountStep> = out
        .steps
        .iter()
        .skip(grabs.len())
        .filter(|s| !matches!(s.op, Op::Mkdir { .. }))
        .collect();
    // /sys read-only first, then the /dev tmpfs (nosuid, nodev, noexec) over the host's.
    assert_eq!(
        *others[0],
        step(
            Op::ReadOnly {
                path: c("/sys"),
                recursive: true
            },
            Stage::MakeReadOnly
        )
    );
    assert_eq!(
        *others[1],
        step(
            Op::Mount {
                src: c("tmpfs"),
                path: c("/dev"),
                fstype: c("tmpfs"),
                flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                data: Some(c("mode=755,size=65536")),
                fallback_bind: None,
            },
            Stage::MountDev
        )
    );
    // The mount point of /dev exists on the host: nothing is created there. Each node: an
    // empty file in our tmpfs, then the host's node placed on it.
    assert_eq!(
        others[2].op,
        Op::Touch {
            path: c("/dev/null")
        }
    );
    assert!(matches!(&others[3].op, Op::Place { path, .. } if path.as_c_str() == c"/dev/null"));
    // A new devpts instance, the links, a private /dev/shm.
    assert!(out.steps.iter().any(|s| matches!(&s.op,
        Op::Mount { fstype, data: Some(d), .. }
            if fstype.as_c_str() == c"devpts" && d.as_c_str() == c"newinstance,ptmxmode=0666,mode=0620")));
    assert!(out.steps.iter().any(|s| s.op
        == Op::Symlink {
            target: c("pts/ptmx"),
            path: c("/dev/ptmx")
        }));
    assert!(matches!(&out.steps.last().unwrap().op,
        Op::Mount { src, path, fstype, data: Some(d), .. } if path.as_c_str() == c"/dev/shm"
            && src.as_c_str() == c"shm" && fstype.as_c_str() == c"tmpfs"
            && d.as_c_str() == c"mode=1777"));
    assert!(!out.devpts_used);
    assert!(out.prefilled.is_empty());
}

#[test]
fn the_dev_template_and_the_parents_devpts_are_placed_from_prefilled_slots() {
    let b = builder(Namespaces::MOUNT);
    let mut i = input(None);
    i.fresh_dev = true;
    i.dev_tree = Some(41);
    i.devpts = Some(42);
    let out = compile_b(&b, i).unwrap();
    assert_grabs_first(&out);
    assert_eq!(out.prefilled, [(0, 41), (1, 42)]);
    assert!(out.devpts_used);
    let places: Vec<_> = out
        .steps
        .iter()
        .filter_map(|s| match &s.op {
            Op::Place { path, slot } => Some((path.clone(), *slot)),
            _ => None,
        })
        .collect();
    assert_eq!(places, [(c("/dev"), 0), (c("/dev/pts"), 1)]);
    // Nothing is built in the read-only template: no grabs, links or mount points.
    assert!(!out.steps.iter().any(|s| matches!(
        s.op,
        Op::Grab { .. } | Op::Symlink { .. } | Op::Touch { .. }
    )));
    // And nothing can be mounted inside it afterwards.
    assert_eq!(out.model.view(Path::new("/dev/x")), Layer::Kernel);
}

#[test]
fn a_read_only_bind_into_a_root_filesystem() {
    let mut b = builder(Namespaces::MOUNT | Namespaces::PID);
    b.rootfs("/srv/root")
        .bind_ro("/usr", "/usr")
        .tmpfs_with("/tmp", 4096, 0o1777);
    let mut i = input(Some("/srv/root"));
    i.root_proc = true;
    let out = compile_b(&b, i).unwrap();
    assert_grabs_first(&out);
    assert_eq!(
        out.steps,
        [
            step(
                Op::Grab {
                    src: c("/usr"),
                    recursive: true,
                    slot: 0
                },
                Stage::MountBind
            ),
            step(
                Op::Mount {
                    src: c("proc"),
                    path: c("/srv/root/proc"),
                    fstype: c("proc"),
                    flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    data: None,
                    fallback_bind: None,
                },
                Stage::MountProc
            ),
            step(
                Op::Place {
                    path: c("/srv/root/usr"),
                    slot: 0
                },
                Stage::MountBind
            ),
            step(
                Op::ReadOnly {
                    path: c("/srv/root/usr"),
                    recursive: true
                },
                Stage::MakeReadOnly
            ),
            step(
                Op::Mount {
                    src: c("tmpfs"),
                    path: c("/srv/root/tmp"),
                    fstype: c("tmpfs"),
                    flags: libc::MS_NOSUID | libc::MS_NODEV,
                    data: Some(c("mode=1777,size=4096")),
                    fallback_bind: None,
                },
                Stage::MountTmpfs
            ),
        ]
    );
    assert_eq!(out.slots, 1);
    // The finished model is the one the program is looked up in.
    assert_eq!(
        out.model.resolve(Path::new("/bin/sh"), &host()),
        Layer::Host("/usr/bin/sh".into())
    );
    assert_eq!(out.model.view(Path::new("/proc/1")), Layer::Kernel);
}

#[test]
fn a_mount_point_a_symlink_leads_out_of_the_root_is_refused() {
    let mut b = builder(Namespaces::MOUNT);
    b.rootfs("/srv/root").tmpfs("/escape");
    let (what, path, reason) = bad_mount(compile_b(&b, input(Some("/srv/root"))));
    assert_eq!(
        (what, path.as_path()),
        ("tmpfs destination", Path::new("/escape"))
    );
    assert!(
        reason.contains("resolves outside the root filesystem"),
        "{reason}"
    );
}

#[test]
fn mount_points_must_exist_and_match_the_sources_type() {
    let mut b = builder(Namespaces::MOUNT);
    b.rootfs("/srv/root").tmpfs("/missing");
    let (_, _, reason) = bad_mount(compile_b(&b, input(Some("/srv/root"))));
    assert!(reason.contains("does not exist"), "{reason}");
    let mut b = builder(Namespaces::MOUNT);
    b.rootfs("/srv/root").bind("/etc/hosts", "/tmp");
    let (what, _, reason) = bad_mount(compile_b(&b, input(Some("/srv/root"))));
    assert_eq!(what, "bind destination");
    assert!(reason.contains("is not a directory"), "{reason}");
    let mut b = builder(Namespaces::MOUNT);
    b.bind("/nonexistent", "/mnt");
    let (what, path, _) = bad_mount(compile_b(&b, input(None)));
    assert_eq!(
        (what, path.as_path()),
        ("bind source", Path::new("/nonexistent"))
    );
    // A relative bind source is taken from the supervisor's directory.
    let mut b = builder(Namespaces::MOUNT);
    b.bind("data", "/mnt");
    let (what, path, _) = bad_mount(compile_b(&b, input(None)));
    assert_eq!(
        (what, path.as_path()),
        ("bind source", Path::new("/work/data"))
    );
}

#[test]
fn nothing_is_created_or_chmodded_on_the_hosts_file_systems() {
    for (what, op) in [
        (
            "file",
            MountOp::File {
                dst: "/etc/x".into(),
                contents: (*b"x").into(),
                mode: 0o644,
            },
        ),
        (
            "symlink",
            MountOp::Symlink {
                target: "/a".into(),
                dst: "/etc/x".into(),
            },
        ),
        (
            "chmod",
            MountOp::Chmod {
                dst: "/etc/hosts".into(),
                mode: 0o644,
            },
        ),
        (
            "dir",
            MountOp::Dir {
                dst: "/etc/newdir".into(),
                mode: 0o755,
            },
        ),
    ] {
        let (got, _, reason) = bad_mount(compile(&[op], input(None), &host()));
        assert_eq!(got, what);
        assert!(
            reason.contains("file system this container mounts itself")
                || reason.contains("does not exist"),
            "{what}: {reason}"
        );
    }
    // An existing host directory is fine for `dir` (and left alone).
    let out = compile(
        &[MountOp::Dir {
            dst: "/etc".into(),
            mode: 0o700,
        }],
        input(None),
        &host(),
    )
    .unwrap();
    assert!(out.steps.is_empty());
    // Nor inside a kernel file system.
    let mut b = builder(Namespaces::MOUNT);
    b.mount_proc().tmpfs("/proc/sys");
    let (_, _, reason) = bad_mount(compile_b(&b, input(None)));
    assert!(reason.contains("kernel file system"), "{reason}");
}

#[test]
fn dirs_files_and_links_inside_a_tmpfs_of_ours() {
    let mut b = builder(Namespaces::MOUNT);
    b.tmpfs("/tmp")
        .dir("/tmp/a/b", 0o710)
        .symlink("a/b", "/tmp/l")
        .file("/tmp/l/f", "hi", 0o444)
        .chmod("/tmp/l/f", 0o400);
    let out = compile_b(&b, input(None)).unwrap();
    // Mount points inside our tmpfs are made with Mkdir (an existing one is fine); the
    // rest, in order:
    let after_tmpfs: Vec<&Op> = out
        .steps
        .iter()
        .skip(1)
        .map(|s| &s.op)
        .filter(|op| !matches!(op, Op::Mkdir { .. }))
        .collect();
    assert_eq!(
        after_tmpfs,
        [
            // The tmpfs's own root too: it exists, so it keeps its mode (EEXIST is fine).
            &Op::MkdirMode {
                path: c("/tmp"),
                mode: 0o750
            },
            &Op::MkdirMode {
                path: c("/tmp/a"),
                mode: 0o750
            },
            &Op::MkdirMode {
                path: c("/tmp/a/b"),
                mode: 0o710
            },
            &Op::Symlink {
                target: c("a/b"),
                path: c("/tmp/l")
            },
            // Through our own link, resolved here: the child never follows it.
            &Op::WriteFile {
                path: c("/tmp/a/b/f"),
                contents: (*b"hi").into(),
                mode: 0o444
            },
            &Op::Chmod {
                path: c("/tmp/a/b/f"),
                mode: 0o400
            },
        ]
    );
    assert!(out.model.made_here(Path::new("/tmp/a/b/f")));
}

#[test]
fn bad_tmpfs_sizes_and_modes_are_refused() {
    for (size, mode, needle) in [
        (Some(0), 0o755, "size of 0"),
        (
            Some(MAX_TMPFS_SIZE + 1),
            0o755,
            "above the largest accepted",
        ),
        (None, 0o17777, "beyond 0o7777"),
    ] {
        let op = MountOp::Tmpfs {
            dst: "/tmp".into(),
            size,
            mode,
        };
        let (what, _, reason) = bad_mount(compile(&[op], input(None), &host()));
        assert_eq!(what, "tmpfs");
        assert!(reason.contains(needle), "{reason}");
    }
    let op = MountOp::Tmpfs {
        dst: "/tmp".into(),
        size: Some(MAX_TMPFS_SIZE),
        mode: 0o7777,
    };
    assert!(compile(&[op], input(None), &host()).is_ok());
    for op in [
        MountOp::Dir {
            dst: "/tmp/d".into(),
            mode: 0o10000,
        },
        MountOp::Chmod {
            dst: "/tmp/d".into(),
            mode: 0o10000,
        },
    ] {
        let r = compile(
            &[
                MountOp::Tmpfs {
                    dst: "/tmp".into(),
                    size: None,
                    mode: 0o755,
                },
                op,
            ],
            input(None),
            &host(),
        );
        let (_, _, reason) = bad_mount(r);
        assert!(reason.contains("beyond 0o7777"), "{reason}");
    }
}

#[test]
fn parent_directories_take_a_mode_derived_from_the_childs() {
    use super::ops::parent_mode;
    assert_eq!(parent_mode(0o1777), 0o755);
    assert_eq!(parent_mode(0o644), 0o755);
    assert_eq!(parent_mode(0o710), 0o750);
    assert_eq!(parent_mode(0o600), 0o700);
    assert_eq!(parent_mode(0o001), 0o705);
}

#[test]
fn sysfs_falls_back_to_a_read_only_bind_of_the_hosts() {
    let mut b = builder(Namespaces::MOUNT);
    b.mount_sysfs();
    let out = compile_b(&b, input(None)).unwrap();
    assert!(matches!(&out.steps.last().unwrap().op,
        Op::Mount { fstype, flags, fallback_bind: Some(f), .. }
            if fstype.as_c_str() == c"sysfs" && flags & libc::MS_RDONLY != 0 && f.as_c_str() == c"/sys"));
}

#[test]
fn overlay_paths_with_option_separators_are_refused() {
    let h = FakeHost::new(&["/srv", "/srv/a,b", "/mnt"], &[], &[]);
    let op = MountOp::Overlay {
        lower: "/srv/a,b".into(),
        dst: "/mnt".into(),
    };
    let (what, path, reason) = bad_mount(compile(&[op], input(None), &h));
    assert_eq!((what, path.as_path()), ("overlay", Path::new("/srv/a,b")));
    assert!(reason.contains("separators"), "{reason}");
    let op = MountOp::Overlay {
        lower: "/etc".into(),
        dst: "/mnt".into(),
    };
    let out = compile(
        &[op],
        input(None),
        &FakeHost::new(&["/etc", "/mnt"], &[], &[]),
    )
    .unwrap();
    assert!(matches!(&out.steps.last().unwrap().op,
        Op::Mount { fstype, data: Some(d), .. }
            if fstype.as_c_str() == c"overlay" && d.as_c_str() == c"lowerdir=/etc,upperdir=/mnt/upper,workdir=/mnt/work"));
}

#[test]
fn read_only_binds_data_files_and_remounts_at_their_place_in_the_order() {
    let mut b = builder(Namespaces::MOUNT);
    b.tmpfs("/tmp")
        .bind_data_ro("/tmp/conf", "k=v\n", 0o644)
        .remount_ro("/tmp");
    let out = compile_b(&b, input(None)).unwrap();
    let ops: Vec<&Op> = out
        .steps
        .iter()
        .map(|s| &s.op)
        .filter(|op| !matches!(op, Op::Mkdir { .. } | Op::Mount { .. }))
        .collect();
    assert_eq!(
        ops,
        [
            // The data file's mount point in our tmpfs, the file bound onto it, that one
            // mount read-only (a file: nothing under it), then the whole tmpfs.
            &Op::Touch {
                path: c("/tmp/conf")
            },
            &Op::BindData {
                path: c("/tmp/conf"),
                contents: (*b"k=v\n").into(),
                mode: 0o644
            },
            &Op::ReadOnly {
                path: c("/tmp/conf"),
                recursive: false
            },
            &Op::ReadOnly {
                path: c("/tmp"),
                recursive: true
            },
        ]
    );
    // A data file is a file of ours: the program may be looked up there.
    assert!(out.model.made_here(Path::new("/tmp/conf")));
    // Bad modes are refused before anything is read.
    let mut b = builder(Namespaces::MOUNT);
    b.bind_data("/etc/hosts", "x", 0o20000);
    let (what, _, reason) = bad_mount(compile_b(&b, input(None)));
    assert_eq!(what, "bind_data");
    assert!(reason.contains("beyond 0o7777"), "{reason}");
}

/// `bind_with_flags`: without MS_REC the grab takes the one mount; MS_RDONLY makes it
/// read-only (not recursively then); nosuid, nodev and noexec are set on the placed bind
/// with `mount_setattr`; another flag is refused by name.
#[test]
fn binds_with_flags() {
    let mut b = builder(Namespaces::MOUNT);
    b.rootfs("/srv/root").bind_with_flags(
        "/srv/data",
        "/tmp",
        libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
    );
    let out = compile_b(&b, input(Some("/srv/root"))).unwrap();
    assert_eq!(
        out.steps,
        [
            step(
                Op::Grab {
                    src: c("/srv/data"),
                    recursive: false,
                    slot: 0
                },
                Stage::MountBind
            ),
            step(
                Op::Place {
                    path: c("/srv/root/tmp"),
                    slot: 0
                },
                Stage::MountBind
            ),
            step(
                Op::ReadOnly {
                    path: c("/srv/root/tmp"),
                    recursive: false
                },
                Stage::MakeReadOnly
            ),
            step(
                Op::SetAttr {
                    path: c("/srv/root/tmp"),
                    recursive: false,
                    attrs: libc::MOUNT_ATTR_NOSUID
                        | libc::MOUNT_ATTR_NODEV
                        | libc::MOUNT_ATTR_NOEXEC
                },
                Stage::MountBind
            ),
        ]
    );
    // MS_REC alone: a recursive, writable bind and nothing set, as `bind`.
    let mut b = builder(Namespaces::MOUNT);
    b.rootfs("/srv/root")
        .bind_with_flags("/srv/data", "/tmp", libc::MS_REC);
    let out = compile_b(&b, input(Some("/srv/root"))).unwrap();
    assert_eq!(out.steps.len(), 2);
    assert!(matches!(
        out.steps[0].op,
        Op::Grab {
            recursive: true,
            ..
        }
    ));
    let mut b = builder(Namespaces::MOUNT);
    b.rootfs("/srv/root").bind_with_flags(
        "/srv/data",
        "/tmp",
        libc::MS_NOSUID | libc::MS_SYNCHRONOUS,
    );
    let (what, path, reason) = bad_mount(compile_b(&b, input(Some("/srv/root"))));
    assert_eq!((what, path), ("bind_with_flags", PathBuf::from("/tmp")));
    assert!(reason.contains("MS_NOEXEC"), "{reason}");
}

/// `remount_with_flags`: one `mount_setattr` with the bits asked (read-only included),
/// recursive with MS_REC; on a path of the host's, refused like `remount_ro`; another
/// flag refused by name.
#[test]
fn remounts_with_flags() {
    let mut b = builder(Namespaces::MOUNT);
    b.rootfs("/srv/root")
        .tmpfs("/tmp")
        .remount_with_flags("/tmp", libc::MS_NOEXEC | libc::MS_RDONLY | libc::MS_REC);
    let out = compile_b(&b, input(Some("/srv/root"))).unwrap();
    assert_eq!(
        out.steps.last().unwrap(),
        &step(
            Op::SetAttr {
                path: c("/srv/root/tmp"),
                recursive: true,
                attrs: libc::MOUNT_ATTR_NOEXEC | libc::MOUNT_ATTR_RDONLY
            },
            Stage::MountBind
        )
    );
    let mut b = builder(Namespaces::MOUNT);
    b.rootfs("/srv/root")
        .tmpfs("/tmp")
        .remount_with_flags("/tmp", libc::MS_BIND);
    let (what, _, reason) = bad_mount(compile_b(&b, input(Some("/srv/root"))));
    assert_eq!(what, "remount_with_flags");
    assert!(reason.contains("MS_REC"), "{reason}");
}
