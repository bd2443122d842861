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
    // For the target, not the host: a cross build needs the target's C compiler, chosen
    // as the `cc` crate does (`CC_<target>`, `TARGET_CC`; `CC` and `cc` only natively;
    // else `<arch>-linux-gnu-gcc`), and the result is checked to be code for the target.
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let host = env::var("HOST").expect("cargo sets HOST");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let machine: u16 = match arch.as_str() {
        "x86_64" => 62,   // EM_X86_64
        "aarch64" => 183, // EM_AARCH64
        other => panic!(
            "cellblock: the container init (init/cellblock-init.c) supports x86_64 and aarch64, \
             not {other} (target {target})"
        ),
    };
    let per_target = [
        format!("CC_{target}"),
        format!("CC_{}", target.replace('-', "_")),
    ];
    for v in per_target.iter().map(String::as_str).chain(["TARGET_CC"]) {
        println!("cargo:rerun-if-env-changed={v}");
    }
    let cc = per_target
        .iter()
        .map(String::as_str)
        .chain(["TARGET_CC"])
        .find_map(|v| env::var(v).ok())
        .or_else(|| (target == host).then(|| env::var("CC").ok()).flatten())
        .unwrap_or_else(|| {
            if target == host {
                "cc".into()
            } else {
                format!("{arch}-linux-gnu-gcc")
            }
        });
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
    // An ELF executable for the target's machine (e_machine, bytes 18-19, little-endian on
    // both architectures), not for the build host's.
    let elf = std::fs::read(&out).expect("reading the built init");
    let built = elf
        .get(18..20)
        .filter(|_| elf.starts_with(b"\x7fELF"))
        .map(|m| u16::from_le_bytes([m[0], m[1]]));
    if built != Some(machine) {
        panic!(
            "cellblock: {cc:?} built the container init for ELF machine {built:?}, but the target \
             {target} needs {machine}: set CC_{target} to the target's C compiler"
        );
    }
}
