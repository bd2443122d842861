//! `cellblock`: an OCI runtime with runc's command line, built on the cellblock library
//! (issue 14). Work in progress.

fn main() {
    eprintln!("cellblock: not implemented yet");
    std::process::exit(1);
}
