//! `cellblock_run`: run one command in a container from the command line.
//!
//! ```text
//! cellblock_run [--ns uts,ipc,pid,mount,net,user,cgroup] [--hostname NAME]
//!               [--nesting] [--keep-all-caps] [--no-seccomp] [--no-new-session]
//!               [--no-nnp] [--no-masks] [--env-inherit] -- PROGRAM [ARGS...]
//! ```
//!
//! The command gets a clean environment (`PATH` only, like `docker run`): the caller's
//! environment, and any secret in it, stays out unless `--env-inherit` asks for it.
//!
//! Exits with the workload's exit code (128 + signal if it was killed), or 125 with a
//! message if the container could not be started. The tests use it as a cellblock-using
//! program running *inside* a container (nesting) and as a supervisor that sits in a
//! terminal session (TIOCSTI).

use cellblock::{Container, Namespaces, Seccomp};
use std::os::unix::process::ExitStatusExt;

fn parse_ns(list: &str) -> Namespaces {
    let mut ns = Namespaces::empty();
    for name in list.split(',').filter(|s| !s.is_empty()) {
        ns |= match name {
            "uts" => Namespaces::UTS,
            "ipc" => Namespaces::IPC,
            "pid" => Namespaces::PID,
            "mount" => Namespaces::MOUNT,
            "net" => Namespaces::NET,
            "user" => Namespaces::USER,
            "cgroup" => Namespaces::CGROUP,
            other => {
                eprintln!("cellblock_run: unknown namespace {other:?}");
                std::process::exit(125);
            }
        };
    }
    ns
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut ns = Namespaces::empty();
    let mut hostname = None;
    let mut flags = Vec::new();
    let mut command = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ns" => ns = parse_ns(&args.next().unwrap_or_default()),
            "--hostname" => hostname = args.next(),
            "--" => {
                command.extend(args.by_ref());
                break;
            }
            f if f.starts_with("--") => flags.push(f.to_string()),
            _ => {
                command.push(a);
                command.extend(args.by_ref());
                break;
            }
        }
    }
    if command.is_empty() {
        eprintln!("usage: cellblock_run [options] -- PROGRAM [ARGS...]");
        std::process::exit(125);
    }
    let mut b = Container::builder(&command[0]);
    b.args(&command[1..])
        .namespaces(ns)
        .env_clear()
        .env("PATH", cellblock::DEFAULT_PATH);
    if let Some(h) = hostname {
        b.hostname(h);
    }
    for f in &flags {
        match f.as_str() {
            "--nesting" => b.nesting(true),
            "--keep-all-caps" => b.keep_all_capabilities(),
            "--no-seccomp" => b.seccomp(Seccomp::disabled()),
            "--no-new-session" => b.new_session(false),
            "--no-nnp" => b.no_new_privs(false),
            "--no-masks" => b.masked_paths(false),
            // Risk: every variable of the caller's environment reaches the command.
            "--env-inherit" => b.env_inherit(),
            other => {
                eprintln!("cellblock_run: unknown option {other}");
                std::process::exit(125);
            }
        };
    }
    match b.status().await {
        Ok(status) => std::process::exit(
            status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        ),
        Err(e) => {
            eprintln!("cellblock_run: {e}");
            std::process::exit(125);
        }
    }
}
