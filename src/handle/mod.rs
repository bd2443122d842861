//! The running container and what acts on it after the spawn.

pub(crate) mod session;
