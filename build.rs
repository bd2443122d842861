//! Builds `cellblock-init`, the container's PID 1 (init/cellblock-init.c), as a small
//! static freestanding executable (no libc, ~9 KiB) that src/init.rs embeds with
//! `include_bytes!`.
//!
//! Static, because it is exec'd from a memfd inside the container's mount namespace,
//! where the host's dynamic loader and libc may not exist (a container with its own root
//! filesystem). Freestanding, because a static glibc's start-up (CPU feature detection)
//! cost more than the rest of the init together (see the C file's header). Built with the
//! system C compiler (`$CC`, else `cc`), which every Linux build host with a Rust
//! toolchain has for linking anyway; it needs only the kernel's UAPI headers. The `cc`
//! crate picks that compiler and its target flags the way every `-sys` crate does
//! (`CC_<target>`, `TARGET_CC`, `CC`, `CFLAGS`...), so a cross build gets an init for the
//! target; we link the executable ourselves, since `cc` builds only libraries.
//!
//! The protocol's numbers (setup stages, message tags, FLAGS bits) are not written in the
//! C file: this script includes `src/protocol.rs` and passes each as a `-D` flag.

use std::env;
use std::path::PathBuf;

#[allow(dead_code)]
#[path = "src/protocol.rs"]
mod protocol;

fn main() {
    let src = "init/cellblock-init.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-changed=src/protocol.rs");
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("cellblock-init");
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let machine: u16 = match arch.as_str() {
        "x86_64" => 62,   // EM_X86_64
        "aarch64" => 183, // EM_AARCH64
        other => panic!(
            "cellblock: the container init (init/cellblock-init.c) supports x86_64 and aarch64, \
             not {other} (target {target})"
        ),
    };
    // The target's C compiler with the target's flags (and the user's CFLAGS); no PIC, no
    // debug info: a static, position-dependent executable.
    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .pic(false)
        .debug(false)
        .opt_level_str("s")
        .get_compiler();
    let mut cmd = compiler.to_command();
    cmd.args([
        "-static",
        "-nostdlib",
        "-ffreestanding",
        "-fno-stack-protector",
        "-fno-pie",
        "-no-pie",
        "-fno-asynchronous-unwind-tables",
        "-s",
        "-Wall",
        "-Wextra",
    ]);
    cmd.args(
        protocol::C_DEFINES
            .iter()
            .map(|(name, value)| format!("-D{name}={value}u")),
    );
    cmd.arg("-o").arg(&out).arg(src);
    let cc = compiler.path().to_owned();
    let status = cmd.status().unwrap_or_else(|e| {
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
