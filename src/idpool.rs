//! Host id blocks for the default identity: each container of a privileged supervisor gets
//! a user namespace whose ids 0..65536 are a block of unprivileged host ids that no other
//! live container holds.
//!
//! ## Why a block per container
//! A container's root must not be host uid 0 (uid 0 owns device nodes, sysfs, sysctls,
//! cgroupfs, 0600 files and sockets, whatever capabilities are dropped), and two containers
//! must not share host ids either: processes with the same host uid may signal and ptrace
//! each other and read each other's 0600 files. So a privileged supervisor maps each
//! container's `0..65536` to a block of its own, like podman's `--userns=auto` and LXC's
//! unprivileged containers.
//!
//! ## Who holds a block
//! Blocks are taken from a range (by default host ids `2^30 .. 2^31`, 16,384 blocks; see
//! [`set_id_pool`]). Several supervisors on one host coordinate through one lock file per
//! pool, `/run/cellblock/ids-<first>-<blocks>.lock`: block `i` is ours while we hold an
//! open-file-description lock (`F_OFD_SETLK`) on byte `i` of it. The kernel drops the locks
//! when our process dies, however it dies, and one descriptor holds all of them (a file
//! per block would cost a descriptor per live container). A supervisor keeps the locks of
//! the blocks it has used and hands them to its next containers, so only a block's first
//! use costs a lock call.
//!
//! A block goes back to this process's free list when its container has been reaped.
//! Containers with a PID namespace are then surely gone (the kernel killed everything in it
//! with its init), so their block is reused at once. A container without one may have left
//! a process behind (a daemon that reparented to the host's init), still running with the
//! block's ids: such a block is reused only after a scan of `/proc` finds no process owned
//! by one of its ids, and only when no never-used block is left.

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use crate::error::{Error, Result};
use crate::sys;

/// Ids per block: a container's ids `0..65536`, like podman's and LXC's defaults.
pub const ID_BLOCK: u32 = 65_536;

/// The range of host ids the default identity takes blocks from (see [`set_id_pool`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdPool {
    /// The first host id of the first block.
    pub first: u32,
    /// How many blocks of [`ID_BLOCK`] ids the pool has.
    pub blocks: u32,
}

impl IdPool {
    /// Host ids `2^30 .. 2^31`: far above the ids distributions give users and
    /// `/etc/subuid` ranges (which start at 100000), below 2^31 (tools that keep ids in a
    /// signed int), 16,384 blocks.
    pub const DEFAULT: IdPool = IdPool {
        first: 1 << 30,
        blocks: 1 << 14,
    };

    fn check(&self) -> Result<()> {
        let end = (self.first as u64) + (self.blocks as u64) * (ID_BLOCK as u64);
        if self.blocks == 0 || end > u32::MAX as u64 {
            return Err(Error::BadConfig(format!(
                "id pool from {} with {} blocks of {ID_BLOCK}: empty or past the 32-bit id space",
                self.first, self.blocks
            )));
        }
        if (self.first as u64) < ID_BLOCK as u64 {
            return Err(Error::BadConfig(format!(
                "id pool from {}: it would include host ids below {ID_BLOCK} (uid 0 and the system's users)",
                self.first
            )));
        }
        Ok(())
    }
}

/// Sets the range of host ids that containers' default user namespaces are taken from.
///
/// Every supervisor on a host that shares a range coordinates through lock files in
/// `/run/cellblock/ids`, so giving two programs the same range is safe; giving them
/// overlapping but different ranges is not (their lock files name different blocks).
/// Fails if a block of the current range is in use (call it before the first spawn).
pub fn set_id_pool(pool: IdPool) -> Result<()> {
    pool.check()?;
    let mut s = state();
    if s.pool == pool {
        return Ok(());
    }
    if s.leased > 0 {
        return Err(Error::BadConfig(format!(
            "set_id_pool: {} containers hold blocks of the current pool; set the pool before spawning",
            s.leased
        )));
    }
    *s = State::new(pool);
    Ok(())
}

/// The current id pool.
pub fn id_pool() -> IdPool {
    state().pool
}

/// A block we hold the lock of (a byte of the pool's lock file).
#[derive(Debug)]
struct Held {
    index: u32,
}

#[derive(Debug)]
struct State {
    pool: IdPool,
    /// Blocks whose containers are surely gone.
    free: Vec<Held>,
    /// Blocks whose containers had no PID namespace (a process may have outlived them).
    dirty: VecDeque<Held>,
    /// Where the search for a block nobody holds goes on.
    next: u32,
    /// Blocks lent to live containers.
    leased: usize,
    /// The pool's lock file, opened at the first lease and kept: closing it would drop
    /// every lock of this process.
    lock_file: Option<File>,
    /// Bitmap of the blocks whose lock this process holds (lent or on a list): our own
    /// OFD locks do not conflict with each other, so this is what keeps them apart.
    mine: Vec<u64>,
}

impl State {
    fn new(pool: IdPool) -> State {
        State {
            pool,
            free: Vec::new(),
            dirty: VecDeque::new(),
            // Processes started together should not all race for block 0.
            next: std::process::id() % pool.blocks,
            leased: 0,
            lock_file: None,
            mine: vec![0; pool.blocks.div_ceil(64) as usize],
        }
    }
}

fn state() -> std::sync::MutexGuard<'static, State> {
    static STATE: LazyLock<Mutex<State>> =
        LazyLock::new(|| Mutex::new(State::new(IdPool::DEFAULT)));
    // A poisoned lock only means a panic elsewhere while holding it; the state is a
    // plain list of held locks and stays consistent.
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where the lock files live.
fn lock_dir() -> PathBuf {
    PathBuf::from("/run/cellblock")
}

/// A block lent to one container; returned to the pool when dropped (after the container
/// has been reaped).
#[derive(Debug)]
pub(crate) struct Lease {
    held: Option<Held>,
    first: u32,
    /// The container had a PID namespace: nothing of it outlives its reaping.
    contained: bool,
}

impl Lease {
    /// The first host id of the block (container id 0).
    pub(crate) fn first(&self) -> u32 {
        self.first
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(h) = self.held.take() {
            let mut s = state();
            s.leased = s.leased.saturating_sub(1);
            if s.pool.first.wrapping_add(h.index.wrapping_mul(ID_BLOCK)) != self.first {
                // The pool was changed meanwhile (only possible with no lease out, so
                // never): drop the lock.
                return;
            }
            if self.contained {
                s.free.push(h);
            } else {
                s.dirty.push_back(h);
            }
        }
    }
}

/// Lends a block to a new container. `contained`: it has a PID namespace (see the module
/// docs).
pub(crate) fn lease(contained: bool) -> Result<Lease> {
    let mut s = state();
    let pool = s.pool;
    let held = match s.free.pop() {
        Some(h) => h,
        None => match take_unheld(&mut s)? {
            Some(h) => h,
            None => match reuse_dirty(&mut s) {
                Some(h) => h,
                None => {
                    return Err(Error::IdPool {
                        reason: format!(
                            "all {} blocks of {ID_BLOCK} host ids from {} are held by live containers or other supervisors (set_id_pool for a larger range)",
                            pool.blocks, pool.first
                        ),
                    })
                }
            },
        },
    };
    s.leased += 1;
    Ok(Lease {
        first: pool.first + held.index * ID_BLOCK,
        held: Some(held),
        contained,
    })
}

/// Locks a block that no process holds, searching from where the last search ended.
fn take_unheld(s: &mut State) -> Result<Option<Held>> {
    let pool = s.pool;
    if s.lock_file.is_none() {
        let dir = lock_dir();
        if let Err(e) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
        {
            return Err(Error::IdPool {
                reason: format!("creating the lock directory {}: {e}", dir.display()),
            });
        }
        let path = dir.join(format!("ids-{}-{}.lock", pool.first, pool.blocks));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| Error::IdPool {
                reason: format!("opening the lock file {}: {e}", path.display()),
            })?;
        s.lock_file = Some(file);
    }
    let Some(fd) = s.lock_file.as_ref().map(|f| f.as_fd()) else {
        return Err(Error::IdPool {
            reason: "the pool's lock file is not open".into(),
        });
    };
    for _ in 0..pool.blocks {
        let index = s.next;
        s.next = (s.next + 1) % pool.blocks;
        let (word, bit) = ((index / 64) as usize, 1u64 << (index % 64));
        if s.mine[word] & bit != 0 {
            continue;
        }
        let Err(e) = sys::ofd_lock_byte(fd, index as libc::off_t) else {
            s.mine[word] |= bit;
            return Ok(Some(Held { index }));
        };
        match e.raw_os_error() {
            // Held by another supervisor: try the next block.
            Some(libc::EAGAIN) | Some(libc::EACCES) => continue,
            _ => {
                return Err(Error::IdPool {
                    reason: format!("locking block {index} of the pool: {e}"),
                })
            }
        }
    }
    Ok(None)
}

/// A block of a container without a PID namespace whose ids no process uses any more.
fn reuse_dirty(s: &mut State) -> Option<Held> {
    if s.dirty.is_empty() {
        return None;
    }
    let in_use = live_id_owners();
    let pool = s.pool;
    let pos = s.dirty.iter().position(|h| {
        let first = pool.first + h.index * ID_BLOCK;
        !in_use
            .iter()
            .any(|&uid| uid >= first && uid - first < ID_BLOCK)
    })?;
    s.dirty.remove(pos)
}

/// The owners of `/proc/<pid>` directories: each process's effective uid (non-dumpable
/// processes show as root, which is outside every block).
fn live_id_owners() -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| {
            e.file_name()
                .as_encoded_bytes()
                .iter()
                .all(u8::is_ascii_digit)
        })
        .filter_map(|e| e.metadata().ok().map(|m| m.uid()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_bounds_are_checked() {
        assert!(IdPool::DEFAULT.check().is_ok());
        assert!(IdPool {
            first: 0,
            blocks: 1
        }
        .check()
        .is_err());
        assert!(IdPool {
            first: 1 << 20,
            blocks: 0
        }
        .check()
        .is_err());
        assert!(IdPool {
            first: u32::MAX - ID_BLOCK,
            blocks: 2
        }
        .check()
        .is_err());
    }
}
