//! The `cellblock` OCI runtime against runc and crun on the same busybox bundle (issue 14):
//!
//! * `run`: `RUNTIME run --bundle B ID` of `/bin/true`, one container at a time;
//! * `create_start_delete`: `create --bundle B ID`, `start ID`, `delete --force ID`, the
//!   sequence youki's README times (with hyperfine) for youki, crun and runc.
//!
//! Contenders, interleaved (one container each per round, in a rotating order, so that the
//! machine's noise hits all of them alike):
//! * `runc`;
//! * `crun`, which refuses this host's hybrid cgroups while the empty v2 hierarchy is mounted
//!   at /sys/fs/cgroup/unified: it runs as `unshare -m sh -c 'umount
//!   /sys/fs/cgroup/unified; exec crun ...'`, and the wrapper alone (`unshare -m sh -c
//!   'umount ...; exec /bin/true'`) is measured as its own row, `unshare_wrapper`, and
//!   subtracted in `crun_net`;
//! * `cellblock` (target/release/cellblock, `cargo build --release --features oci`) when that
//!   binary exists; its rows are missing otherwise, and the run says so;
//! * `cellblock-lto` (target/oci-runtime/cellblock, `cargo build --profile oci-runtime
//!   --features oci --bin cellblock`, the build the README installs) when it exists.
//!
//! The bundle is .ci/oci-image.sh's (umoci's config, busybox rootfs), built once into
//! target/oci-bench/ and reused, with `process.args` set to `/bin/true` and no terminal.
//! Each runtime keeps its state under a `--root` of its own in a scratch directory.
//!
//! Printed: per case, the median, mean, min and 90th percentile in ms, and the medians'
//! ratios against crun's (with and without the wrapper) measured in the same run. The
//! issue's target is cellblock <= 0.5x crun.
//!
//! Run (root; nothing else building: the machine has 2 cores):
//! `flock /tmp/bench.lock cargo bench --features oci --bench oci` (the feature builds
//! target/release/cellblock as well).
//! Under `cargo test --benches` (or with `CELLBLOCK_BENCH_QUICK=1`) it runs 2 rounds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/baseline.rs"]
#[allow(dead_code)]
mod baseline;
use baseline::full_run;

/// Where the v2 hierarchy sits on a hybrid host; crun refuses to run while it is mounted.
const UNIFIED: &str = "/sys/fs/cgroup/unified";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Runtime {
    Runc,
    Crun,
    /// target/release/cellblock: the build the tests run.
    Cellblock,
    /// target/oci-runtime/cellblock: the build the README installs (the `oci-runtime`
    /// profile: release with fat LTO and one codegen unit).
    CellblockLto,
}

impl Runtime {
    fn name(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Crun => "crun",
            Runtime::Cellblock => "cellblock",
            Runtime::CellblockLto => "cellblock-lto",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    Run,
    CreateStartDelete,
    /// The crun wrapper alone (`unshare -m`, umount, exec /bin/true).
    Wrapper,
}

struct Bench {
    bundle: PathBuf,
    scratch: PathBuf,
    cellblock: Option<PathBuf>,
    cellblock_lto: Option<PathBuf>,
    seq: u64,
}

impl Bench {
    fn root(&self, rt: Runtime) -> PathBuf {
        self.scratch.join(format!("root-{}", rt.name()))
    }

    /// The runtime's command line with its global flags (`--root`).
    fn argv(&self, rt: Runtime, verb: &[&str]) -> Vec<String> {
        let bin = match rt {
            Runtime::Runc => "runc".to_string(),
            Runtime::Crun => "crun".to_string(),
            Runtime::Cellblock => self.cellblock.as_ref().unwrap().display().to_string(),
            Runtime::CellblockLto => self.cellblock_lto.as_ref().unwrap().display().to_string(),
        };
        let mut v = vec![bin, "--root".into(), self.root(rt).display().to_string()];
        v.extend(verb.iter().map(|s| s.to_string()));
        v
    }

    /// The commands of one container of `case` on `rt`; several are run in sequence (each
    /// must succeed). crun's are one `unshare -m sh -c` running them all.
    fn commands(&mut self, rt: Runtime, case: Case) -> Vec<Vec<String>> {
        self.seq += 1;
        let id = format!("bench-{}-{}-{}", rt.name(), std::process::id(), self.seq);
        let bundle = self.bundle.display().to_string();
        let cmds = match case {
            Case::Run => vec![self.argv(rt, &["run", "--bundle", &bundle, &id])],
            Case::CreateStartDelete => vec![
                self.argv(rt, &["create", "--bundle", &bundle, &id]),
                self.argv(rt, &["start", &id]),
                self.argv(rt, &["delete", "--force", &id]),
            ],
            Case::Wrapper => vec![vec!["/bin/true".to_string()]],
        };
        if rt != Runtime::Crun {
            return cmds;
        }
        // One private mount namespace for the whole sequence, as a caller of crun on this
        // host would need; the sequence stops at the first failing command.
        let script = format!(
            "umount {UNIFIED} || exit 90; {}",
            cmds.iter()
                .map(|c| c
                    .iter()
                    .map(|a| shell_quote(a))
                    .collect::<Vec<_>>()
                    .join(" "))
                .collect::<Vec<_>>()
                .join(" && ")
        );
        vec![vec![
            "unshare".into(),
            "-m".into(),
            "sh".into(),
            "-c".into(),
            script,
        ]]
    }

    /// Runs one container of `case` on `rt`; returns the wall time of its commands.
    fn once(&mut self, rt: Runtime, case: Case) -> Duration {
        let cmds = self.commands(rt, case);
        let log = self.scratch.join("stderr");
        let start = Instant::now();
        for c in &cmds {
            let status = Command::new(&c[0])
                .args(&c[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .status()
                .unwrap_or_else(|e| panic!("{}: {e}", c[0]));
            if !status.success() {
                panic!(
                    "{} {case:?}: `{}` failed ({status}): {}",
                    rt.name(),
                    c.join(" "),
                    std::fs::read_to_string(&log).unwrap_or_default().trim()
                );
            }
        }
        start.elapsed()
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Builds (once) .ci/oci-image.sh's bundle under target/oci-bench/, then writes a bundle
/// running `/bin/true` next to it, sharing its rootfs.
fn bundle(target: &Path) -> PathBuf {
    let image = target.join("oci-bench");
    if !image.join("bundle/config.json").exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/oci-image.sh");
        let status = Command::new(&script)
            .arg(&image)
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
        assert!(status.success(), "{} failed: {status}", script.display());
    }
    let base = image.join("bundle");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base.join("config.json")).unwrap()).unwrap();
    config["process"]["args"] = serde_json::json!(["/bin/true"]);
    config["process"]["terminal"] = serde_json::json!(false);
    config["root"]["path"] = serde_json::json!(base.join("rootfs"));
    let dir = image.join("true-bundle");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    dir
}

fn require(tool: &str, hint: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "the oci bench needs {tool} ({hint})");
}

struct Stats {
    median: f64,
    mean: f64,
    min: f64,
    p90: f64,
}

fn stats(samples: &[Duration]) -> Stats {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    Stats {
        median: if ms.len().is_multiple_of(2) {
            (ms[ms.len() / 2 - 1] + ms[ms.len() / 2]) / 2.0
        } else {
            ms[ms.len() / 2]
        },
        mean: ms.iter().sum::<f64>() / ms.len() as f64,
        min: ms[0],
        p90: at(0.9),
    }
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the oci bench runs containers: run it as root"
    );
    require("runc", "apt-get install runc");
    require("crun", "apt-get install crun");
    require("unshare", "apt-get install util-linux");
    require("umoci", "apt-get install umoci");

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let built = |profile: &str| {
        let p = target.join(profile).join("cellblock");
        p.exists().then_some(p)
    };
    let (cellblock, cellblock_lto) = (built("release"), built("oci-runtime"));
    let scratch = std::env::temp_dir().join(format!("cellblock-oci-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut bench = Bench {
        bundle: bundle(&target),
        scratch: scratch.clone(),
        cellblock,
        cellblock_lto,
        seq: 0,
    };

    let quick = !full_run();
    let rounds = if quick { 2 } else { 40 };
    let mut contenders = vec![
        (Runtime::Runc, Case::Run),
        (Runtime::Crun, Case::Run),
        (Runtime::Crun, Case::Wrapper),
        (Runtime::Runc, Case::CreateStartDelete),
        (Runtime::Crun, Case::CreateStartDelete),
    ];
    if bench.cellblock.is_some() {
        contenders.push((Runtime::Cellblock, Case::Run));
        contenders.push((Runtime::Cellblock, Case::CreateStartDelete));
    }
    if bench.cellblock_lto.is_some() {
        contenders.push((Runtime::CellblockLto, Case::Run));
        contenders.push((Runtime::CellblockLto, Case::CreateStartDelete));
    }
    // One unmeasured container of each first (page cache, the runtimes' first-run work).
    for &(rt, case) in &contenders {
        bench.once(rt, case);
    }
    let mut samples = vec![Vec::new(); contenders.len()];
    for round in 0..rounds {
        for k in 0..contenders.len() {
            let i = (k + round) % contenders.len();
            let (rt, case) = contenders[i];
            samples[i].push(bench.once(rt, case));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);

    let label = |rt: Runtime, case: Case| match case {
        Case::Run => format!("run/{}", rt.name()),
        Case::CreateStartDelete => format!("create_start_delete/{}", rt.name()),
        Case::Wrapper => "unshare_wrapper (crun's, alone)".to_string(),
    };
    let median = |rt: Runtime, case: Case| {
        contenders
            .iter()
            .position(|&c| c == (rt, case))
            .map(|i| stats(&samples[i]).median)
    };
    println!(
        "\noci runtimes on one busybox bundle, /bin/true, {rounds} interleaved rounds (ms per container):"
    );
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>9}",
        "case", "median", "mean", "min", "p90"
    );
    for (i, &(rt, case)) in contenders.iter().enumerate() {
        let s = stats(&samples[i]);
        println!(
            "{:<40} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            label(rt, case),
            s.median,
            s.mean,
            s.min,
            s.p90
        );
    }
    let wrapper = median(Runtime::Crun, Case::Wrapper).unwrap();
    println!("\nratios of medians (crun_net = crun minus the unshare wrapper's median):");
    for case in [Case::Run, Case::CreateStartDelete] {
        let crun = median(Runtime::Crun, case).unwrap();
        let crun_net = crun - wrapper;
        let name = label(Runtime::Crun, case);
        let name = name.trim_end_matches("/crun");
        println!("{name:<22} crun {crun:.2} ms, crun_net {crun_net:.2} ms");
        for rt in [Runtime::Runc, Runtime::Cellblock, Runtime::CellblockLto] {
            match median(rt, case) {
                Some(m) => println!(
                    "{:<22} {}/crun {:.2}x  {}/crun_net {:.2}x{}",
                    "",
                    rt.name(),
                    m / crun,
                    rt.name(),
                    m / crun_net,
                    if rt != Runtime::Runc {
                        "   (target <= 0.5x crun)"
                    } else {
                        ""
                    }
                ),
                None => println!(
                    "{:<22} {}: not measured ({} does not exist: {})",
                    "",
                    rt.name(),
                    target
                        .join(if rt == Runtime::Cellblock {
                            "release"
                        } else {
                            "oci-runtime"
                        })
                        .join("cellblock")
                        .display(),
                    if rt == Runtime::Cellblock {
                        "cargo build --release --features oci"
                    } else {
                        "cargo build --profile oci-runtime --features oci --bin cellblock"
                    }
                ),
            }
        }
    }
}
