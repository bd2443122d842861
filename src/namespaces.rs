//! Which namespaces a container gets, and how to identify the ones a process is in.

use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;

bitflags::bitflags! {
    /// A set of Linux namespaces, combinable with `|`.
    ///
    /// ```
    /// use cellblock::Namespaces;
    /// let ns = Namespaces::UTS | Namespaces::PID | Namespaces::MOUNT;
    /// assert!(ns.contains(Namespaces::PID));
    /// assert!(!ns.contains(Namespaces::NET));
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Namespaces: u32 {
        /// Hostname and NIS domain name (`CLONE_NEWUTS`).
        const UTS = 1 << 0;
        /// System V IPC and POSIX message queues (`CLONE_NEWIPC`).
        const IPC = 1 << 1;
        /// Process ids (`CLONE_NEWPID`): the built-in init is PID 1 and the workload PID 2,
        /// or the workload PID 1 with [`init(false)`](crate::ContainerBuilder::init).
        const PID = 1 << 2;
        /// The mount table (`CLONE_NEWNS`).
        const MOUNT = 1 << 3;
        /// Network devices, addresses, routes, ports (`CLONE_NEWNET`).
        const NET = 1 << 4;
        /// User and group ids and capabilities (`CLONE_NEWUSER`).
        const USER = 1 << 5;
        /// The cgroup root shown in `/proc/self/cgroup` (`CLONE_NEWCGROUP`).
        const CGROUP = 1 << 6;
        /// CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets (`CLONE_NEWTIME`).
        const TIME = 1 << 7;
    }
}

/// One namespace kind, with its names in the kernel's interfaces.
pub(crate) struct Kind {
    pub(crate) flag: Namespaces,
    /// The file under `/proc/<pid>/ns/`.
    pub(crate) proc_name: &'static str,
    /// The `CLONE_NEW*` flag.
    pub(crate) clone_flag: libc::c_int,
}

/// Every kind, in a fixed order.
pub(crate) const KINDS: [Kind; 8] = [
    Kind {
        flag: Namespaces::UTS,
        proc_name: "uts",
        clone_flag: libc::CLONE_NEWUTS,
    },
    Kind {
        flag: Namespaces::IPC,
        proc_name: "ipc",
        clone_flag: libc::CLONE_NEWIPC,
    },
    Kind {
        flag: Namespaces::PID,
        proc_name: "pid",
        clone_flag: libc::CLONE_NEWPID,
    },
    Kind {
        flag: Namespaces::MOUNT,
        proc_name: "mnt",
        clone_flag: libc::CLONE_NEWNS,
    },
    Kind {
        flag: Namespaces::NET,
        proc_name: "net",
        clone_flag: libc::CLONE_NEWNET,
    },
    Kind {
        flag: Namespaces::USER,
        proc_name: "user",
        clone_flag: libc::CLONE_NEWUSER,
    },
    Kind {
        flag: Namespaces::CGROUP,
        proc_name: "cgroup",
        clone_flag: libc::CLONE_NEWCGROUP,
    },
    Kind {
        flag: Namespaces::TIME,
        proc_name: "time",
        clone_flag: libc::CLONE_NEWTIME,
    },
];

impl Namespaces {
    /// The `CLONE_NEW*` bits for the namespaces that `clone()` itself can create.
    ///
    /// `CLONE_NEWTIME` shares its bit with the exit-signal byte of `clone()`, so TIME is
    /// never part of this; it is created with `unshare` in the child instead.
    pub(crate) fn clone_flags(self) -> libc::c_int {
        self.difference(Namespaces::TIME).ns_flags()
    }

    /// The `CLONE_NEW*` bits of every kind in this set, `CLONE_NEWTIME` included (what
    /// `setns` and `NS_GET_NSTYPE` use).
    pub(crate) fn ns_flags(self) -> libc::c_int {
        KINDS
            .iter()
            .filter(|k| self.contains(k.flag))
            .fold(0, |acc, k| acc | k.clone_flag)
    }

    /// The names of the kinds in this set as `/proc/<pid>/ns` spells them, for messages.
    pub fn names(self) -> Vec<&'static str> {
        KINDS
            .iter()
            .filter(|k| self.contains(k.flag))
            .map(|k| k.proc_name)
            .collect()
    }
}

impl fmt::Display for Namespaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("(none)");
        }
        f.write_str(&self.names().join("|"))
    }
}

/// The identities (inode numbers) of the namespaces a process is in, as the links in
/// `/proc/<pid>/ns/` show them (`readlink /proc/self/ns/net` → `net:[4026531840]`).
///
/// Two processes are in the same namespace of a kind exactly when the ids of that kind are
/// equal. A kind the kernel does not have is `None`.
///
/// ```
/// use cellblock::{NamespaceIds, Namespaces};
/// let me = NamespaceIds::current().unwrap();
/// assert!(me.get(Namespaces::NET).is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NamespaceIds {
    ids: [Option<u64>; 8],
}

impl NamespaceIds {
    /// The namespaces of the calling process.
    pub fn current() -> io::Result<NamespaceIds> {
        Self::read("/proc/self/ns")
    }

    /// The namespaces of process `pid` (as seen from the caller's PID namespace).
    pub fn of_pid(pid: i32) -> io::Result<NamespaceIds> {
        Self::read(&format!("/proc/{pid}/ns"))
    }

    fn read(dir: &str) -> io::Result<NamespaceIds> {
        let mut ids = [None; 8];
        for (slot, kind) in ids.iter_mut().zip(KINDS.iter()) {
            match std::fs::metadata(format!("{dir}/{}", kind.proc_name)) {
                Ok(m) => *slot = Some(m.ino()),
                Err(e) if e.kind() == io::ErrorKind::NotFound && kind_missing(kind) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(NamespaceIds { ids })
    }

    /// The id of one kind (pass a single flag), or `None` if the kernel lacks that kind.
    pub fn get(&self, kind: Namespaces) -> Option<u64> {
        KINDS
            .iter()
            .position(|k| k.flag == kind)
            .and_then(|i| self.ids[i])
    }

    /// The kinds whose ids differ between `self` and `other`.
    pub fn differing(&self, other: &NamespaceIds) -> Namespaces {
        KINDS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.ids[*i] != other.ids[*i])
            .fold(Namespaces::empty(), |acc, (_, k)| acc | k.flag)
    }
}

/// Whether the running kernel lacks a namespace kind altogether.
fn kind_missing(kind: &Kind) -> bool {
    std::fs::symlink_metadata(format!("/proc/self/ns/{}", kind.proc_name)).is_err()
}

/// The kinds in `set` that this kernel does not have (no `/proc/self/ns/<name>`).
///
/// Looked up once per process: the kernel's set does not change while we run, and the
/// lookups (procfs path walks) cost ~15 us, paid on every spawn before this was cached.
pub(crate) fn unsupported(set: Namespaces) -> Namespaces {
    static MISSING: std::sync::OnceLock<Namespaces> = std::sync::OnceLock::new();
    let missing = *MISSING.get_or_init(|| {
        KINDS
            .iter()
            .filter(|k| kind_missing(k))
            .fold(Namespaces::empty(), |acc, k| acc | k.flag)
    });
    set & missing
}

impl fmt::Display for NamespaceIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (id, kind) in self.ids.iter().zip(KINDS.iter()) {
            if let Some(id) = id {
                if !first {
                    f.write_str(" ")?;
                }
                first = false;
                write!(f, "{}:[{}]", kind.proc_name, id)?;
            }
        }
        Ok(())
    }
}
