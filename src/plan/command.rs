//! The command: the program resolved, its argv and environment as C strings, the working
//! directory and the UTS names, checked before anything is opened.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use super::arena::CStrArray;
use super::fs::PreparedFs;
use super::{namespaces, resolve, Ctx};
use crate::builder::ContainerBuilder;
use crate::error::{Error, Result};
use crate::Namespaces;

/// The kernel's HOST_NAME_MAX (and the UTS domain name limit).
const UTS_NAME_MAX: usize = 64;

/// What the child execs, and where.
pub(super) struct PreparedCommand {
    pub(super) path: CString,
    pub(super) args: CStrArray,
    pub(super) env: CStrArray,
    pub(super) hostname: Option<CString>,
    pub(super) domainname: Option<CString>,
    pub(super) cwd: Option<CString>,
}

/// Resolves the program (inside the root filesystem or a joined mount namespace when
/// there is one) and builds every C string the child passes to the kernel.
pub(super) fn prepare(b: &ContainerBuilder, ctx: &Ctx, fs: &PreparedFs) -> Result<PreparedCommand> {
    let env = build_env(b)?;
    // With a root filesystem or a joined mount namespace, the program and the working
    // directory are paths inside the container.
    let place = match fs.root_model() {
        Some(model) => resolve::Place::Root(model),
        None if ctx.joined.contains(Namespaces::MOUNT) => resolve::Place::Joined,
        None => resolve::Place::Host,
    };
    let path = resolve::program(&b.program, &env, place)?;
    let cwd = b
        .cwd
        .as_ref()
        .map(|dir| resolve::cwd(dir, place))
        .transpose()?;

    let args: Vec<CString> = std::iter::once(b.arg0.as_ref().unwrap_or(&b.program))
        .chain(b.args.iter())
        .enumerate()
        .map(|(i, a)| {
            cstring(a, || {
                if i == 0 {
                    "the program".into()
                } else {
                    format!("argument {i}")
                }
            })
        })
        .collect::<Result<_>>()?;
    let env: Vec<CString> = env
        .into_iter()
        .map(|(k, v)| {
            // `KEY=value` built once, with room for the NUL: no second copy.
            let mut kv = Vec::with_capacity(k.len() + v.len() + 2);
            kv.extend_from_slice(k.as_bytes());
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).map_err(|e| Error::NulByte {
                what: format!("environment variable {}", k.to_string_lossy()),
                value: String::from_utf8_lossy(&e.into_vec()).into_owned(),
            })
        })
        .collect::<Result<_>>()?;
    let hostname = b
        .hostname
        .as_ref()
        .map(|h| cstring(h, || "the hostname".into()))
        .transpose()?;
    let domainname = b
        .domainname
        .as_ref()
        .map(|h| cstring(h, || "the domain name".into()))
        .transpose()?;
    Ok(PreparedCommand {
        path: cstring(path.as_os_str(), || "the program path".into())?,
        args: CStrArray::new(args),
        env: CStrArray::new(env),
        hostname,
        domainname,
        cwd,
    })
}

pub(super) fn validate(b: &ContainerBuilder) -> Result<()> {
    if b.program.is_empty() {
        return Err(Error::EmptyProgram);
    }
    // A joined UTS namespace is renamed as a created one is (OCI: a `uts` namespace with a
    // `path` and a `hostname`, which runc sets there too): the caller asked for both.
    let joined = b
        .join
        .joins
        .iter()
        .fold(Namespaces::empty(), |acc, j| acc | j.namespaces);
    for (what, name) in [("hostname", &b.hostname), ("domainname", &b.domainname)] {
        if let Some(name) = name {
            if !(b.namespaces | joined).contains(Namespaces::UTS) {
                return Err(Error::NeedsNamespace {
                    option: what,
                    needs: Namespaces::UTS,
                });
            }
            if name.len() > UTS_NAME_MAX {
                return Err(Error::NameTooLong {
                    what,
                    len: name.len(),
                    max: UTS_NAME_MAX,
                });
            }
        }
    }
    let missing = namespaces::unsupported(b.namespaces);
    if !missing.is_empty() {
        return Err(Error::NamespaceUnsupported {
            namespaces: missing,
        });
    }
    for key in b.env.keys() {
        if key.is_empty() || key.as_bytes().contains(&b'=') {
            return Err(Error::BadEnvName {
                name: key.to_string_lossy().into_owned(),
            });
        }
    }
    Ok(())
}

/// The workload's environment: the base the builder chose (by default only `PATH`, and
/// `TERM` with a pty; the supervisor's own with `env_inherit`; nothing with `env_clear`)
/// with the builder's variables applied over it.
fn build_env(b: &ContainerBuilder) -> Result<Vec<(OsString, OsString)>> {
    use crate::builder::{EnvBase, DEFAULT_PATH};
    let mut env: std::collections::BTreeMap<OsString, OsString> = match b.env_base {
        EnvBase::Empty => Default::default(),
        EnvBase::Inherit => std::env::vars_os().collect(),
        EnvBase::Minimal => {
            let mut m = std::collections::BTreeMap::new();
            m.insert("PATH".into(), DEFAULT_PATH.into());
            if b.session.pty.is_some() {
                // The terminal type: what the user's real terminal is, we cannot know;
                // xterm is what nearly every terminal emulates (Docker's choice for -t).
                m.insert("TERM".into(), "xterm".into());
            }
            m
        }
    };
    for (k, v) in &b.env {
        match v {
            Some(v) => env.insert(k.clone(), v.clone()),
            None => env.remove(k),
        };
    }
    Ok(env.into_iter().collect())
}

fn cstring(s: &OsStr, what: impl FnOnce() -> String) -> Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| Error::NulByte {
        what: what(),
        value: s.to_string_lossy().into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(program: &str) -> ContainerBuilder {
        ContainerBuilder::new(program)
    }

    /// Each refusal names what was wrong; a plain configuration passes.
    #[test]
    fn validation_names_what_is_wrong() {
        assert!(validate(&builder("/bin/true")).is_ok());
        assert!(matches!(validate(&builder("")), Err(Error::EmptyProgram)));
        let mut b = builder("/bin/true");
        b.hostname("box");
        assert!(matches!(
            validate(&b),
            Err(Error::NeedsNamespace { option: "hostname", needs }) if needs == Namespaces::UTS
        ));
        b.namespaces(Namespaces::UTS);
        assert!(validate(&b).is_ok());
        b.hostname("h".repeat(UTS_NAME_MAX + 1));
        assert!(matches!(
            validate(&b),
            Err(Error::NameTooLong {
                what: "hostname",
                len: 65,
                max: UTS_NAME_MAX
            })
        ));
        b.hostname("h".repeat(UTS_NAME_MAX))
            .domainname("d".repeat(UTS_NAME_MAX + 1));
        assert!(matches!(
            validate(&b),
            Err(Error::NameTooLong {
                what: "domainname",
                ..
            })
        ));
        for bad in ["", "A=B"] {
            let mut b = builder("/bin/true");
            b.env(bad, "v");
            assert!(
                matches!(validate(&b), Err(Error::BadEnvName { ref name }) if name == bad),
                "{bad:?}"
            );
        }
    }

    /// The workload's environment: PATH only by default (TERM too with a pty), nothing
    /// after env_clear, the supervisor's after env_inherit; the builder's variables and
    /// removals apply over each base.
    #[test]
    fn the_environment_starts_from_the_chosen_base() {
        let env = |b: &ContainerBuilder| -> Vec<(String, String)> {
            build_env(b)
                .unwrap()
                .into_iter()
                .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
                .collect()
        };
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        let mut b = builder("/bin/true");
        assert_eq!(env(&b), [pair("PATH", crate::DEFAULT_PATH)]);
        b.env("A", "1").env_remove("PATH");
        assert_eq!(env(&b), [pair("A", "1")]);
        let mut b = builder("/bin/true");
        b.pty();
        assert_eq!(
            env(&b),
            [pair("PATH", crate::DEFAULT_PATH), pair("TERM", "xterm")]
        );
        let mut b = builder("/bin/true");
        b.env_clear().env("X", "y");
        assert_eq!(env(&b), [pair("X", "y")]);
        let mut b = builder("/bin/true");
        b.env_inherit();
        assert_eq!(env(&b).len(), std::env::vars_os().count());
    }
}
