//! `cellblock`: an OCI runtime with runc's command line, built on the cellblock library
//! (issue 14). Work in progress.

// The spec helper's branch: the modules it owns, until the lifecycle's main.rs uses them.
#![allow(dead_code)]
mod devices;
mod seccomp;
mod spec;
mod sysctl;

fn main() {
    eprintln!("cellblock: not implemented yet");
    std::process::exit(1);
}
