//! Prepares the security settings for the child: the masked and read-only paths as C
//! strings, the capabilities kept, the seccomp programs (`seccomp.rs`), the passed
//! descriptors duplicated above every target and the close-on-exec ranges around them.
//!
//! The validation and the lists are computed by pure functions of the configuration and
//! the [`Ctx`] (unit-tested below without privileges); [`prepare`] then does the part that
//! touches the host: it canonicalizes the root filesystem's path, duplicates descriptors
//! and opens `/dev/null`.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::builder::security::{
    CapSets, Capability, SecurityConfig, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS,
};
use crate::child::security::{FdPass, SecuritySpec};
use crate::error::{Error, Result};
use crate::plan::Ctx;
use crate::Namespaces;

/// What the child's security steps read, owned until the child has exec'd.
pub(crate) struct PreparedSecurity {
    masks: Vec<CString>,
    readonly: Vec<CString>,
    /// Whether `masks` and `readonly` are under the root filesystem's path.
    under_root: bool,
    /// `None` leaves the capabilities as they are.
    keep_caps: Option<u64>,
    /// The other four sets, with `keep_caps` as the bounding set (`capability_sets`).
    cap_sets: Option<CapSets>,
    no_new_privs: bool,
    seccomp: Vec<Arc<[libc::sock_filter]>>,
    umask: libc::c_int,
    new_session: bool,
    process_group: libc::c_int,
    close_fds: bool,
    pass: Vec<FdPass>,
    /// Our duplicates of the passed descriptors (the `src` of `pass`); closed after the
    /// spawn.
    _pass_fds: Vec<OwnedFd>,
    cloexec_ranges: Vec<(u32, u32)>,
    /// The host's `/dev/null` and its `/proc/self/fd` path, for masking files in a root
    /// filesystem that has none.
    null: Option<(OwnedFd, CString)>,
}

impl std::fmt::Debug for PreparedSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedSecurity").finish_non_exhaustive()
    }
}

impl PreparedSecurity {
    /// The child's view.
    pub(crate) fn spec(&self) -> SecuritySpec<'_> {
        SecuritySpec {
            masks: &self.masks,
            readonly: &self.readonly,
            keep_caps: self.keep_caps.unwrap_or(0),
            drop_caps: self.keep_caps.is_some(),
            cap_sets: self.cap_sets,
            no_new_privs: self.no_new_privs,
            seccomp: &self.seccomp,
            umask: self.umask,
            new_session: self.new_session,
            process_group: self.process_group,
            close_fds: self.close_fds,
            pass: &self.pass,
            cloexec_ranges: &self.cloexec_ranges,
            null_fd_path: self.null.as_ref().map(|(_, p)| p.as_c_str()),
            under_root: self.under_root,
        }
    }
}

/// Validates the security settings and prepares everything the child needs.
pub(crate) fn prepare(cfg: &SecurityConfig, ctx: &Ctx) -> Result<PreparedSecurity> {
    let mount_ns = match ctx.mounts_here() {
        true => Namespaces::MOUNT,
        false => Namespaces::empty(),
    };
    let (masks, readonly) = mask_lists(cfg, ctx.namespaces | mount_ns)?;
    let keep_caps = kept_capabilities(cfg, ctx.namespaces);
    let cap_sets = capability_sets(cfg, ctx.namespaces)?;
    // Compiled here (or taken from the cache): the child only hands them to the kernel.
    let seccomp = crate::plan::seccomp::programs(cfg)?;
    let targets = pass_targets(cfg)?;
    let cloexec_ranges = cloexec_ranges(&targets);
    let process_group = process_group(cfg, ctx)?;

    // With a root filesystem the paths are the container's under that root, masked before
    // pivot_root (see SecuritySpec::under_root).
    let root = match &ctx.root {
        Some(r) if !(masks.is_empty() && readonly.is_empty()) => {
            Some(std::fs::canonicalize(r).unwrap_or_else(|_| r.clone()))
        }
        _ => None,
    };
    let (masks, readonly) = match &root {
        Some(root) => (under(root, &masks), under(root, &readonly)),
        None => (masks, readonly),
    };
    let masks = c_paths(&masks)?;
    let readonly = c_paths(&readonly)?;

    // Each passed descriptor duplicated above every target, so that the child's dup2 onto
    // the targets never overwrites a source still to be moved.
    let above = ctx.min_setup_fd;
    let mut pass_fds = Vec::new();
    let mut pass = Vec::new();
    for (fd, target) in &cfg.pass_fds {
        let dup = crate::sys::dup_above(fd.as_raw_fd(), above).map_err(|e| Error::BadPassFd {
            target: *target,
            reason: format!("duplicating the descriptor: {e}"),
        })?;
        pass.push(FdPass {
            src: dup.as_raw_fd(),
            dst: *target,
        });
        pass_fds.push(dup);
    }

    // The host's /dev/null, for masking files in a root filesystem that has none. Without
    // a root filesystem the masks bind the host's /dev/null by its path: nothing to open.
    let null = if masks.is_empty() || root.is_none() {
        None
    } else {
        let f = std::fs::File::open("/dev/null")
            .map_err(|e| Error::Security(format!("opening /dev/null: {e}")))?;
        let fd = crate::sys::move_above(OwnedFd::from(f), above)
            .map_err(|e| Error::Security(format!("/dev/null: {e}")))?;
        let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL");
        Some((fd, path))
    };
    Ok(PreparedSecurity {
        masks,
        readonly,
        under_root: root.is_some(),
        keep_caps,
        cap_sets,
        no_new_privs: cfg.no_new_privs,
        seccomp,
        umask: cfg.umask.map_or(-1, |m| (m & 0o777) as i32),
        // A pty makes its own new session (child/session.rs), with the pty as controlling
        // terminal; a second setsid would fail.
        new_session: cfg.new_session && !ctx.pty,
        process_group,
        close_fds: !cfg.inherit_fds,
        pass,
        _pass_fds: pass_fds,
        cloexec_ranges,
        null,
    })
}

/// The paths to mask and to make read-only, as the container sees them: the defaults
/// (unless turned off, and minus the unmasked ones) and the caller's masks. Only with a
/// mount namespace of our own; without one the mounts would be the host's.
fn mask_lists(cfg: &SecurityConfig, ns: Namespaces) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mount_ns = ns.contains(Namespaces::MOUNT);
    if !cfg.extra_masks.is_empty() && !mount_ns {
        return Err(Error::NeedsNamespace {
            option: "mask_path",
            needs: Namespaces::MOUNT,
        });
    }
    if !cfg.extra_readonly.is_empty() && !mount_ns {
        return Err(Error::NeedsNamespace {
            option: "readonly_path",
            needs: Namespaces::MOUNT,
        });
    }
    for p in &cfg.unmasked {
        let default = |d: &&str| Path::new(d) == p;
        if !DEFAULT_MASKED_PATHS.iter().any(default) && !DEFAULT_READONLY_PATHS.iter().any(default)
        {
            return Err(Error::BadMount {
                what: "unmask_path",
                path: p.clone(),
                reason: "not one of the default masked or read-only paths \
                         (DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS)"
                    .into(),
            });
        }
    }
    let mut masks = Vec::new();
    let mut readonly = Vec::new();
    if !mount_ns {
        return Ok((masks, readonly));
    }
    if cfg.masked_paths {
        let kept = |d: &&&str| !cfg.unmasked.iter().any(|u| u == Path::new(d));
        masks.extend(DEFAULT_MASKED_PATHS.iter().filter(kept).map(PathBuf::from));
        readonly.extend(
            DEFAULT_READONLY_PATHS
                .iter()
                .filter(kept)
                .map(PathBuf::from),
        );
    }
    for p in &cfg.extra_masks {
        if !p.is_absolute() {
            return Err(Error::Security(format!(
                "mask_path {}: the path must be absolute",
                p.display()
            )));
        }
        masks.push(p.clone());
    }
    for p in &cfg.extra_readonly {
        if !p.is_absolute() {
            return Err(Error::Security(format!(
                "readonly_path {}: the path must be absolute",
                p.display()
            )));
        }
        readonly.push(p.clone());
    }
    Ok((masks, readonly))
}

/// The container's absolute `paths` as paths under `root` on the host.
fn under(root: &Path, paths: &[PathBuf]) -> Vec<PathBuf> {
    paths
        .iter()
        .map(|p| root.join(p.strip_prefix("/").unwrap_or(p)))
        .collect()
}

fn c_paths(paths: &[PathBuf]) -> Result<Vec<CString>> {
    paths
        .iter()
        .map(|p| {
            CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::NulByte {
                what: "a masked path".into(),
                value: p.display().to_string(),
            })
        })
        .collect()
}

/// The capability mask kept (`None`: all left as they are). Nesting adds CAP_SETFCAP,
/// without which (Linux 5.12+) an inner user namespace may not map uid 0 of ours; and, in
/// a user namespace of its own, also CAP_SYS_ADMIN, which there covers only namespaces
/// that user namespace owns.
fn kept_capabilities(cfg: &SecurityConfig, ns: Namespaces) -> Option<u64> {
    cfg.keep_caps.map(|mut m| {
        if cfg.nesting {
            m |= Capability::CAP_SETFCAP.bitmask();
            if ns.contains(Namespaces::USER) {
                m |= Capability::CAP_SYS_ADMIN.bitmask();
            }
        }
        m
    })
}

/// The sets of `capability_sets`, checked as the kernel will (`capset`, and
/// `PR_CAP_AMBIENT_RAISE`): effective within permitted, ambient within permitted and
/// inheritable. Nesting's capabilities join every set, as they join the one set of
/// `capabilities`.
fn capability_sets(cfg: &SecurityConfig, ns: Namespaces) -> Result<Option<CapSets>> {
    let Some(mut sets) = cfg.cap_sets else {
        return Ok(None);
    };
    let nesting = kept_capabilities(cfg, ns).unwrap_or(0) & !cfg.keep_caps.unwrap_or(0);
    for m in [
        &mut sets.permitted,
        &mut sets.effective,
        &mut sets.inheritable,
        &mut sets.ambient,
    ] {
        *m |= nesting;
    }
    let names = |m: u64| -> String {
        caps::all()
            .into_iter()
            .filter(|c| m & c.bitmask() != 0)
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let outside = sets.effective & !sets.permitted;
    if outside != 0 {
        return Err(Error::Security(format!(
            "capability_sets: effective holds {} that permitted does not",
            names(outside)
        )));
    }
    let outside = sets.ambient & !(sets.permitted & sets.inheritable);
    if outside != 0 {
        return Err(Error::Security(format!(
            "capability_sets: ambient holds {} that permitted and inheritable do not both hold",
            names(outside)
        )));
    }
    Ok(Some(sets))
}

/// The `pass_fd` targets, each checked: 3 or above, and given once.
fn pass_targets(cfg: &SecurityConfig) -> Result<BTreeSet<RawFd>> {
    let mut targets = BTreeSet::new();
    for (_, t) in &cfg.pass_fds {
        if *t < 3 {
            return Err(Error::BadPassFd {
                target: *t,
                reason: "targets 0, 1 and 2 are stdio: use stdin()/stdout()/stderr()".into(),
            });
        }
        if !targets.insert(*t) {
            return Err(Error::BadPassFd {
                target: *t,
                reason: "passed twice".into(),
            });
        }
    }
    Ok(targets)
}

/// The inclusive ranges to mark close-on-exec: every descriptor from 3 up except the
/// targets (all of them 3 or above, see [`pass_targets`]).
fn cloexec_ranges(targets: &BTreeSet<RawFd>) -> Vec<(u32, u32)> {
    let mut ranges = Vec::new();
    let mut lo: u32 = 3;
    for &t in targets {
        let t = t as u32;
        if t > lo {
            ranges.push((lo, t - 1));
        }
        lo = t + 1;
    }
    ranges.push((lo, u32::MAX));
    ranges
}

/// The child's `setpgid` argument for
/// [`process_group`](crate::ContainerBuilder::process_group), or -1 for none: with a new
/// session (a new group already), a pty (a new session too) or the init (which places the
/// workload itself), the child makes no call. Refuses what cannot work.
fn process_group(cfg: &SecurityConfig, ctx: &Ctx) -> Result<libc::c_int> {
    let Some(pgid) = ctx.process_group else {
        return Ok(-1);
    };
    if pgid < 0 {
        return Err(Error::BadConfig(format!(
            "process_group({pgid}): a process group id is 0 (a new group) or positive"
        )));
    }
    if pgid > 0 {
        if ctx.namespaces.contains(Namespaces::PID) {
            return Err(Error::BadConfig(format!(
                "process_group({pgid}) with Namespaces::PID: group {pgid} is the supervisor's, and its id means nothing in the new PID namespace; use process_group(0)"
            )));
        }
        if cfg.new_session || ctx.pty {
            return Err(Error::BadConfig(format!(
                "process_group({pgid}) needs new_session(false) (and no pty): a new session is a new process group, and a group of another session cannot be joined"
            )));
        }
    }
    if ctx.uses_init || cfg.new_session || ctx.pty {
        return Ok(-1);
    }
    Ok(pgid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(namespaces: Namespaces) -> Ctx {
        Ctx {
            namespaces,
            ..Ctx::default()
        }
    }

    fn paths(v: &[PathBuf]) -> Vec<&str> {
        v.iter().map(|p| p.to_str().unwrap()).collect()
    }

    /// The defaults with a mount namespace; nothing without one; `masked_paths(false)`
    /// leaves only the caller's masks; an unmasked default disappears from its list alone.
    #[test]
    fn mask_and_readonly_lists() {
        let cfg = SecurityConfig::default();
        let (m, r) = mask_lists(&cfg, Namespaces::MOUNT).unwrap();
        assert_eq!(paths(&m), DEFAULT_MASKED_PATHS);
        assert_eq!(paths(&r), DEFAULT_READONLY_PATHS);
        let (m, r) = mask_lists(&cfg, Namespaces::PID).unwrap();
        assert!(m.is_empty() && r.is_empty());

        let mut cfg = SecurityConfig {
            unmasked: vec!["/proc/kcore".into(), "/proc/sys".into()],
            extra_masks: vec!["/etc/secret".into()],
            ..Default::default()
        };
        let (m, r) = mask_lists(&cfg, Namespaces::MOUNT).unwrap();
        assert!(!paths(&m).contains(&"/proc/kcore"));
        assert!(paths(&m).contains(&"/proc/keys"));
        assert_eq!(m.len(), DEFAULT_MASKED_PATHS.len());
        assert_eq!(m.last().unwrap(), Path::new("/etc/secret"));
        assert_eq!(paths(&r), ["/proc/bus", "/proc/fs", "/proc/irq"]);

        cfg.masked_paths = false;
        let (m, r) = mask_lists(&cfg, Namespaces::MOUNT).unwrap();
        assert_eq!(paths(&m), ["/etc/secret"]);
        assert!(r.is_empty());
    }

    /// `readonly_path`: after the defaults (also with `masked_paths(false)`), refused when
    /// relative or without a mount namespace.
    #[test]
    fn readonly_path_list() {
        let mut cfg = SecurityConfig {
            extra_readonly: vec!["/proc/sysrq-trigger".into()],
            ..Default::default()
        };
        let (_, r) = mask_lists(&cfg, Namespaces::MOUNT).unwrap();
        assert_eq!(r.len(), DEFAULT_READONLY_PATHS.len() + 1);
        assert_eq!(r.last().unwrap(), Path::new("/proc/sysrq-trigger"));
        cfg.masked_paths = false;
        let (m, r) = mask_lists(&cfg, Namespaces::MOUNT).unwrap();
        assert!(m.is_empty());
        assert_eq!(paths(&r), ["/proc/sysrq-trigger"]);
        match mask_lists(&cfg, Namespaces::PID) {
            Err(Error::NeedsNamespace { option, needs }) => {
                assert_eq!((option, needs), ("readonly_path", Namespaces::MOUNT))
            }
            other => panic!("{other:?}"),
        }
        cfg.extra_readonly = vec!["proc/sys".into()];
        match mask_lists(&cfg, Namespaces::MOUNT) {
            Err(Error::Security(m)) => assert!(m.contains("proc/sys") && m.contains("absolute")),
            other => panic!("{other:?}"),
        }
    }

    /// `capability_sets`: effective within permitted and ambient within both permitted and
    /// inheritable, or a Security error naming the set and the capability; nesting's
    /// capabilities join every set; `capabilities` afterwards goes back to one set.
    #[test]
    fn capability_sets_checked() {
        use crate::ContainerBuilder;
        let (kill, chown) = (Capability::CAP_KILL, Capability::CAP_CHOWN);
        let sets_of = |b: &ContainerBuilder, ns| capability_sets(&b.security, ns);
        let mut b = ContainerBuilder::new("/bin/true");
        b.capability_sets([kill, chown], [kill, chown], [kill], [kill], [kill]);
        let s = sets_of(&b, Namespaces::MOUNT).unwrap().unwrap();
        assert_eq!(b.security.keep_caps, Some(kill.bitmask() | chown.bitmask()));
        assert_eq!(s.permitted, kill.bitmask() | chown.bitmask());
        assert_eq!(
            (s.effective, s.inheritable, s.ambient),
            (kill.bitmask(), kill.bitmask(), kill.bitmask())
        );
        b.capability_sets([kill], [kill], [kill, chown], [], []);
        match sets_of(&b, Namespaces::MOUNT) {
            Err(Error::Security(m)) => {
                assert!(m.contains("effective") && m.contains("CAP_CHOWN"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        b.capability_sets([kill], [kill], [], [], [kill]);
        match sets_of(&b, Namespaces::MOUNT) {
            Err(Error::Security(m)) => {
                assert!(m.contains("ambient") && m.contains("CAP_KILL"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        b.capability_sets([], [], [], [], []).nesting(true);
        let s = sets_of(&b, Namespaces::MOUNT).unwrap().unwrap();
        assert_eq!(s.ambient, Capability::CAP_SETFCAP.bitmask());
        b.capabilities([kill]);
        assert_eq!(sets_of(&b, Namespaces::MOUNT).unwrap(), None);
    }

    /// What the mask options refuse, by name: a path that is no default to unmask (even
    /// without a mount namespace), a relative mask, a mask without a mount namespace.
    #[test]
    fn mask_options_refused() {
        let cfg = SecurityConfig {
            unmasked: vec!["/proc/cpuinfo".into()],
            ..Default::default()
        };
        for ns in [Namespaces::MOUNT, Namespaces::empty()] {
            match mask_lists(&cfg, ns) {
                Err(Error::BadMount { what, path, .. }) => {
                    assert_eq!((what, path), ("unmask_path", "/proc/cpuinfo".into()))
                }
                other => panic!("{other:?}"),
            }
        }
        let cfg = SecurityConfig {
            extra_masks: vec!["etc/secret".into()],
            ..Default::default()
        };
        match mask_lists(&cfg, Namespaces::MOUNT) {
            Err(Error::Security(m)) => assert!(m.contains("etc/secret") && m.contains("absolute")),
            other => panic!("{other:?}"),
        }
        match mask_lists(&cfg, Namespaces::PID) {
            Err(Error::NeedsNamespace { option, needs }) => {
                assert_eq!((option, needs), ("mask_path", Namespaces::MOUNT))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths_under_a_root() {
        let p = under(
            Path::new("/srv/root"),
            &["/proc/kcore".into(), "/sys/firmware".into()],
        );
        assert_eq!(
            paths(&p),
            ["/srv/root/proc/kcore", "/srv/root/sys/firmware"]
        );
        let bad = c_paths(&["/a\0b".into()]);
        assert!(matches!(bad, Err(Error::NulByte { .. })), "{bad:?}");
    }

    /// Everything from 3 up but the targets, whatever order they were passed in.
    #[test]
    fn cloexec_ranges_around_the_targets() {
        let ranges = |t: &[RawFd]| cloexec_ranges(&t.iter().copied().collect());
        assert_eq!(ranges(&[]), [(3, u32::MAX)]);
        assert_eq!(ranges(&[3]), [(4, u32::MAX)]);
        assert_eq!(ranges(&[10, 5, 3]), [(4, 4), (6, 9), (11, u32::MAX)]);
        assert_eq!(ranges(&[4, 5]), [(3, 3), (6, u32::MAX)]);
    }

    #[test]
    fn pass_fd_targets_checked() {
        let fd = |_: ()| Arc::new(OwnedFd::from(std::fs::File::open("/dev/null").unwrap()));
        let mut cfg = SecurityConfig {
            pass_fds: vec![(fd(()), 7), (fd(()), 4)],
            ..Default::default()
        };
        assert_eq!(cfg.min_setup_fd(), 8);
        assert_eq!(
            pass_targets(&cfg).unwrap().into_iter().collect::<Vec<_>>(),
            [4, 7]
        );
        for (bad, words) in [(2, "stdio"), (7, "passed twice")] {
            cfg.pass_fds.push((fd(()), bad));
            match pass_targets(&cfg) {
                Err(Error::BadPassFd { target, reason }) => {
                    assert_eq!(target, bad);
                    assert!(reason.contains(words), "{reason}");
                }
                other => panic!("{other:?}"),
            }
            cfg.pass_fds.pop();
        }
        assert_eq!(SecurityConfig::default().min_setup_fd(), 3);
    }

    /// `process_group`: -1 (no call) unless the child itself must join or make a group;
    /// the impossible combinations refused by name.
    #[test]
    fn process_group_validated() {
        let mut cfg = SecurityConfig::default();
        let mut c = ctx(Namespaces::empty());
        assert_eq!(process_group(&cfg, &c).unwrap(), -1);
        c.process_group = Some(0);
        // A new session is a new group already.
        assert_eq!(process_group(&cfg, &c).unwrap(), -1);
        cfg.new_session = false;
        assert_eq!(process_group(&cfg, &c).unwrap(), 0);
        c.process_group = Some(77);
        assert_eq!(process_group(&cfg, &c).unwrap(), 77);
        // The init places the workload itself.
        c.uses_init = true;
        assert_eq!(process_group(&cfg, &c).unwrap(), -1);
        c.uses_init = false;

        let refused = |cfg: &SecurityConfig, c: &Ctx, words: &str| match process_group(cfg, c) {
            Err(Error::BadConfig(m)) => assert!(m.contains(words), "{m}"),
            other => panic!("{words}: {other:?}"),
        };
        c.process_group = Some(-3);
        refused(&cfg, &c, "0 (a new group) or positive");
        c.process_group = Some(77);
        c.pty = true;
        refused(&cfg, &c, "needs new_session(false)");
        c.pty = false;
        cfg.new_session = true;
        refused(&cfg, &c, "needs new_session(false)");
        cfg.new_session = false;
        let mut c = ctx(Namespaces::PID);
        c.process_group = Some(77);
        refused(&cfg, &c, "Namespaces::PID");
        c.process_group = Some(0);
        c.uses_init = true;
        assert_eq!(process_group(&cfg, &c).unwrap(), -1);
    }

    /// The host part, as an unprivileged user can run it: the root's path canonicalized
    /// and put before every path, the host's `/dev/null` opened above the pass_fd targets
    /// for files in a root without one, each passed descriptor duplicated above them too;
    /// what the child reads is exactly that.
    #[test]
    fn prepare_under_a_root() {
        let null = || Arc::new(OwnedFd::from(std::fs::File::open("/dev/null").unwrap()));
        let cfg = SecurityConfig {
            pass_fds: vec![(null(), 40), (null(), 41)],
            new_session: false,
            ..Default::default()
        };
        let ctx = Ctx {
            namespaces: Namespaces::MOUNT,
            root: Some("/usr/../usr".into()),
            min_setup_fd: cfg.min_setup_fd(),
            process_group: Some(0),
            ..Ctx::default()
        };
        let prepared = prepare(&cfg, &ctx).unwrap();
        let spec = prepared.spec();
        assert!(spec.under_root);
        let masks: Vec<&str> = spec.masks.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(masks[0], "/usr/proc/acpi");
        assert_eq!(masks.len(), DEFAULT_MASKED_PATHS.len());
        assert_eq!(spec.readonly.last().unwrap().as_c_str(), c"/usr/proc/sys");
        let null_path = spec.null_fd_path.unwrap().to_str().unwrap();
        let n: RawFd = null_path
            .strip_prefix("/proc/self/fd/")
            .unwrap()
            .parse()
            .unwrap();
        assert!(n >= 42, "{null_path}");
        assert_eq!(
            std::fs::read_link(null_path).unwrap(),
            Path::new("/dev/null")
        );
        let dsts: Vec<RawFd> = spec.pass.iter().map(|p| p.dst).collect();
        assert_eq!(dsts, [40, 41]);
        assert!(spec.pass.iter().all(|p| p.src >= 42), "{:?}", spec.pass);
        assert_eq!(spec.cloexec_ranges, [(3, 39), (42, u32::MAX)]);
        assert_eq!((spec.process_group, spec.new_session), (0, false));
        assert_eq!(spec.seccomp.len(), 1);
        assert!(spec.drop_caps && spec.no_new_privs && spec.close_fds);
        assert_eq!(spec.umask, 0o022);

        // Without a root: the container's own paths, and nothing opened for /dev/null.
        let ctx = Ctx { root: None, ..ctx };
        let prepared = prepare(&cfg, &ctx).unwrap();
        let spec = prepared.spec();
        assert!(!spec.under_root && spec.null_fd_path.is_none());
        assert_eq!(spec.masks[0].as_c_str(), c"/proc/acpi");
    }

    #[test]
    fn nesting_keeps_what_inner_containers_need() {
        let setfcap = Capability::CAP_SETFCAP.bitmask();
        let admin = Capability::CAP_SYS_ADMIN.bitmask();
        let mut cfg = SecurityConfig::default();
        assert_eq!(kept_capabilities(&cfg, Namespaces::USER), Some(0));
        cfg.nesting = true;
        assert_eq!(kept_capabilities(&cfg, Namespaces::MOUNT), Some(setfcap));
        assert_eq!(
            kept_capabilities(&cfg, Namespaces::USER),
            Some(setfcap | admin)
        );
        cfg.keep_caps = None;
        assert_eq!(kept_capabilities(&cfg, Namespaces::USER), None);
    }
}
