//! Converting a `std::process::Command` into a builder (`ContainerBuilder::from_std`).

use std::ffi::OsString;

use super::ContainerBuilder;

/// A builder carrying over what a `std::process::Command` says (see
/// [`ContainerBuilder::from_std`]).
impl From<std::process::Command> for ContainerBuilder {
    fn from(cmd: std::process::Command) -> ContainerBuilder {
        ContainerBuilder::from_std(&cmd)
    }
}

impl ContainerBuilder {
    /// A builder for the program of a `std::process::Command` (also `From<Command>`), so
    /// code written for std or tokio (`tokio::process::Command::as_std`) can move over.
    ///
    /// Carried over: the program, the arguments, the environment changes (`env`,
    /// `env_remove`) and whether `env_clear` was called, the working directory, and
    /// `arg0`, `uid`, `gid` and `process_group` from `std::os::unix::process::CommandExt`.
    /// std has getters for the first four only; the `env_clear` state and the `CommandExt`
    /// settings are read from the command's `{:#?}` output, the only place std shows them
    /// (its format is pinned by this crate's tests, so a change in std fails them rather
    /// than dropping a setting here).
    ///
    /// **Not** carried over (std gives no way to read them back): stdio (`Stdio` is opaque;
    /// set [`stdin`](Self::stdin)/[`stdout`](Self::stdout)/[`stderr`](Self::stderr) again),
    /// `pre_exec` closures (cellblock runs no user code in the child), supplementary
    /// groups. One difference on purpose: a std command inherits the whole environment
    /// of its parent unless `env_clear` was called; the builder keeps cellblock's clean
    /// default (`PATH` only, see [`env_inherit`](Self::env_inherit)), so the supervisor's
    /// secrets are not handed over by a conversion. No isolation is set: add namespaces
    /// and limits as for any builder.
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{ContainerBuilder, Namespaces};
    /// let mut std_cmd = std::process::Command::new("/bin/sh");
    /// std_cmd.args(["-c", "echo $GREETING"]).env("GREETING", "hi");
    /// let out = ContainerBuilder::from(std_cmd).namespaces(Namespaces::PID).output().await?;
    /// assert_eq!(out.stdout, b"hi\n");
    /// # Ok(()) }
    /// ```
    pub fn from_std(cmd: &std::process::Command) -> ContainerBuilder {
        let mut b = ContainerBuilder::new(cmd.get_program());
        b.args(cmd.get_args());
        let debug = format!("{cmd:#?}");
        if debug_field(&debug, "clear:").as_deref() == Some("true") {
            b.env_clear();
        }
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => b.env(k, v),
                None => b.env_remove(k),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            b.current_dir(dir);
        }
        let int = |name: &str| -> Option<i64> {
            debug_field(&debug, name)?
                .strip_prefix("Some(")?
                .trim_end_matches([')', ','])
                .trim()
                .parse()
                .ok()
        };
        // std's types (u32, u32, i32) bound these; anything else is no value std printed.
        if let Some(uid) = int("uid:").and_then(|v| u32::try_from(v).ok()) {
            b.uid(uid);
        }
        if let Some(gid) = int("gid:").and_then(|v| u32::try_from(v).ok()) {
            b.gid(gid);
        }
        if let Some(pgid) = int("pgroup:").and_then(|v| i32::try_from(v).ok()) {
            // A negative one is std's to refuse at spawn; here process_group refuses it.
            b.process_group(pgid);
        }
        // argv[0]: std's Debug lists it first in `args`; it differs from the program's
        // own Debug text only when `arg0` was set.
        if let Some(first) = debug_args_first(&debug) {
            if first != format!("{:?}", cmd.get_program()) {
                if let Some(arg0) = unescape_debug(&first) {
                    b.arg0(arg0);
                }
            }
        }
        b
    }
}

/// The value after `name` at the start of a line of a `{:#?}` dump of a std `Command`,
/// joined with its continuation lines up to the closing parenthesis (`Some(\n 5,\n)`).
fn debug_field(debug: &str, name: &str) -> Option<String> {
    let mut lines = debug.lines();
    let first = lines
        .by_ref()
        .find_map(|l| l.trim_start().strip_prefix(name))?
        .trim()
        .to_string();
    if !first.ends_with('(') {
        return Some(first.trim_end_matches(',').to_string());
    }
    let mut out = first;
    for l in lines {
        out.push_str(l.trim());
        if l.trim_start().starts_with(')') {
            break;
        }
    }
    Some(out)
}

/// The first entry of `args: [...]` in a `{:#?}` dump (still in Debug form, quoted).
fn debug_args_first(debug: &str) -> Option<String> {
    let mut lines = debug.lines().skip_while(|l| l.trim() != "args: [");
    lines.next()?;
    Some(lines.next()?.trim().trim_end_matches(',').to_string())
}

/// Reverses `<OsStr as Debug>`: a quoted string with Rust escapes (`\"`, `\\`, `\n`,
/// `\t`, `\r`, `\0`, `\'`, `\u{..}`, and `\xNN` for bytes that are not UTF-8).
/// `None` for anything else.
fn unescape_debug(s: &str) -> Option<OsString> {
    use std::os::unix::ffi::OsStringExt;
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = Vec::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next()? {
            '"' => out.push(b'"'),
            '\\' => out.push(b'\\'),
            '\'' => out.push(b'\''),
            'n' => out.push(b'\n'),
            't' => out.push(b'\t'),
            'r' => out.push(b'\r'),
            '0' => out.push(0),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&hex, 16).ok()?);
            }
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let c = char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => return None,
        }
    }
    Some(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    /// What std's Debug output carries comes over; the clean environment stays the default.
    #[test]
    fn a_std_command_carries_over() {
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.args(["-c", "x"])
            .env("A", "1")
            .env_remove("B")
            .current_dir("/tmp")
            .arg0("weird \"name\"\n")
            .uid(7)
            .gid(8)
            .process_group(0);
        let b = ContainerBuilder::from(cmd);
        assert_eq!(b.program, "/bin/sh");
        assert_eq!(b.args, ["-c", "x"]);
        assert_eq!(b.arg0.as_deref(), Some("weird \"name\"\n".as_ref()));
        assert_eq!(
            b.env.get(OsString::from("A").as_os_str()),
            Some(&Some("1".into()))
        );
        assert_eq!(b.env.get(OsString::from("B").as_os_str()), Some(&None));
        assert_eq!(b.cwd.as_deref(), Some("/tmp".as_ref()));
        assert_eq!(b.process_group, Some(0));
        assert_eq!(b.env_base, super::super::EnvBase::Minimal);
        let mut cleared = std::process::Command::new("true");
        cleared.env_clear();
        assert_eq!(
            ContainerBuilder::from(cleared).env_base,
            super::super::EnvBase::Empty
        );
        // No arg0 set: none carried.
        assert_eq!(
            ContainerBuilder::from(std::process::Command::new("true")).arg0,
            None
        );
    }

    #[test]
    fn debug_strings_unescape() {
        assert_eq!(unescape_debug("\"a\\\"b\\n\""), Some("a\"b\n".into()));
        assert_eq!(unescape_debug("no quotes"), None);
    }
}
