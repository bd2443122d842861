//! What cellblock does without root: run it as any user.
//!
//! ```text
//! cargo build --release --example rootless
//! setpriv --reuid=65534 --regid=65534 --clear-groups target/release/examples/rootless
//! ```
//!
//! Every check prints `ok <name>: ...`, `FAIL <name>: ...` or `skip <name>: why`, and the
//! exit code is 1 if anything failed. `tests/it/rootless.rs` runs it as uid 65534.
//! With `--expect-userns-disabled` it only checks that a disabled user namespace gives
//! [`Error::UserNamespacesDisabled`] (run it where `user.max_user_namespaces` is 0).

use std::path::{Path, PathBuf};

use cellblock::{Container, Error, NamespaceIds, Namespaces, Stdio};

struct Report {
    failed: bool,
}

impl Report {
    fn check(&mut self, name: &str, ok: bool, detail: impl std::fmt::Display) {
        if ok {
            println!("ok {name}: {detail}");
        } else {
            self.failed = true;
            println!("FAIL {name}: {detail}");
        }
    }
}

async fn sh(b: &mut cellblock::ContainerBuilder, script: &str) -> Result<(bool, String), Error> {
    let out = b.args(["-c", script]).output().await?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// A root directory built from the machine (see examples/rootfs.rs), and the host
/// directories to bind read-only at the same place.
fn build_root(dir: &Path) -> std::io::Result<(PathBuf, Vec<PathBuf>)> {
    let root = dir.join("root");
    for d in ["etc", "proc", "dev", "tmp", "usr", "sys"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    let mut binds = vec![PathBuf::from("/usr"), PathBuf::from("/etc")];
    for name in ["bin", "sbin", "lib", "lib64"] {
        let host = Path::new("/").join(name);
        if let Ok(target) = std::fs::read_link(&host) {
            std::os::unix::fs::symlink(target, root.join(name))?;
        } else if host.is_dir() {
            std::fs::create_dir_all(root.join(name))?;
            binds.push(host);
        }
    }
    std::fs::write(root.join("marker"), "rootless-root\n")?;
    Ok((root, binds))
}

#[tokio::main]
async fn main() {
    let mut r = Report { failed: false };
    let uid = nix::unistd::geteuid().as_raw();
    println!("running as uid {uid} gid {}", nix::unistd::getegid());

    if std::env::args().any(|a| a == "--expect-userns-disabled") {
        let err = Container::builder("/bin/true")
            .namespaces(Namespaces::USER)
            .status()
            .await;
        match err {
            Err(e @ Error::UserNamespacesDisabled { .. }) => r.check("userns-disabled", true, e),
            other => r.check("userns-disabled", false, format!("{other:?}")),
        }
        std::process::exit(r.failed as i32);
    }

    // 1. Every namespace kind at once, with USER: hostname, PID 1, root inside, only lo.
    let all = Namespaces::USER
        | Namespaces::UTS
        | Namespaces::IPC
        | Namespaces::PID
        | Namespaces::MOUNT
        | Namespaces::NET
        | Namespaces::CGROUP;
    let mut c = Container::builder("/bin/sh")
        .args(["-c", "hostname; echo $$; id -u; ls /proc | grep -c '^[0-9]'; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; \
                      ipcmk -Q >/dev/null && tail -n +2 /proc/sysvipc/msg | wc -l; grep -vc ':/$' /proc/self/cgroup; exec sleep 30"])
        .namespaces(all)
        .hostname("rootless")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .await;
    match &mut c {
        Ok(c) => {
            let ids = c.namespace_ids().expect("namespace ids");
            let mine = NamespaceIds::current().expect("own ids");
            r.check(
                "namespaces-differ",
                ids.differing(&mine) == all,
                format!("container {ids} vs supervisor {mine}"),
            );
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(c.take_stdout().unwrap()).lines();
            let mut got = Vec::new();
            let host_queues = std::fs::read_to_string("/proc/sysvipc/msg")
                .map(|s| s.lines().count())
                .unwrap_or(0);
            for _ in 0..7 {
                got.push(lines.next_line().await.ok().flatten().unwrap_or_default());
            }
            r.check(
                "uts",
                got[0] == "rootless",
                format!("hostname {:?}", got[0]),
            );
            // PID 2: the built-in init is PID 1.
            r.check("pid", got[1] == "2", format!("$$ = {:?}", got[1]));
            r.check(
                "user",
                got[2] == "0",
                format!("id -u = {:?} (host uid {uid})", got[2]),
            );
            let n: usize = got[3].parse().unwrap_or(99);
            r.check("proc", n <= 4, format!("{n} processes in /proc"));
            r.check("net", got[4] == "lo", format!("interfaces: {:?}", got[4]));
            let host_queues_after = std::fs::read_to_string("/proc/sysvipc/msg")
                .map(|s| s.lines().count())
                .unwrap_or(0);
            r.check(
                "ipc",
                got[5].trim() == "1" && host_queues == host_queues_after,
                format!("queues inside after ipcmk: {:?}; host /proc/sysvipc/msg lines {host_queues} -> {host_queues_after}", got[5].trim()),
            );
            r.check(
                "cgroup",
                got[6].trim() == "0",
                format!(
                    "{} /proc/self/cgroup lines not at the namespace root",
                    got[6].trim()
                ),
            );
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
        Err(e) => r.check("namespaces", false, e),
    }

    // 2. A root filesystem, /dev, sysfs (bound from the host: a fresh one needs a network
    //    namespace owned by our user namespace... which we do not create here), tmpfs.
    let tmp = std::env::temp_dir().join(format!("cellblock-rootless-{}", std::process::id()));
    match build_root(&tmp) {
        Ok((root, binds)) => {
            let mut b = Container::builder("/bin/sh");
            b.namespaces(Namespaces::USER | Namespaces::MOUNT | Namespaces::PID)
                .rootfs(&root)
                .mount_dev()
                .mount_sysfs()
                .tmpfs("/tmp")
                .readonly_root(true);
            for dir in &binds {
                b.bind_ro(dir, dir);
            }
            match sh(&mut b, "cat /marker; touch /usr/x; touch /new; echo x > /dev/null && echo null-ok; ls /sys/class | grep -c .; echo t > /tmp/t && echo tmp-ok").await {
                Ok((_, out)) => {
                    r.check("rootfs", out.contains("rootless-root"), out.lines().next().unwrap_or(""));
                    r.check("read-only", out.matches("Read-only file system").count() == 2, "writes to /usr and / refused");
                    r.check("dev", out.contains("null-ok"), "/dev/null usable");
                    r.check("sysfs", !out.contains("\n0\n"), "/sys/class visible");
                    r.check("tmpfs", out.contains("tmp-ok"), "/tmp writable");
                }
                Err(e) => r.check("rootfs", false, e),
            }
        }
        Err(e) => r.check("rootfs", false, format!("building the root: {e}")),
    }
    let _ = std::fs::remove_dir_all(&tmp);

    // 3. TIME in our own user namespace.
    let host_up: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    match Container::builder("/bin/cat")
        .arg("/proc/uptime")
        .namespaces(Namespaces::USER | Namespaces::TIME)
        .boottime_offset(86_400)
        .output()
        .await
    {
        Ok(out) => {
            let up: f64 = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            r.check(
                "time",
                up > host_up + 86_000.0,
                format!("uptime inside {up}, host {host_up}"),
            );
        }
        Err(e) => r.check("time", false, e),
    }

    // 4. exec into our own rootless container (joins its user namespace too).
    match Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(Namespaces::USER | Namespaces::UTS | Namespaces::PID | Namespaces::MOUNT)
        .hostname("rootless-target")
        .kill_on_drop(true)
        .spawn()
        .await
    {
        Ok(mut target) => {
            let out = match target.exec("/bin/sh") {
                Ok(mut b) => sh(&mut b, "hostname; echo $$").await,
                Err(e) => Err(e),
            };
            match out {
                Ok((ok, out)) => r.check(
                    "exec",
                    ok && out.starts_with("rootless-target\n") && !out.contains("\n1\n"),
                    out.replace('\n', " "),
                ),
                Err(e) => r.check("exec", false, e),
            }
            let _ = target.start_kill();
            let _ = target.wait().await;
        }
        Err(e) => r.check("exec", false, e),
    }

    // 5. What needs host root fails with a clear error, before anything runs.
    let e = Container::builder("/bin/true")
        .namespaces(Namespaces::USER)
        .uid_map(0, 100_000, 65_536)
        .gid_map(0, 100_000, 65_536)
        .status()
        .await;
    r.check(
        "multi-range-map",
        matches!(e, Err(Error::NeedsPrivilege { .. })),
        fmt(&e),
    );
    // Namespaces without USER: the default identity adds a user namespace of our own...
    let e = Container::builder("/bin/hostname")
        .namespaces(Namespaces::UTS)
        .hostname("auto-user")
        .output()
        .await;
    r.check(
        "auto-user-namespace",
        matches!(&e, Ok(out) if out.stdout == b"auto-user\n"),
        fmt(&e),
    );
    // ...unless host_root() keeps our own identity, where the kernel refuses them.
    let e = Container::builder("/bin/true")
        .namespaces(Namespaces::UTS)
        .host_root()
        .status()
        .await;
    r.check(
        "no-user-namespace",
        matches!(&e, Err(Error::Clone { errno, .. }) if errno.0 == libc::EPERM)
            && fmt(&e).contains("host_root"),
        fmt(&e),
    );
    let e = Container::builder("/bin/true")
        .join_path(Namespaces::NET, "/proc/1/ns/net")
        .status()
        .await;
    r.check(
        "join-host",
        matches!(
            e,
            Err(Error::NeedsPrivilege { .. }) | Err(Error::BadJoin { .. })
        ),
        fmt(&e),
    );
    let e = Container::builder("/bin/true")
        .namespaces(Namespaces::USER)
        .groups([0])
        .status()
        .await;
    r.check(
        "groups",
        matches!(e, Err(Error::NeedsPrivilege { .. })),
        fmt(&e),
    );

    let e = Container::builder("/bin/true")
        .user(1000, 1000)
        .status()
        .await;
    r.check(
        "user-without-userns",
        matches!(e, Err(Error::NeedsPrivilege { .. })),
        fmt(&e),
    );

    egress(&mut r).await;

    std::process::exit(r.failed as i32);
}

/// Rootless egress (pasta). `egress`: the container gets `eth0` with an address and a
/// default route, or the error says why not (pasta missing, `/dev/net/tun` not usable).
/// With `CELLBLOCK_EGRESS_PORT=N`, `egress-traffic`: the container connects to the gateway
/// on port N, which pasta maps to the host's loopback (where the caller listens), and
/// prints what it reads.
async fn egress(r: &mut Report) {
    use cellblock::{EgressConfig, Network};
    let script = match std::env::var("CELLBLOCK_EGRESS_PORT") {
        Ok(port) => format!(
            "ip -4 -o addr show eth0 | grep -q inet && ip route show default | grep -q via && echo configured; \
             gw=$(ip route show default | awk '{{print $3}}'); \
             timeout 5 bash -c \"exec 3<>/dev/tcp/$gw/{port} && cat <&3\""
        ),
        Err(_) => "ip -4 -o addr show eth0 | grep -q inet && ip route show default | grep -q via && echo configured".into(),
    };
    let started = std::time::Instant::now();
    let e = sh(
        Container::builder("/bin/bash")
            .namespaces(Namespaces::USER | Namespaces::PID | Namespaces::MOUNT)
            .network(Network::Egress(EgressConfig::default())),
        &script,
    )
    .await;
    let took = started.elapsed();
    // The same container without a network of its own, for the cost of egress.
    let started = std::time::Instant::now();
    let _ = sh(
        Container::builder("/bin/bash")
            .namespaces(Namespaces::USER | Namespaces::PID | Namespaces::MOUNT),
        "true",
    )
    .await;
    let base = started.elapsed();
    println!("cost egress: {took:?} with pasta (a connection included when asked), {base:?} without a network");
    match &e {
        Err(Error::MissingTool { .. }) => println!("skip egress: {}", fmt(&e)),
        Err(err) if err.to_string().contains("tun") => println!("skip egress: {err}"),
        Ok((_, out)) => {
            r.check(
                "egress",
                out.contains("configured"),
                out.lines().next().unwrap_or("").to_string(),
            );
            if std::env::var("CELLBLOCK_EGRESS_PORT").is_ok() {
                r.check(
                    "egress-traffic",
                    out.contains("from "),
                    out.lines().nth(1).unwrap_or("nothing read"),
                );
            }
        }
        Err(_) => r.check("egress", false, fmt(&e)),
    }
}

fn fmt<T: std::fmt::Debug>(r: &Result<T, Error>) -> String {
    match r {
        Ok(v) => format!("unexpectedly Ok({v:?})"),
        Err(e) => e.to_string(),
    }
}
