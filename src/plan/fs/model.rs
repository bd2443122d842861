//! The mount table as the parent models it: what each container path will show once the
//! mounts are applied. The compiler builds it while it compiles (and checks every step
//! against it); the finished model is what the program and working directory are then
//! looked up in (`plan::resolve`), so both see the same mounts.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use super::host::Host;
use crate::error::{Error, Result};

/// What a container path shows: what a mount puts there, and what a lookup finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Layer {
    /// A host path (a bind source, or the root filesystem).
    Host(PathBuf),
    /// A file system the child creates (tmpfs, the child-built `/dev`): empty at first, and
    /// the child may create mount points in it.
    Fresh,
    /// A kernel file system (proc, sysfs, mqueue) or the read-only `/dev` template:
    /// nothing can be checked or created inside.
    Kernel,
}

/// The mount table, in application order.
#[derive(Debug, Default)]
pub(crate) struct Model {
    /// The root filesystem (canonical host path), if any.
    pub(crate) root: Option<PathBuf>,
    /// (container dst, what is there); later entries shadow earlier ones.
    mounts: Vec<(PathBuf, Layer)>,
    /// Symbolic links this container created (`symlink`): (where, target).
    links: Vec<(PathBuf, PathBuf)>,
    /// Files this container created (`file`, `bind_data`).
    files: Vec<PathBuf>,
}

impl Model {
    pub(crate) fn new(root: Option<PathBuf>) -> Model {
        Model {
            root,
            ..Model::default()
        }
    }

    /// Records a mount at `dst`: it hides the links and files we made under it.
    pub(crate) fn push(&mut self, dst: PathBuf, layer: Layer) {
        self.links.retain(|(l, _)| !l.starts_with(&dst));
        self.files.retain(|f| !f.starts_with(&dst));
        self.mounts.push((dst, layer));
    }

    /// Records a link this container made.
    pub(crate) fn link(&mut self, at: PathBuf, target: PathBuf) {
        self.links.push((at, target));
    }

    /// Records a file this container made.
    pub(crate) fn file(&mut self, at: PathBuf) {
        self.files.push(at);
    }

    /// Whether a file, link or data file of ours is at exactly `p` (a file system of ours
    /// starts empty: anything else in it is not there).
    pub(crate) fn made_here(&self, p: &Path) -> bool {
        self.files.iter().any(|f| f == p) || self.links.iter().any(|(l, _)| l == p)
    }

    /// Container path `p` with every link of ours on its way replaced by its target (as
    /// the kernel would resolve it inside the container), so that the child never walks
    /// through a link before the root change. `None`: too many links (a loop).
    pub(crate) fn resolve_ours(&self, p: &Path) -> Option<PathBuf> {
        if self.links.is_empty() {
            return Some(p.to_path_buf());
        }
        walk(p, |next| {
            self.links
                .iter()
                .rev()
                .find(|(l, _)| l == next)
                .map(|(_, t)| t.clone())
        })
    }

    /// Like [`view`](Self::view) but following the host's symlinks the way the kernel will
    /// inside the container (absolute targets from the container's root), so that e.g.
    /// `/bin/sh` through a `bin -> usr/bin` link finds the host's `/usr/bin/sh` of a `/usr`
    /// bind. A loop of links ends the walk where it is.
    pub(crate) fn resolve(&self, p: &Path, host: &dyn Host) -> Layer {
        let mut last = None;
        let found = walk(p, |next| match self.view(next) {
            Layer::Host(h) => {
                let target = host.read_link(&h).ok();
                last = Some(h);
                target
            }
            _ => None,
        });
        match found {
            Some(path) => self.view(&path),
            None => Layer::Host(last.unwrap_or_default()),
        }
    }

    /// The host directory under which `p`'s view lies (the bind source covering it, or
    /// the root filesystem), for containment checks.
    pub(crate) fn host_base(&self, p: &Path) -> Option<&Path> {
        match self.covering(p) {
            Some((_, Layer::Host(src))) => Some(src),
            Some(_) => None,
            None => self.root.as_deref(),
        }
    }

    /// The mount that `p` lies in: the most recent one whose destination is a prefix of
    /// `p` (a later mount on the same or a deeper path hides what was there).
    fn covering(&self, p: &Path) -> Option<(&PathBuf, &Layer)> {
        let mut best: Option<(&PathBuf, &Layer)> = None;
        for (dst, layer) in self.mounts.iter() {
            if p.starts_with(dst) {
                match best {
                    Some((b, _)) if b.components().count() > dst.components().count() => {}
                    _ => best = Some((dst, layer)),
                }
            }
        }
        best
    }

    /// What container path `p` shows (no links followed).
    pub(crate) fn view(&self, p: &Path) -> Layer {
        match self.covering(p) {
            Some((dst, Layer::Host(src))) => {
                let rest = p.strip_prefix(dst).unwrap_or(Path::new(""));
                Layer::Host(if rest.as_os_str().is_empty() {
                    src.clone()
                } else {
                    src.join(rest)
                })
            }
            Some((_, layer)) => layer.clone(),
            None => Layer::Host(self.pre_pivot(p)),
        }
    }

    /// The absolute path the child uses for container path `p` before the root change.
    pub(crate) fn pre_pivot(&self, p: &Path) -> PathBuf {
        match &self.root {
            Some(r) => r.join(p.strip_prefix("/").unwrap_or(p)),
            None => p.to_path_buf(),
        }
    }
}

/// Walks container path `p` component by component from `/`, replacing each prefix for
/// which `link` gives a target by that target (relative to the prefix's parent, or to `/`
/// when absolute). `None` after 40 links (a loop), as the kernel's ELOOP.
fn walk(p: &Path, mut link: impl FnMut(&Path) -> Option<PathBuf>) -> Option<PathBuf> {
    let mut path = PathBuf::from("/");
    let mut rest: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            _ => None,
        })
        .rev()
        .collect();
    let mut hops = 0;
    while let Some(name) = rest.pop() {
        if name == ".." {
            path.pop();
            continue;
        }
        let next = path.join(&name);
        if let Some(target) = link(&next) {
            hops += 1;
            if hops > 40 {
                return None;
            }
            if target.is_absolute() {
                path = PathBuf::from("/");
            }
            for c in target.components().rev() {
                match c {
                    Component::Normal(n) => rest.push(n.to_os_string()),
                    Component::ParentDir => rest.push("..".into()),
                    _ => {}
                }
            }
            continue;
        }
        path = next;
    }
    Some(path)
}

/// A destination inside the container, checked and normalised: absolute, no `..`.
pub(crate) fn container_path(dst: &Path, what: &'static str) -> Result<PathBuf> {
    if !dst.is_absolute() {
        return Err(Error::BadMount {
            what,
            path: dst.into(),
            reason: "must be an absolute path inside the container".into(),
        });
    }
    let mut out = PathBuf::from("/");
    for c in dst.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::BadMount {
                    what,
                    path: dst.into(),
                    reason: "must not contain '..'".into(),
                })
            }
        }
    }
    Ok(out)
}
