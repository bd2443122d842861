//! OCI hooks. PLACEHOLDER (lifecycle branch): runs nothing; the hooks helper's hooks.rs
//! replaces this file at merge, with the same names.

/// Which point of the lifecycle a hook list belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
#[error("{kind:?} hook failed: {msg}")]
pub struct HookError {
    pub kind: HookKind,
    pub msg: String,
}

/// Runs `hooks` in order with `state_json` on their stdin. Placeholder: does nothing.
pub fn run_hooks(
    _kind: HookKind,
    _hooks: &[oci_spec::runtime::Hook],
    _state_json: &str,
) -> Result<(), HookError> {
    Ok(())
}
