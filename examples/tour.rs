//! A walk through cellblock's namespaces, one at a time: for each, what the host sees and
//! what a container sees, side by side, and whether the isolation held.
//!
//! Run as root: `cargo run --release --example tour`
//!
//! Copy any section as a template: each one is a builder, a workload and a comparison.

use std::error::Error;

use cellblock::{Container, NamespaceIds, Namespaces, Stdio};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The tour's second half: USER, TIME, joining and nesting (also runnable on its own as
/// `cargo run --release --example tour_isolation`, and as an unprivileged user).
#[path = "tour_isolation.rs"]
#[allow(dead_code)]
mod isolation;

/// Runs `script` with `/bin/sh` in a container with `ns`, returns its stdout.
async fn inside(ns: Namespaces, hostname: Option<&str>, script: &str) -> Result<String> {
    let mut b = Container::builder("/bin/sh");
    b.args(["-c", script]).namespaces(ns);
    if let Some(h) = hostname {
        b.hostname(h);
    }
    let out = b.output().await?;
    if !out.status.success() {
        return Err(format!(
            "{script:?} failed: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs `script` with `/bin/sh` on the host, returns its stdout.
fn on_host(script: &str) -> Result<String> {
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", script])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn row(ns: &str, what: &str, host: &str, container: &str, held: bool) {
    let short = |s: &str| {
        let one = s.replace('\n', " ");
        if one.chars().count() > 34 {
            format!("{}…", one.chars().take(33).collect::<String>())
        } else {
            one
        }
    };
    println!(
        "{ns:<7} {what:<26} {:<35} {:<35} {}",
        short(host),
        short(container),
        if held { "held" } else { "BROKEN" }
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("note: running unprivileged: each container's user namespace maps your own uid to its root");
    }
    println!(
        "{:<7} {:<26} {:<35} {:<35} isolation",
        "ns", "what", "host sees", "container sees"
    );
    println!("{}", "-".repeat(114));
    let mut all_held = true;
    let mut check = |ns: &str, what: &str, host: &str, container: &str, held: bool| {
        row(ns, what, host, container, held);
        all_held &= held;
    };

    // UTS: the hostname is set inside; the host's stays as it was.
    let host_name = on_host("cat /proc/sys/kernel/hostname")?;
    let c = inside(
        Namespaces::UTS,
        Some("container"),
        "cat /proc/sys/kernel/hostname",
    )
    .await?;
    let after = on_host("cat /proc/sys/kernel/hostname")?;
    check(
        "UTS",
        "hostname",
        &host_name,
        &c,
        c == "container" && after == host_name,
    );

    // IPC: a SysV message queue made on the host is invisible inside, and one made inside
    // is invisible on the host.
    let key = 0x7e57_0000 | (std::process::id() as i32 & 0xffff);
    // SAFETY: plain syscalls on a queue of our own, removed below.
    let qid = unsafe { libc::msgget(key, libc::IPC_CREAT | 0o600) };
    let host_q = on_host("tail -n +2 /proc/sysvipc/msg | wc -l")?;
    let c = inside(
        Namespaces::IPC,
        None,
        "ipcmk -Q >/dev/null 2>&1; tail -n +2 /proc/sysvipc/msg | awk '{print $1}'",
    )
    .await?;
    let host_keys = on_host("tail -n +2 /proc/sysvipc/msg | awk '{print $1}'")?;
    let inside_made = c.lines().count() == 1 && !host_keys.lines().any(|k| k == c);
    check(
        "IPC",
        "SysV message queues",
        &format!("{host_q} queue(s), ours {key}"),
        &format!("{} queue(s)", c.lines().count()),
        inside_made && !c.contains(&key.to_string()),
    );
    // SAFETY: removing our own queue.
    unsafe { libc::msgctl(qid, libc::IPC_RMID, std::ptr::null_mut()) };

    // PID: the built-in init is PID 1 and the workload PID 2; with MOUNT too, a fresh
    // /proc makes `ps` show only the container's processes.
    let host_procs = on_host("ls -d /proc/[0-9]* | wc -l")?;
    let c = inside(
        Namespaces::PID | Namespaces::MOUNT,
        None,
        "echo $$; ls -d /proc/[0-9]* | wc -l",
    )
    .await?;
    let mut l = c.lines();
    let (pid, procs) = (l.next().unwrap_or(""), l.next().unwrap_or(""));
    check(
        "PID",
        "own pid / processes",
        &format!("pid {} / {host_procs} procs", std::process::id()),
        &format!("pid {pid} / {procs} procs"),
        pid == "2" && procs.parse::<u32>().unwrap_or(99) <= 4,
    );

    // MOUNT: a tmpfs mounted inside never shows up on the host.
    let dir = std::env::temp_dir().join(format!("cellblock-tour-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let d = dir.display();
    // (The workload itself holds no capabilities, so the tmpfs is made by the setup.)
    let out = Container::builder("/bin/sh")
        .args(["-c", &format!("grep -c ' {d} ' /proc/self/mountinfo")])
        .namespaces(Namespaces::MOUNT)
        .tmpfs(&dir)
        .output()
        .await?;
    let c = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let host_m = on_host(&format!("grep -c ' {d} ' /proc/self/mountinfo"))?;
    check(
        "MOUNT",
        "tmpfs on a temp dir",
        &format!("{host_m} mounted"),
        &format!("{c} mounted"),
        c == "1" && host_m == "0",
    );
    std::fs::remove_dir(&dir)?;

    // NET: only a loopback device, up, and no routes.
    let host_if = on_host("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' '")?;
    let c = inside(
        Namespaces::NET,
        None,
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; tail -n +2 /proc/net/route | wc -l",
    )
    .await?;
    let mut l = c.lines();
    let (ifs, routes) = (l.next().unwrap_or(""), l.next().unwrap_or(""));
    check(
        "NET",
        "interfaces / routes",
        &host_if,
        &format!("{ifs} / {routes} routes"),
        ifs == "lo" && routes == "0",
    );

    // CGROUP: the container sees its cgroup as the root.
    let host_cg = on_host("grep -v ':/$' /proc/self/cgroup | head -1")?;
    let c = inside(
        Namespaces::CGROUP,
        None,
        "grep -c -v ':/$' /proc/self/cgroup || true",
    )
    .await?;
    check(
        "CGROUP",
        "/proc/self/cgroup",
        &host_cg,
        &format!("{c} non-root entries"),
        c == "0",
    );

    // Namespace ids: every created kind differs from the host's, every other kind is shared.
    let all = Namespaces::UTS
        | Namespaces::IPC
        | Namespaces::PID
        | Namespaces::MOUNT
        | Namespaces::NET
        | Namespaces::CGROUP;
    let mut sleeper = Container::builder("/bin/sleep")
        .arg("10")
        .namespaces(all)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .await?;
    let ids = sleeper.namespace_ids()?;
    let me = NamespaceIds::current()?;
    // USER too: every container gets a user namespace of its own by default (its root is
    // an unprivileged host id, never the supervisor's), unless it asks for host_root().
    check(
        "ids",
        "differing kinds",
        "-",
        &ids.differing(&me).to_string(),
        ids.differing(&me) == all | Namespaces::USER,
    );
    // The default identity, seen from both sides: uid 0 inside, an unprivileged host uid.
    let host_uid = std::fs::read_to_string(format!("/proc/{}/status", sleeper.pid()))?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    let map = std::fs::read_to_string(format!("/proc/{}/uid_map", sleeper.pid()))?;
    let inside = map.split_whitespace().next().unwrap_or("?").to_string();
    check(
        "ids",
        "root's host uid",
        &format!("uid {host_uid}"),
        &format!("uid {inside}"),
        inside == "0" && host_uid != "0" && !host_uid.is_empty(),
    );
    sleeper.start_kill()?;
    sleeper.wait().await?;

    // USER, TIME, joining a live container's namespaces, and nesting.
    let root = nix::unistd::geteuid().is_root();
    let extra = if root {
        Namespaces::empty()
    } else {
        Namespaces::USER
    };
    all_held &= isolation::user_section(root).await?;
    all_held &= isolation::time_section(extra).await?;
    all_held &= isolation::join_section(extra).await?;
    all_held &= isolation::nesting_section().await?;

    println!("{}", "-".repeat(114));
    if all_held {
        println!("every isolation held");
        Ok(())
    } else {
        Err("some isolation did not hold".into())
    }
}
