//! `cellblock`: an OCI runtime with runc's command line, built on the cellblock library
//! (issue 14). containerd's runc v2 shim (`ctr run --runc-binary`) and podman
//! (`--runtime`) drive it; docs/oci-contract.md says what they call and rely on.
//!
//! Files: `main.rs` (the command line, the error path, exit codes), `state.rs` (the state
//! directory and its lock), `lifecycle.rs` (the verbs), `console.rs` (`--console-socket`),
//! `spec.rs` (config.json -> builder), `hooks.rs` (OCI hooks).
//!
//! Errors: the message goes to stderr (podman reads it, and derives exit codes 127/126
//! from "no such file or directory" / "permission denied"), and with `--log-format json`
//! also as a JSON line appended to `--log` (the shim reports the last `msg`); exit code 1.

mod console;
mod devices;
mod hooks;
mod lifecycle;
mod seccomp;
mod spec;
mod state;
mod sysctl;

use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

/// The runc-compatible command line.
#[derive(Debug, Parser)]
#[command(
    name = "cellblock",
    version,
    about = "An OCI runtime built on the cellblock library"
)]
pub struct Cli {
    /// Where the containers' state directories live.
    #[arg(long, global = true, default_value = "/run/cellblock")]
    pub root: PathBuf,
    /// Append error messages to this file (the runc v2 shim reads it).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// The format of `--log` lines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Accepted for runc compatibility and ignored: cgroups are managed through cgroupfs.
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility and ignored.
    #[arg(long, global = true)]
    pub debug: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PsFormat {
    Table,
    Json,
}

/// Options of `create` and `run`.
#[derive(Debug, clap::Args)]
pub struct CreateOpts {
    /// The bundle directory (holds config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the init's host pid here once the container is created.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Send the pty master to this Unix socket (with process.terminal).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility and ignored (pivot_root is always used).
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for runc compatibility and ignored.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Accepted for runc compatibility; only 0 is supported.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container id.
    pub id: String,
}

/// Options of `exec`.
#[derive(Debug, clap::Args)]
pub struct ExecOpts {
    /// A JSON file with the process to run (config.json's `process`).
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    /// Return as soon as the process runs (without: wait, and exit with its code).
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the process's host pid here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Send the pty master to this Unix socket (with a terminal).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Give the process a terminal.
    #[arg(long, short = 't')]
    pub tty: bool,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Environment variables (KEY=VALUE), repeatable.
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// UID[:GID] to run as.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Accepted for runc compatibility and ignored.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Accepted for runc compatibility; only 0 is supported.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container id.
    pub id: String,
    /// The command and its arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create a container: set it up and stop it before its program runs.
    Create(CreateOpts),
    /// Start a created container's program.
    Start { id: String },
    /// Create and start a container (and wait for it unless --detach).
    Run {
        #[command(flatten)]
        create: CreateOpts,
        /// Return once the container runs.
        #[arg(long, short = 'd')]
        detach: bool,
    },
    /// Delete a container: kill what is left, remove its cgroups and state.
    Delete {
        /// Also delete a running container, and succeed on an unknown id.
        #[arg(long, short = 'f')]
        force: bool,
        id: String,
    },
    /// Send a signal (default SIGTERM; a number, TERM or SIGTERM) to the container's init.
    Kill {
        /// Signal every process of the container.
        #[arg(long, short = 'a')]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Print the container's OCI state as JSON.
    State { id: String },
    /// List the container's processes (host pids).
    Ps {
        #[arg(long, short = 'f', value_enum, default_value_t = PsFormat::Table)]
        format: PsFormat,
        id: String,
        /// Accepted for runc compatibility and ignored (ps options).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process of the container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Run another process in a running container.
    Exec(ExecOpts),
    /// List the containers.
    List {
        #[arg(long, short = 'f', value_enum, default_value_t = PsFormat::Table)]
        format: PsFormat,
        /// Print the ids only.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Print the runtime's features as JSON.
    Features,
}

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => fail(&cli, &format!("starting the tokio runtime: {e}")),
    };
    let code = match rt.block_on(lifecycle::dispatch(&cli)) {
        Ok(code) => code,
        Err(e) => fail(&cli, &e.to_string()),
    };
    // Dropping the runtime would wait for blocking-pool threads; nothing of ours runs there.
    rt.shutdown_background();
    std::process::exit(code);
}

/// Reports `msg` (stderr, and `--log`) and exits 1.
fn fail(cli: &Cli, msg: &str) -> ! {
    if let Some(log) = &cli.log {
        let line = log_line(cli.log_format, msg, std::time::SystemTime::now());
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
    }
    eprintln!("cellblock: {msg}");
    std::process::exit(1);
}

/// One error line of `--log`: runc's JSON (`{"level","msg","time"}`) or logfmt text.
fn log_line(format: LogFormat, msg: &str, at: std::time::SystemTime) -> String {
    let time = state::rfc3339(at);
    match format {
        LogFormat::Json => {
            let v = serde_json::json!({"level": "error", "msg": msg, "time": time});
            format!("{v}\n")
        }
        LogFormat::Text => format!(
            "time=\"{time}\" level=error msg={}\n",
            serde_json::Value::from(msg)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("cellblock").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// containerd's shim: global flags first, then the verb (docs/oci-contract.md).
    #[test]
    fn the_shims_command_lines_parse() {
        let g = [
            "--root",
            "/r/ns",
            "--log",
            "/b/log.json",
            "--log-format",
            "json",
        ];
        let with = |rest: &[&str]| parse(&[&g[..], rest].concat());
        let c = with(&[
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/init.pid",
            "box",
        ]);
        assert_eq!(c.root, PathBuf::from("/r/ns"));
        assert_eq!(c.log.as_deref(), Some(std::path::Path::new("/b/log.json")));
        assert_eq!(c.log_format, LogFormat::Json);
        let Cmd::Create(o) = c.cmd else { panic!() };
        assert_eq!(
            (o.bundle, o.pid_file, o.console_socket, o.id.as_str()),
            ("/b".into(), Some("/b/init.pid".into()), None, "box")
        );
        let Cmd::Create(o) = with(&[
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "--console-socket",
            "/t/pty.sock",
            "tty",
        ])
        .cmd
        else {
            panic!()
        };
        assert_eq!(o.console_socket, Some("/t/pty.sock".into()));
        assert!(matches!(with(&["start", "box"]).cmd, Cmd::Start { id } if id == "box"));
        assert!(matches!(
            with(&["delete", "box"]).cmd,
            Cmd::Delete { force: false, .. }
        ));
        assert!(matches!(
            with(&["delete", "--force", "box"]).cmd,
            Cmd::Delete { force: true, .. }
        ));
        let Cmd::Exec(e) = with(&[
            "exec",
            "--process",
            "/tmp/runc-process1",
            "--detach",
            "--pid-file",
            "/b/e1.pid",
            "box",
        ])
        .cmd
        else {
            panic!()
        };
        assert_eq!(
            (
                e.process,
                e.detach,
                e.pid_file,
                e.id.as_str(),
                e.command.len()
            ),
            (
                Some("/tmp/runc-process1".into()),
                true,
                Some("/b/e1.pid".into()),
                "box",
                0
            )
        );
        assert!(matches!(
            with(&["ps", "--format", "json", "box"]).cmd,
            Cmd::Ps {
                format: PsFormat::Json,
                ..
            }
        ));
        assert!(matches!(with(&["pause", "box"]).cmd, Cmd::Pause { .. }));
        assert!(matches!(with(&["resume", "box"]).cmd, Cmd::Resume { .. }));
        assert!(matches!(with(&["kill", "box", "15"]).cmd,
            Cmd::Kill { all: false, ref signal, .. } if signal == "15"));
        assert!(matches!(with(&["kill", "--all", "box", "9"]).cmd,
            Cmd::Kill { all: true, ref signal, .. } if signal == "9"));
        assert!(matches!(with(&["state", "box"]).cmd, Cmd::State { .. }));
        assert!(parse(&["--systemd-cgroup", "start", "x"]).systemd_cgroup);
    }

    /// podman: no global flags (the default root), `kill` without a signal means SIGTERM,
    /// and `exec` puts --pid-file first.
    #[test]
    fn podmans_command_lines_parse() {
        let c = parse(&["kill", "abc"]);
        assert_eq!(c.root, PathBuf::from("/run/cellblock"));
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(matches!(c.cmd, Cmd::Kill { ref signal, .. } if signal == "SIGTERM"));
        let Cmd::Exec(e) = parse(&[
            "exec",
            "--pid-file",
            "/p",
            "--process",
            "/f",
            "--detach",
            "abc",
        ])
        .cmd
        else {
            panic!()
        };
        assert_eq!(
            (e.pid_file, e.process, e.detach),
            (Some("/p".into()), Some("/f".into()), true)
        );
        // runc's other form: the command after the id, its own flags untouched.
        let Cmd::Exec(e) = parse(&["exec", "-t", "--env", "A=1", "abc", "sh", "-c", "x"]).cmd
        else {
            panic!()
        };
        assert_eq!(
            (e.tty, e.env, e.command),
            (
                true,
                vec!["A=1".to_string()],
                vec!["sh".to_string(), "-c".into(), "x".into()]
            )
        );
        // Global flags after the verb work too (clap `global`).
        assert_eq!(
            parse(&["state", "x", "--root", "/o"]).root,
            PathBuf::from("/o")
        );
        assert!(Cli::try_parse_from(["cellblock", "--log-format", "xml", "state", "x"]).is_err());
        assert!(
            Cli::try_parse_from(["cellblock", "start"]).is_err(),
            "start needs an id"
        );
    }

    #[test]
    fn log_lines_are_what_the_shim_parses() {
        let at = UNIX_EPOCH + std::time::Duration::from_secs(1);
        let line = log_line(LogFormat::Json, "exec: \"/x\": no such file", at);
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "exec: \"/x\": no such file");
        assert_eq!(v["time"], "1970-01-01T00:00:01.000000000Z");
        assert_eq!(
            log_line(LogFormat::Text, "a \"b\"", at),
            "time=\"1970-01-01T00:00:01.000000000Z\" level=error msg=\"a \\\"b\\\"\"\n"
        );
    }
}
