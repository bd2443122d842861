//! Address leases: no two live containers share an address, and what a killed supervisor
//! held is found and freed by the next start.
//!
//! Under `/run/cellblock/net/<bridge>/`:
//! * `owner.<pid>.<random>`: one per supervisor process using the bridge, on which it holds
//!   an exclusive `flock` for its whole life. The kernel drops the lock when the process
//!   dies, however it dies, so "can I lock it?" is "is its owner dead?" (the random part
//!   keeps a recycled pid from looking like the dead owner).
//! * `lease/<address>`: created with `O_EXCL` (the claim is atomic across processes), it
//!   names its owner. The host end of the veth is `cb` + the address in hex, so the
//!   address alone says which link and which nftables rules belong to the lease.
//! * `setup.lock`: held while a supervisor sets the bridge up or sweeps stale leases.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// The root of our lease directories (a tmpfs: gone at reboot, as the links are).
pub(crate) const RUN_DIR: &str = "/run/cellblock/net";

/// The host end of the veth of `addr`.
pub(crate) fn veth_name(addr: Ipv4Addr) -> String {
    format!("cb{:08x}", u32::from(addr))
}

/// `flock` without blocking: true when we got it.
fn try_lock(f: &File) -> bool {
    // SAFETY: plain syscall on an open file.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// A blocking exclusive `flock`, released when the file is dropped.
pub(crate) fn lock(path: &Path) -> Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io("opening a lock file under /run/cellblock/net"))?;
    // SAFETY: plain syscall on an open file.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(Error::io("locking under /run/cellblock/net")(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(f)
}

/// This process's leases on one bridge.
#[derive(Debug)]
pub(crate) struct Leases {
    pub(crate) dir: PathBuf,
    owner: String,
    /// The owner file, locked while we live.
    _owner_lock: File,
    range: (u32, u32),
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    next: u32,
    held: HashSet<u32>,
}

/// A stale lease found by [`Leases::sweep`].
pub(crate) struct Stale {
    pub(crate) addr: Ipv4Addr,
}

impl Leases {
    /// Registers this process as an owner on the bridge's directory.
    pub(crate) fn open(bridge: &str, range: (u32, u32)) -> Result<Leases> {
        Leases::open_in(Path::new(RUN_DIR), bridge, range)
    }

    /// [`open`](Self::open) under another root directory (tests).
    pub(crate) fn open_in(root: &Path, bridge: &str, range: (u32, u32)) -> Result<Leases> {
        let dir = root.join(bridge);
        fs::create_dir_all(dir.join("lease"))
            .map_err(Error::io("creating /run/cellblock/net/<bridge>"))?;
        let owner = format!("{}.{:016x}", std::process::id(), fastrand::u64(..));
        let path = dir.join(format!("owner.{owner}"));
        let f = lock(&path)?;
        Ok(Leases {
            dir,
            owner,
            _owner_lock: f,
            range,
            state: Mutex::new(State {
                next: range.0,
                held: HashSet::new(),
            }),
        })
    }

    /// Claims a free address (atomically against every other supervisor of the bridge).
    pub(crate) fn claim(&self) -> Result<Ipv4Addr> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (lo, hi) = self.range;
        let span = hi - lo + 1;
        for _ in 0..span {
            let a = st.next;
            st.next = if a >= hi { lo } else { a + 1 };
            if st.held.contains(&a) {
                continue;
            }
            let addr = Ipv4Addr::from(a);
            let path = self.dir.join("lease").join(addr.to_string());
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = writeln!(f, "owner={}", self.owner);
                    st.held.insert(a);
                    return Ok(addr);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("creating a lease file")(e)),
            }
        }
        Err(Error::BadNetwork {
            field: "subnet",
            reason: format!(
                "every address of the subnet is leased ({span} addresses); choose a larger subnet"
            ),
        })
    }

    /// Gives an address back (after its namespace and rules are gone).
    pub(crate) fn release(&self, addr: Ipv4Addr) {
        let _ = fs::remove_file(self.dir.join("lease").join(addr.to_string()));
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.held.remove(&u32::from(addr));
    }

    /// The leases whose owner is dead (their files are removed by [`finish_sweep`]).
    pub(crate) fn stale(&self) -> Vec<Stale> {
        let Ok(entries) = fs::read_dir(self.dir.join("lease")) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let Some(addr) = e
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            let owner = fs::read_to_string(e.path()).ok().and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("owner=").map(String::from))
            });
            let alive = match owner {
                Some(o) if o == self.owner => true,
                Some(o) => self.owner_alive(&o),
                // Being written by its owner right now (created, not yet written): leave it.
                None => true,
            };
            if !alive {
                out.push(Stale { addr });
            }
        }
        out
    }

    /// Whether the supervisor `owner` still holds its lock.
    fn owner_alive(&self, owner: &str) -> bool {
        match File::open(self.dir.join(format!("owner.{owner}"))) {
            Ok(f) => !try_lock(&f),
            Err(_) => false,
        }
    }

    /// Removes the lease files of `stale` and the owner files of dead supervisors.
    pub(crate) fn finish_sweep(&self, stale: &[Stale]) {
        for s in stale {
            let _ = fs::remove_file(self.dir.join("lease").join(s.addr.to_string()));
        }
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                let Some(o) = name.to_str().and_then(|n| n.strip_prefix("owner.")) else {
                    continue;
                };
                if o != self.owner && !self.owner_alive(o) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    /// Whether another live supervisor uses the bridge.
    pub(crate) fn others_alive(&self) -> bool {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return false;
        };
        entries.flatten().any(|e| {
            let name = e.file_name();
            name.to_str()
                .and_then(|n| n.strip_prefix("owner."))
                .is_some_and(|o| o != self.owner && self.owner_alive(o))
        })
    }

    /// The number of lease files (any owner).
    pub(crate) fn count(&self) -> usize {
        fs::read_dir(self.dir.join("lease"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cellblock-lease-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn range(a: [u8; 4], b: [u8; 4]) -> (u32, u32) {
        (u32::from(Ipv4Addr::from(a)), u32::from(Ipv4Addr::from(b)))
    }

    #[test]
    fn two_supervisors_never_get_the_same_address() {
        let r = root("unique");
        let rg = range([10, 9, 0, 2], [10, 9, 0, 9]);
        let a = Leases::open_in(&r, "br", rg).unwrap();
        let b = Leases::open_in(&r, "br", rg).unwrap();
        let mut got = HashSet::new();
        for i in 0..8 {
            let l = if i % 2 == 0 { &a } else { &b };
            assert!(
                got.insert(l.claim().unwrap()),
                "an address was handed out twice"
            );
        }
        // The subnet is full: a typed error naming the field.
        assert!(matches!(
            a.claim(),
            Err(Error::BadNetwork {
                field: "subnet",
                ..
            })
        ));
        // A released address comes back.
        let first = Ipv4Addr::new(10, 9, 0, 2);
        a.release(first);
        assert_eq!(b.claim().unwrap(), first);
        assert!(
            a.stale().is_empty() && b.stale().is_empty(),
            "both owners live"
        );
        let _ = fs::remove_dir_all(&r);
    }

    #[test]
    fn a_dead_owners_leases_are_stale_and_swept() {
        let r = root("stale");
        let rg = range([10, 9, 1, 2], [10, 9, 1, 200]);
        let dead = Leases::open_in(&r, "br", rg).unwrap();
        let held = [dead.claim().unwrap(), dead.claim().unwrap()];
        // Its lock goes with it, its lease files stay (as after a SIGKILL: the kernel
        // drops the flock, nobody removes the files).
        drop(dead);
        let next = Leases::open_in(&r, "br", rg).unwrap();
        let mut stale: Vec<Ipv4Addr> = next.stale().iter().map(|s| s.addr).collect();
        stale.sort();
        assert_eq!(stale, held);
        let s = next.stale();
        next.finish_sweep(&s);
        assert_eq!(next.count(), 0);
        assert!(!next.others_alive());
        // Only our own owner file is left.
        let owners = fs::read_dir(r.join("br"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("owner."))
            .count();
        assert_eq!(owners, 1);
        let _ = fs::remove_dir_all(&r);
    }

    #[test]
    fn veth_names_fit_an_interface_name() {
        let n = veth_name(Ipv4Addr::new(10, 201, 255, 254));
        assert_eq!(n, "cb0ac9fffe");
        assert!(n.len() <= 15);
    }
}
