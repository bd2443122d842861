//! `cellblock`: an OCI runtime with runc's command line, built on the cellblock library
//! (issue 14). Work in progress.

// Compiled here only until the lifecycle's main.rs (which declares it) is merged.
#[allow(dead_code)]
mod hooks;

fn main() {
    eprintln!("cellblock: not implemented yet");
    std::process::exit(1);
}
