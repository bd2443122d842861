//! A job runner: runs the shell commands of a file (one per line), N at a time, each in
//! its own container, and reports how each went.
//!
//! ```text
//! job_runner [--jobs N] [--timeout SECS] [--memory MIB] [--network none|egress] [--json] FILE
//! cargo run --release --example job_runner -- --jobs 4 --timeout 10 --memory 256 jobs.txt
//! ```
//!
//! Every job gets new UTS, IPC, PID, mount, network and cgroup namespaces: no network
//! (only `lo`), a read-only view of the host's file system with a private `/tmp`, its own
//! `/proc` and `/dev`, an environment of its own (`PATH` and `TMPDIR` only: the runner's
//! environment, with whatever credentials it holds, is not passed on), and the given limits
//! (a cgroup with memory and pids limits, a timeout that ends the whole job). Its stdout and stderr are streamed as they come,
//! each line prefixed with the job number. At the end: a table (exit or signal, wall time,
//! CPU time, peak memory, outcome), or with `--json` one JSON object per job on stdout
//! (the jobs' output then goes to stderr). Exit status 0 only if every job succeeded.
//!
//! `--network egress` gives each job a network that reaches out (a veth on the bridge
//! `cellblock0`, an address from 10.201.0.0/16, NAT through the host: see
//! `cellblock::EgressConfig` for what that changes on the host); the default `none` leaves
//! each job only `lo`.
//!
//! Blank lines and lines starting with `#` are skipped.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cellblock::{
    Container, ContainerBuilder, EgressConfig, EndReason, Event, Namespaces, Network, RunReport,
    Stdio, Supervisor, Worker,
};
use futures::StreamExt;
use tokio::io::AsyncBufReadExt;

struct Args {
    jobs: usize,
    timeout: Option<Duration>,
    memory_mib: Option<u64>,
    json: bool,
    egress: bool,
    file: PathBuf,
}

fn usage() -> ! {
    eprintln!(
        "usage: job_runner [--jobs N] [--timeout SECS] [--memory MIB] [--network none|egress] [--json] FILE"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        jobs: 4,
        timeout: None,
        memory_mib: None,
        json: false,
        egress: false,
        file: PathBuf::new(),
    };
    let mut it = std::env::args().skip(1);
    let mut file = None;
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--jobs" => args.jobs = value().parse().unwrap_or_else(|_| usage()),
            "--timeout" => {
                args.timeout = Some(Duration::from_secs_f64(
                    value().parse().unwrap_or_else(|_| usage()),
                ))
            }
            "--memory" => args.memory_mib = Some(value().parse().unwrap_or_else(|_| usage())),
            "--json" => args.json = true,
            "--network" => {
                args.egress = match value().as_str() {
                    "none" => false,
                    "egress" => true,
                    _ => usage(),
                }
            }
            "-h" | "--help" => usage(),
            _ if file.is_none() && !a.starts_with("--") => file = Some(PathBuf::from(a)),
            _ => usage(),
        }
    }
    args.file = file.unwrap_or_else(|| usage());
    args.jobs = args.jobs.max(1);
    args
}

/// Top-level host directories that get fresh, private file systems instead of a view.
const FRESH: [&str; 5] = ["proc", "sys", "dev", "tmp", "run"];

/// The read-only view of the host: a skeleton root (in a private temp directory) holding a
/// mount point for each of the host's top-level directories and a copy of each top-level
/// symlink; the jobs bind the host's directories onto it read-only.
struct HostView {
    dir: PathBuf,
    root: PathBuf,
    binds: Vec<PathBuf>,
}

impl HostView {
    fn new() -> std::io::Result<HostView> {
        let dir = std::env::temp_dir().join(format!("cellblock-jobs-{}", std::process::id()));
        let root = dir.join("root");
        std::fs::create_dir_all(&root)?;
        let mut binds = Vec::new();
        for e in std::fs::read_dir("/")? {
            let e = e?;
            let name = e.file_name();
            let (host, mine) = (PathBuf::from("/").join(&name), root.join(&name));
            let ft = e.file_type()?;
            if ft.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&host)?, &mine)?;
            } else if ft.is_dir() {
                std::fs::create_dir_all(&mine)?;
                if !FRESH.iter().any(|f| name == *f) {
                    binds.push(host);
                }
            }
        }
        Ok(HostView { dir, root, binds })
    }
}

impl Drop for HostView {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The container for one job.
fn job(
    id: usize,
    command: &str,
    args: &Args,
    view: &HostView,
    output: std::os::fd::OwnedFd,
) -> ContainerBuilder {
    let mut b = Container::builder("/bin/sh");
    b.args(["-c", command])
        .namespaces(
            Namespaces::UTS
                | Namespaces::IPC
                | Namespaces::PID
                | Namespaces::MOUNT
                | Namespaces::CGROUP,
        )
        .network(if args.egress {
            Network::Egress(EgressConfig::default())
        } else {
            Network::None
        })
        .hostname(format!("job-{id}"))
        // A read-only view of the host: its directories bound read-only onto a read-only
        // skeleton root, with a private /tmp and /run, a fresh /proc (from the PID
        // namespace) and a minimal /dev.
        .rootfs(&view.root)
        .readonly_root(true)
        .tmpfs("/tmp")
        .tmpfs("/run")
        .mount_dev()
        // Explicitly nothing of ours: the jobs are untrusted, our environment may hold
        // secrets. (Clean is also the builder's default; this says so where it matters.)
        .env_clear()
        .env("PATH", cellblock::DEFAULT_PATH)
        .env("TMPDIR", "/tmp")
        .stdin(Stdio::null())
        .stdout(output)
        .merge_stderr(true)
        .pids_limit(512);
    for dir in &view.binds {
        b.bind_ro(dir, dir);
    }
    if let Some(t) = args.timeout {
        b.timeout(t);
    }
    if let Some(m) = args.memory_mib {
        b.memory_limit(m << 20);
    }
    b
}

/// One job's line in the report.
struct Done {
    id: usize,
    command: String,
    report: Option<RunReport>,
    error: Option<String>,
}

impl Done {
    fn outcome(&self) -> &'static str {
        match (&self.report, &self.error) {
            (_, Some(_)) => "setup-failed",
            (Some(r), None) if r.oom_killed && !r.status.success() => "oom-killed",
            (Some(r), None) => match r.reason {
                EndReason::Exited if r.status.success() => "ok",
                EndReason::Exited => "failed",
                EndReason::Signaled => "signaled",
                EndReason::TimedOut => "timed-out",
                EndReason::OomKilled => "oom-killed",
                EndReason::OutputLimit => "output-limit",
                EndReason::SetupFailed { .. } => "setup-failed",
                _ => "other",
            },
            (None, None) => "stopped",
        }
    }

    fn json(&self) -> serde_json::Value {
        let r = self.report.as_ref();
        serde_json::json!({
            "id": self.id,
            "command": self.command,
            "exit_code": r.and_then(|r| r.exit_code),
            "signal": r.and_then(|r| r.signal),
            "wall_ms": r.map(|r| r.wall_time.as_millis() as u64),
            "cpu_ms": r.map(|r| r.cpu_time().as_millis() as u64),
            "peak_memory_bytes": r.and_then(|r| r.peak_memory),
            "outcome": self.outcome(),
            "error": self.error,
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = parse_args();
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("job_runner: {}: {e}", args.file.display());
            return ExitCode::from(2);
        }
    };
    let commands: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();

    let view = match HostView::new() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("job_runner: preparing the host view: {e}");
            return ExitCode::from(2);
        }
    };
    let mut sup = Supervisor::new();
    sup.max_concurrent(args.jobs);
    let mut events = sup.events();
    let mut printers = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        let id = i + 1;
        // The job's output: a pipe whose read end we stream, prefixed with the job number.
        let (reader, writer) = std::io::pipe().expect("pipe");
        sup.add(Worker::new(
            id.to_string(),
            job(id, command, &args, &view, writer.into()),
        ))
        .expect("add job");
        let json = args.json;
        printers.push(tokio::spawn(async move {
            let rx = tokio::net::unix::pipe::Receiver::from_owned_fd(reader.into())
                .expect("pipe receiver");
            let mut lines = tokio::io::BufReader::new(rx).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if json {
                    eprintln!("[{id}] {line}");
                } else {
                    println!("[{id}] {line}");
                }
            }
        }));
    }
    // The supervisor's builders hold the write ends; it keeps them until it is dropped.
    let mut done: BTreeMap<usize, Done> = BTreeMap::new();
    let total = commands.len();
    while done.len() < total {
        let Some(ev) = events.next().await else { break };
        let (name, report, error) = match ev {
            Event::Exited { name, report, .. } => (name, Some((*report).clone()), None),
            Event::SetupFailed { name, error, .. } => (name, None, Some(error.to_string())),
            _ => continue,
        };
        let id: usize = name.parse().expect("job names are numbers");
        done.insert(
            id,
            Done {
                id,
                command: commands[id - 1].clone(),
                report,
                error,
            },
        );
    }
    sup.wait_all().await;
    drop(sup); // closes the pipes' write ends: the printers see EOF
    for p in printers {
        let _ = p.await;
    }

    let all_ok = done.len() == total && done.values().all(|d| d.outcome() == "ok");
    if args.json {
        for d in done.values() {
            println!("{}", d.json());
        }
    } else {
        println!();
        println!(
            "{:>4}  {:<10} {:>9} {:>9} {:>11}  {:<12} command",
            "job", "exit", "wall ms", "cpu ms", "peak mem", "outcome"
        );
        for d in done.values() {
            let (exit, wall, cpu, mem) = match &d.report {
                Some(r) => (
                    match (r.exit_code, r.signal) {
                        (Some(c), _) => format!("code {c}"),
                        (_, Some(s)) => format!("signal {s}"),
                        _ => format!("{:?}", r.status.signal()),
                    },
                    r.wall_time.as_millis().to_string(),
                    r.cpu_time().as_millis().to_string(),
                    r.peak_memory
                        .map_or("-".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0)),
                ),
                None => ("-".into(), "-".into(), "-".into(), "-".into()),
            };
            println!(
                "{:>4}  {exit:<10} {wall:>9} {cpu:>9} {mem:>11}  {:<12} {}",
                d.id,
                d.outcome(),
                d.command
            );
            if let Some(e) = &d.error {
                println!("      error: {e}");
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
