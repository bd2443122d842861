//! An interactive shell in a container: `/bin/bash` with hostname `container`, its own PID,
//! mount, IPC and network namespaces, and the terminal inherited from the supervisor.
//!
//! Run as root: `cargo run --release --example shell` (type `hostname`, `ps ax`, `exit`).
//!
//! The shell shares the supervisor's terminal (and so its process group): Ctrl-C reaches
//! both. The supervisor swallows SIGINT while the shell runs, and the shell decides what an
//! interrupt means, like any shell does for its foreground job.

use cellblock::{Container, Namespaces};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut shell = Container::builder("/bin/bash")
        .namespaces(
            Namespaces::UTS
                | Namespaces::IPC
                | Namespaces::PID
                | Namespaces::MOUNT
                | Namespaces::NET,
        )
        .hostname("container")
        .env("PS1", "[\\u@\\h \\W]\\$ ")
        .kill_on_drop(true)
        .spawn()
        .await?;
    eprintln!(
        "shell started: host pid {}, namespaces {}",
        shell.pid(),
        shell.namespaces()
    );
    let status = loop {
        tokio::select! {
            status = shell.wait() => break status?,
            _ = tokio::signal::ctrl_c() => continue,
        }
    };
    eprintln!("shell exited: {status}");
    std::process::exit(
        status
            .code()
            .unwrap_or(128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)),
    );
}
