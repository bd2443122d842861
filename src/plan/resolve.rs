//! The one PATH search and executable check: the program and the working directory,
//! looked up where the container will see them (the host's file systems, the root
//! filesystem through the container's mounts, or a joined mount namespace), in the parent,
//! so that the child calls plain `execve` (execvp may allocate) and a missing program is a
//! clear error up front.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::fs::{container_path, Layer, Model, RealHost};
use crate::error::{Error, Result};

/// The search path when the environment has none (the root filesystem's, or the host's
/// when the supervisor has none either).
const FALLBACK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Where the program and working directory are looked up.
#[derive(Clone, Copy)]
pub(crate) enum Place<'a> {
    /// The host's file systems, as the supervisor sees them.
    Host,
    /// Another container's mount namespace: nothing can be checked from here (execve and
    /// chdir report).
    Joined,
    /// Inside the root filesystem, through the container's mounts.
    Root(&'a Model),
}

/// Resolves `program` the way a shell would, in `env`'s `PATH`, at `place`.
pub(crate) fn program(
    program: &OsStr,
    env: &[(OsString, OsString)],
    place: Place<'_>,
) -> Result<PathBuf> {
    let bytes = program.as_bytes();
    if bytes.contains(&0) {
        return Err(Error::NulByte {
            what: "the program".into(),
            value: program.to_string_lossy().into_owned(),
        });
    }
    let path = Path::new(program);
    let env_path = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v);
    let (candidates, searched): (Vec<PathBuf>, String) = match place {
        Place::Joined => {
            return if path.is_absolute() {
                Ok(path.to_path_buf())
            } else {
                Err(Error::BadConfig(format!(
                    "with a joined mount namespace the program must be an absolute path inside it, not {program:?}"
                )))
            };
        }
        // A relative path is taken from the supervisor's directory, not the container's
        // working directory (execve would resolve it after chdir otherwise).
        Place::Host if bytes.contains(&b'/') => {
            let abs = if path.is_absolute() {
                path.to_path_buf()
            } else {
                std::env::current_dir()
                    .map_err(Error::io("reading the current directory"))?
                    .join(path)
            };
            (vec![abs], String::new())
        }
        Place::Host => {
            let path_var = env_path
                .cloned()
                .or_else(|| std::env::var_os("PATH"))
                .unwrap_or_else(|| FALLBACK_PATH.into());
            let dirs = std::env::split_paths(&path_var);
            let candidates = dirs.map(|d| d.join(program)).collect();
            (candidates, path_var.to_string_lossy().into_owned())
        }
        Place::Root(model) => {
            let candidates: Vec<PathBuf> = if bytes.contains(&b'/') {
                if !path.is_absolute() {
                    return Err(Error::BadConfig(format!(
                        "with a root filesystem the program must be an absolute path or a bare name, not {program:?}"
                    )));
                }
                vec![path.to_path_buf()]
            } else {
                let path_var = env_path.cloned().unwrap_or_else(|| FALLBACK_PATH.into());
                std::env::split_paths(&path_var)
                    .filter(|d| d.is_absolute())
                    .map(|d| d.join(program))
                    .collect()
            };
            let searched = format!(
                "{} inside the root filesystem {}",
                candidates
                    .iter()
                    .map(|c| c.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
                model.root.as_deref().unwrap_or(Path::new("/")).display()
            );
            (candidates, searched)
        }
    };
    let mut not_exec = None;
    for cand in &candidates {
        let found = match place {
            Place::Root(model) => in_root(model, cand, program),
            _ => check_executable(cand, program),
        };
        match found {
            Ok(()) => return Ok(cand.clone()),
            Err(e @ Error::NotExecutable { .. }) => {
                not_exec.get_or_insert(e);
            }
            Err(_) => {}
        }
    }
    Err(not_exec.unwrap_or_else(|| Error::ProgramNotFound {
        program: program.to_string_lossy().into_owned(),
        searched,
    }))
}

/// Checks container path `cand` in the root filesystem's mount table.
fn in_root(model: &Model, cand: &Path, program: &OsStr) -> Result<()> {
    match model.resolve(cand, &RealHost) {
        // Inside a kernel file system: cannot be checked from here; execve will say.
        Layer::Kernel => Ok(()),
        // Inside a file system of ours, which starts empty: there only if a file, link or
        // data file of the caller's is made at exactly this path (an empty tmpfs root
        // would otherwise "have" every program the PATH names in it).
        Layer::Fresh if model.made_here(cand) => Ok(()),
        Layer::Fresh => Err(not_found(program)),
        Layer::Host(host) => check_executable(&host, program),
    }
}

fn not_found(program: &OsStr) -> Error {
    Error::ProgramNotFound {
        program: program.to_string_lossy().into_owned(),
        searched: String::new(),
    }
}

/// Checks that host path `path` is a file the supervisor may execute.
fn check_executable(path: &Path, program: &OsStr) -> Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found(program)),
        Err(e) => {
            return Err(Error::NotExecutable {
                path: path.into(),
                reason: e.to_string(),
            })
        }
    };
    let bad = |reason: &str| {
        Err(Error::NotExecutable {
            path: path.into(),
            reason: reason.into(),
        })
    };
    if meta.is_dir() {
        return bad("is a directory");
    }
    if !meta.is_file() {
        return bad("is not a regular file");
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return bad("has no execute permission bits");
    }
    if let Err(e) = nix::unistd::access(path, nix::unistd::AccessFlags::X_OK) {
        return bad(&format!("access(X_OK): {}", e.desc()));
    }
    Ok(())
}

/// Checks the working directory `dir` at `place`, as a C string for the child's `chdir`.
pub(crate) fn cwd(dir: &Path, place: Place<'_>) -> Result<CString> {
    match place {
        Place::Joined => {} // inside another container: chdir will tell
        Place::Host => match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::BadCurrentDir {
                    path: dir.into(),
                    reason: "not a directory".into(),
                })
            }
            Err(e) => {
                return Err(Error::BadCurrentDir {
                    path: dir.into(),
                    reason: e.to_string(),
                })
            }
        },
        Place::Root(model) => {
            let inside =
                container_path(dir, "working directory").map_err(|_| Error::BadCurrentDir {
                    path: dir.into(),
                    reason: "must be an absolute path without '..' inside the root filesystem"
                        .into(),
                })?;
            if let Layer::Host(h) = model.resolve(&inside, &RealHost) {
                if !h.is_dir() {
                    return Err(Error::BadCurrentDir {
                        path: inside,
                        reason: format!("{} is not a directory", h.display()),
                    });
                }
            }
        }
    }
    CString::new(dir.as_os_str().as_bytes()).map_err(|_| Error::NulByte {
        what: "the working directory".into(),
        value: dir.to_string_lossy().into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(path: &str) -> Vec<(OsString, OsString)> {
        vec![("PATH".into(), path.into())]
    }

    /// A root filesystem whose /bin is a tmpfs of ours holding one file, and /proc.
    fn model() -> Model {
        let mut m = Model::new(Some(PathBuf::from("/nonexistent/root")));
        m.push("/bin".into(), Layer::Fresh);
        m.file("/bin/tool".into());
        m.push("/proc".into(), Layer::Kernel);
        m
    }

    #[test]
    fn in_a_root_filesystem_the_path_is_searched_through_its_mounts() {
        let m = model();
        let found = program(OsStr::new("tool"), &env("relative:/bin"), Place::Root(&m));
        assert_eq!(found.unwrap(), Path::new("/bin/tool"));
        // A tmpfs of ours is empty but for what the caller made in it.
        let err = program(OsStr::new("sh"), &env("/bin"), Place::Root(&m)).unwrap_err();
        match err {
            Error::ProgramNotFound { program, searched } => {
                assert_eq!(program, "sh");
                assert_eq!(
                    searched,
                    "/bin/sh inside the root filesystem /nonexistent/root"
                );
            }
            e => panic!("{e:?}"),
        }
        // Inside a kernel file system nothing can be checked: execve will say.
        let found = program(OsStr::new("/proc/self/exe"), &[], Place::Root(&m));
        assert_eq!(found.unwrap(), Path::new("/proc/self/exe"));
        let err = program(OsStr::new("bin/tool"), &[], Place::Root(&m)).unwrap_err();
        assert!(matches!(err, Error::BadConfig(m) if m.contains("absolute path or a bare name")));
    }

    #[test]
    fn in_a_joined_mount_namespace_only_absolute_paths_are_taken() {
        let found = program(OsStr::new("/usr/bin/x"), &[], Place::Joined).unwrap();
        assert_eq!(found, Path::new("/usr/bin/x"));
        let err = program(OsStr::new("x"), &[], Place::Joined).unwrap_err();
        assert!(matches!(err, Error::BadConfig(m) if m.contains("joined mount namespace")));
        assert_eq!(
            cwd(Path::new("/anywhere"), Place::Joined)
                .unwrap()
                .as_bytes(),
            b"/anywhere"
        );
    }

    #[test]
    fn a_nul_byte_in_the_program_is_refused_everywhere() {
        let m = model();
        for place in [Place::Host, Place::Joined, Place::Root(&m)] {
            let err = program(OsStr::new("a\0b"), &[], place).unwrap_err();
            assert!(
                matches!(&err, Error::NulByte { what, .. } if what == "the program"),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_working_directory_in_the_root_must_be_absolute_without_dotdot() {
        let m = model();
        for dir in ["tmp", "/a/../b"] {
            let err = cwd(Path::new(dir), Place::Root(&m)).unwrap_err();
            assert!(matches!(err, Error::BadCurrentDir { .. }), "{dir}");
        }
        // In a file system of ours: created by then or not, chdir will tell.
        assert!(cwd(Path::new("/bin"), Place::Root(&m)).is_ok());
    }
}
