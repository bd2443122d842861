//! Builds `cellblock-init`, the container's PID 1 (init/cellblock-init.c), as a small
//! static freestanding executable (no libc, ~9 KiB) that src/init.rs embeds with
//! `include_bytes!`.
//!
//! Static, because it is exec'd from a memfd inside the container's mount namespace,
//! where the host's dynamic loader and libc may not exist (a container with its own root
//! filesystem). Freestanding, because a static glibc's start-up (CPU feature detection)
//! cost more than the rest of the init together (see the C file's header). Built with the
//! system C compiler (`$CC`, else `cc`), which every Linux build host with a Rust
//! toolchain has for linking anyway; it needs only the kernel's UAPI headers.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "init/cellblock-init.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CC");
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("cellblock-init");
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args([
            "-static",
            "-nostdlib",
            "-ffreestanding",
            "-fno-stack-protector",
            "-fno-pie",
            "-no-pie",
            "-fno-asynchronous-unwind-tables",
            "-Os",
            "-s",
            "-Wall",
            "-Wextra",
            "-o",
        ])
        .arg(&out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| {
            panic!("cellblock: cannot run the C compiler {cc:?} to build the container init: {e}")
        });
    if !status.success() {
        panic!(
            "cellblock: building the container init ({src}) with {cc:?} failed ({status}); \
             a C compiler and the Linux UAPI headers (Debian: gcc, linux-libc-dev) are needed"
        );
    }
}
