//! Hooks: user code the supervisor runs around each start and exit.

use std::time::Duration;

use async_trait::async_trait;

use super::ExitInfo;
use crate::ContainerBuilder;

/// What happens after a worker's container exits, as decided by [`Hooks::after_exit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Do what the worker's restart policy says.
    FollowPolicy,
    /// Restart after this delay, whatever the policy says.
    Restart(Duration),
    /// Do not restart this worker.
    Stop,
    /// Stop this worker and every other one: the supervisor shuts down.
    Escalate(String),
}

/// Code run by the supervisor before each start and after each exit.
///
/// Both methods have defaults, so implement only what you need:
///
/// ```
/// use cellblock::{Decision, ExitInfo, Hooks};
/// struct StopOnSegfault;
/// #[async_trait::async_trait]
/// impl Hooks for StopOnSegfault {
///     async fn after_exit(&self, _name: &str, exit: &ExitInfo) -> Decision {
///         use std::os::unix::process::ExitStatusExt;
///         match exit {
///             ExitInfo::Exited { status, .. } if status.signal() == Some(libc::SIGSEGV) => Decision::Stop,
///             _ => Decision::FollowPolicy,
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait Hooks: Send + Sync + 'static {
    /// Runs before every start (`attempt` 1 is the first); may adjust the builder (for
    /// example an environment variable with the attempt number). An `Err` refuses the start
    /// and the worker gives up with that reason.
    async fn before_start(
        &self,
        name: &str,
        attempt: u32,
        builder: &mut ContainerBuilder,
    ) -> Result<(), String> {
        let _ = (name, attempt, builder);
        Ok(())
    }

    /// Runs after every exit or failed start; decides what follows.
    async fn after_exit(&self, name: &str, exit: &ExitInfo) -> Decision {
        let _ = (name, exit);
        Decision::FollowPolicy
    }
}
