//! The examples are templates users copy: they must keep working.

use std::path::PathBuf;

/// target/<profile>/examples/<name>, next to this test binary's deps/ directory.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

#[test]
fn tour_reports_every_isolation_held() {
    let out = std::process::Command::new(example("tour"))
        .output()
        .expect("the tour example is built by cargo test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tour failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for ns in ["UTS", "IPC", "PID", "MOUNT", "NET", "CGROUP", "ids"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(ns))
            .unwrap_or_else(|| panic!("no {ns} row:\n{stdout}"));
        assert!(line.ends_with("held"), "{line}");
    }
    assert!(stdout.contains("every isolation held"));
}

#[test]
fn shell_runs_bash_with_hostname_container() {
    use std::io::Write;
    let mut child = std::process::Command::new(example("shell")) // built by `cargo test` (not by `--test examples` alone)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Not a terminal: bash reads the commands from stdin.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hostname\necho pid=$$\nexit 3\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "container\npid=1\n");
    assert_eq!(
        out.status.code(),
        Some(3),
        "the shell's exit code is passed on"
    );
}
