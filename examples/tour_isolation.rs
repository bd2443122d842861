//! The tour's second half: USER, TIME, joining and nesting, each printed side by side as
//! the host sees it and as the container sees it, with whether the isolation held.
//!
//! ```text
//! cargo run --release --example tour_isolation
//! setpriv --reuid=65534 --regid=65534 --clear-groups target/release/examples/tour_isolation
//! ```
//!
//! The section functions are meant to be folded into `examples/tour.rs`; each takes the
//! namespaces to add (`Namespaces::USER` when not root) and returns whether it held.

use cellblock::{Container, NamespaceIds, Namespaces, Stdio};
use tokio::io::AsyncBufReadExt;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn row(what: &str, host: impl std::fmt::Display, inside: impl std::fmt::Display, held: bool) {
    println!(
        "  {what:<22} host: {host:<28} container: {inside:<28} {}",
        if held { "isolated" } else { "NOT ISOLATED" }
    );
}

async fn run(b: &mut cellblock::ContainerBuilder, script: &str) -> Res<String> {
    let out = b.args(["-c", script]).output().await?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn first_field(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// USER: our uid becomes 0 inside (with no privilege on the host); as root, several
/// ranges map container ids to unused host ids.
pub async fn user_section(root: bool) -> Res<bool> {
    println!("USER");
    let me = nix::unistd::geteuid().as_raw();
    let mut b = Container::builder("/bin/sh");
    b.namespaces(Namespaces::USER | Namespaces::PID)
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if root {
        b.uid_map(0, 100_000, 65_536)
            .gid_map(0, 100_000, 65_536)
            .user(1000, 1000);
    }
    let mut c = b.args(["-c", "id -u; exec sleep 10"]).spawn().await?;
    let mut lines = tokio::io::BufReader::new(c.take_stdout().ok_or("no stdout")?).lines();
    let inside = lines.next_line().await?.unwrap_or_default();
    let status = std::fs::read_to_string(format!("/proc/{}/status", c.pid()))?;
    let host_uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("?")
        .to_string();
    let expect_inside = if root { "1000" } else { "0" };
    // Inside: the chosen id; on the host: an unprivileged id (ours when rootless).
    let held = inside == expect_inside && host_uid != "0" && (root || host_uid == me.to_string());
    row("uid of the workload", &host_uid, &inside, held);
    c.start_kill()?;
    c.wait().await?;
    Ok(held)
}

/// TIME: CLOCK_BOOTTIME shifted by ten days inside; the host's uptime is unchanged.
pub async fn time_section(extra: Namespaces) -> Res<bool> {
    println!("TIME");
    let inside = run(
        Container::builder("/bin/sh")
            .namespaces(Namespaces::TIME | extra)
            .boottime_offset(10 * 86_400)
            .monotonic_offset(10 * 86_400),
        "cut -d' ' -f1 /proc/uptime",
    )
    .await?;
    let host = first_field("/proc/uptime");
    let (h, i): (f64, f64) = (host.parse()?, inside.parse()?);
    let held = i > h + 9.0 * 86_400.0;
    row("/proc/uptime (s)", &host, &inside, held);
    Ok(held)
}

/// Joining: a second worker in the first one's network namespace (a pod), and `exec`
/// into a running container.
pub async fn join_section(extra: Namespaces) -> Res<bool> {
    println!("JOINING");
    let mut first = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(Namespaces::NET | Namespaces::UTS | Namespaces::PID | Namespaces::MOUNT | extra)
        .hostname("pod-first")
        .kill_on_drop(true)
        .spawn()
        .await?;
    let mut second = first.exec("/bin/sleep")?;
    let mut second = second.arg("30").kill_on_drop(true).spawn().await?;
    let (a, b) = (first.namespace_ids()?, second.namespace_ids()?);
    let host = NamespaceIds::current()?;
    let net_shared = a.get(Namespaces::NET) == b.get(Namespaces::NET)
        && a.get(Namespaces::NET) != host.get(Namespaces::NET);
    row(
        "net ns of the 2 workers",
        format!("{:?}", host.get(Namespaces::NET).unwrap_or(0)),
        format!(
            "{:?} = {:?}",
            a.get(Namespaces::NET).unwrap_or(0),
            b.get(Namespaces::NET).unwrap_or(0)
        ),
        net_shared,
    );
    let out = run(&mut first.exec("/bin/sh")?, "hostname; echo $$").await?;
    let mut l = out.lines();
    let (name, pid) = (l.next().unwrap_or(""), l.next().unwrap_or(""));
    let host_name = nix::unistd::gethostname()?.to_string_lossy().into_owned();
    let held = name == "pod-first" && pid != "1" && host_name != name;
    row(
        "exec: hostname, $$",
        &host_name,
        format!("{name}, {pid}"),
        held,
    );
    second.start_kill()?;
    second.wait().await?;
    first.start_kill()?;
    first.wait().await?;
    Ok(net_shared && held)
}

/// Nesting: the `nested` example inside a container starts its own container.
pub async fn nesting_section() -> Res<bool> {
    println!("NESTING");
    let exe = std::env::current_exe()?;
    let nested = exe.with_file_name("nested");
    if !nested.exists() {
        println!("  NOT RUN: build the `nested` example first (cargo build --release --examples)");
        return Ok(false);
    }
    let out = tokio::process::Command::new(&nested)
        .arg("2")
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("hostname=")))
        .collect();
    let pids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("pid=")))
        .collect();
    // Each nested level is the first process of its PID namespace after the built-in
    // init (PID 1), so PID 2.
    let held = out.status.success() && names.len() == 3 && pids.get(1..) == Some(&["2", "2"][..]);
    row(
        "hostname per level",
        names.first().unwrap_or(&""),
        names.get(1..).unwrap_or_default().join(" > "),
        held,
    );
    Ok(held)
}

#[tokio::main]
async fn main() -> Res<()> {
    let root = nix::unistd::geteuid().is_root();
    let extra = if root {
        Namespaces::empty()
    } else {
        Namespaces::USER
    };
    println!(
        "running as uid {}{}",
        nix::unistd::geteuid(),
        if root {
            ""
        } else {
            " (rootless: USER added everywhere)"
        }
    );
    let mut all = true;
    all &= user_section(root).await?;
    all &= time_section(extra).await?;
    all &= join_section(extra).await?;
    all &= nesting_section().await?;
    println!(
        "{}",
        if all {
            "every isolation held"
        } else {
            "SOME ISOLATION FAILED"
        }
    );
    std::process::exit(if all { 0 } else { 1 });
}
