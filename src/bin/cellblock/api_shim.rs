//! TEMPORARY: the library API of api14.md (Detached, Created, create/start_fifo/
//! cgroup_path), stubbed so the binary compiles until the lead's API lands on main.
//! Removed at the merge.
#![allow(dead_code)]
use cellblock::{Container, ContainerBuilder, Error, Result, Signal};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

fn todo() -> Error {
    Error::Unsupported("the library's create/detach API is not merged yet".into())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detached {
    pub pid: i32,
    pub start_time: u64,
    pub cgroup_dirs: Vec<PathBuf>,
    pub start_fifo: Option<PathBuf>,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetachedState {
    Created,
    Running,
    Paused,
    Stopped,
}
impl Detached {
    pub fn state(&self) -> DetachedState {
        DetachedState::Stopped
    }
    pub fn start(&self) -> Result<()> {
        Err(todo())
    }
    pub fn signal(&self, _s: Signal) -> Result<()> {
        Err(todo())
    }
    pub fn signal_all(&self, _s: Signal) -> Result<()> {
        Err(todo())
    }
    pub fn pids(&self) -> Result<Vec<i32>> {
        Err(todo())
    }
    pub fn pause(&self) -> Result<()> {
        Err(todo())
    }
    pub fn resume(&self) -> Result<()> {
        Err(todo())
    }
    pub fn destroy(&self) -> Result<()> {
        Ok(())
    }
}
pub struct Created;
impl Created {
    pub fn pid(&self) -> i32 {
        0
    }
    pub fn take_pty_fd(&mut self) -> Option<OwnedFd> {
        None
    }
    pub async fn start(self) -> Result<Container> {
        Err(todo())
    }
    pub fn detach(self) -> Result<Detached> {
        Err(todo())
    }
}
pub trait BuilderExt {
    fn cgroup_path(&mut self, p: impl Into<PathBuf>) -> &mut Self;
    fn start_fifo(&mut self, p: impl Into<PathBuf>) -> &mut Self;
    #[allow(async_fn_in_trait)]
    async fn create(&mut self) -> Result<Created>;
}
impl BuilderExt for ContainerBuilder {
    fn cgroup_path(&mut self, _p: impl Into<PathBuf>) -> &mut Self {
        self
    }
    fn start_fifo(&mut self, _p: impl Into<PathBuf>) -> &mut Self {
        self
    }
    async fn create(&mut self) -> Result<Created> {
        Err(todo())
    }
}
