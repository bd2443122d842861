//! Tests of the `config.json` mapping: the two configs containerd and podman sent here
//! (`testdata/`, logged by tests/oci's contract tests) and hand-written ones. The first
//! group needs no privilege and checks what the builder and the errors show; the second
//! (root) runs busybox containers built from the mapped builder and observes both sides:
//! the host reads `/proc/PID` and the cgroup files, the workload reports what it sees.

use super::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const CTR: &str = include_str!("testdata/ctr.config.json");
const PODMAN: &str = include_str!("testdata/podman.config.json");
const PODMAN_PROCESS: &str = include_str!("testdata/podman.process.json");

/// A bundle directory with a busybox root filesystem, and the name of its container's
/// cgroup parent; both removed on drop.
struct Bundle {
    dir: PathBuf,
    cgroup: String,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        static N: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "cellblock-spec-{}-{name}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(&unique);
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("rootfs");
        for d in ["bin", "proc", "dev", "sys", "etc", "tmp", "run", "root"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for applet in [
            "sh", "cat", "echo", "grep", "head", "ls", "id", "sleep", "hostname", "mkdir", "stat",
            "cp", "chmod", "readlink", "touch", "true", "umask",
        ] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        // podman's bind sources.
        std::fs::write(dir.join("hosts"), "127.0.0.1 localhost\n").unwrap();
        std::fs::write(dir.join("hostname"), "4513eee274f8\n").unwrap();
        std::fs::write(dir.join(".containerenv"), "engine=\"podman\"\n").unwrap();
        std::fs::create_dir_all(dir.join("shm")).unwrap();
        Bundle {
            dir,
            cgroup: unique,
        }
    }

    /// The container's `linux.cgroupsPath`.
    fn cgroups_path(&self) -> String {
        format!("/{}/c", self.cgroup)
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    fn opts(&self) -> BuildOpts {
        BuildOpts {
            id: self.cgroup.clone(),
            bundle: self.dir.clone(),
            console: false,
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        // The container's leaf (gone already when the library removed it) and the parent
        // it left, in every hierarchy.
        let roots = std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten();
        for root in roots
            .map(|e| e.path())
            .chain([PathBuf::from("/sys/fs/cgroup")])
        {
            let _ = std::fs::remove_dir(root.join(&self.cgroup).join("c"));
            let _ = std::fs::remove_dir(root.join(&self.cgroup));
        }
    }
}

/// The podman config with its paths moved into `bundle`.
fn podman_json(bundle: &Bundle) -> Value {
    let mut v: Value = serde_json::from_str(PODMAN).unwrap();
    v["root"]["path"] = json!(bundle.rootfs());
    for m in v["mounts"].as_array_mut().unwrap() {
        if m["type"] == "bind" {
            let name = Path::new(m["source"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_owned();
            m["source"] = json!(bundle.dir.join(name));
        }
    }
    v["linux"]["cgroupsPath"] = json!(bundle.cgroups_path());
    v
}

/// containerd's config with its root filesystem and cgroup in `bundle`.
fn ctr_json(bundle: &Bundle) -> Value {
    let mut v: Value = serde_json::from_str(CTR).unwrap();
    v["root"]["path"] = json!(bundle.rootfs());
    v["linux"]["cgroupsPath"] = json!(bundle.cgroups_path());
    v
}

fn spec_of(v: &Value) -> Spec {
    serde_json::from_value(v.clone()).unwrap()
}

fn field_of(e: SpecError) -> String {
    match e {
        SpecError::Invalid { field, .. } | SpecError::Unsupported { field, .. } => field,
        other => panic!("not a field error: {other}"),
    }
}

// ---- Without privilege: the mapping as the builder shows it, and the refusals. ----

/// containerd's config: argv, an environment of PATH alone (replaced, not inherited),
/// cwd, the five namespaces.
#[test]
fn ctr_config_maps() {
    let bundle = Bundle::new("ctr");
    let b = builder_for(&spec_of(&ctr_json(&bundle)), &bundle.opts()).unwrap();
    assert_eq!(b.get_program(), "true");
    assert_eq!(b.get_args().count(), 0);
    let envs: Vec<_> = b.get_envs().collect();
    assert_eq!(envs.len(), 1, "{envs:?}");
    assert_eq!(envs[0].0, "PATH");
    assert_eq!(b.get_current_dir(), Some(Path::new("/")));
    assert_eq!(
        b.get_namespaces(),
        Namespaces::PID | Namespaces::IPC | Namespaces::UTS | Namespaces::MOUNT | Namespaces::NET
    );
    // The relative root.path is the bundle's; the mount points it lacked were created
    // (ctr's /dev/mqueue under the /dev tmpfs is the library's business, not the rootfs's).
    assert!(bundle.rootfs().join("run").is_dir());
}

/// podman's config: its environment, hostname, binds (their file mount points made in
/// the root filesystem) and its 434-name seccomp profile all map.
#[test]
fn podman_config_maps() {
    let bundle = Bundle::new("podman");
    let v = podman_json(&bundle);
    let b = builder_for(&spec_of(&v), &bundle.opts()).unwrap();
    let envs: Vec<String> = b
        .get_envs()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.unwrap().to_string_lossy()))
        .collect();
    for want in [
        "TERM=xterm",
        "container=podman",
        "HOME=/root",
        "HOSTNAME=4513eee274f8",
    ] {
        assert!(envs.iter().any(|e| e == want), "{want} in {envs:?}");
    }
    for file in ["etc/hosts", "etc/hostname", "run/.containerenv"] {
        assert!(bundle.rootfs().join(file).is_file(), "{file}");
    }
    // /dev/shm lies in the /dev tmpfs mounted before it: not made in the rootfs.
    assert!(!bundle.rootfs().join("dev/shm").exists());
    let policy =
        crate::seccomp::policy(spec_of(&v).linux().as_ref().unwrap().seccomp().as_ref()).unwrap();
    assert!(policy.is_enabled());
}

/// The exec process podman sent maps to a builder that joins our own namespaces' peers
/// (here: the test's own process, so nothing differs and nothing is joined).
#[test]
fn podman_exec_process_maps() {
    let mut p: Process = serde_json::from_str(PODMAN_PROCESS).unwrap();
    let b = exec_builder(&p, std::process::id() as i32, false).unwrap();
    assert_eq!(b.get_namespaces(), Namespaces::empty());
    // "true" looked up in the process's PATH inside the (here: our own) root.
    assert!(
        Path::new(b.get_program()).is_absolute(),
        "{:?}",
        b.get_program()
    );
    assert!(b.get_program().to_string_lossy().ends_with("/true"));
    p.set_args(Some(vec!["no-such-program-here".into()]));
    let e = exec_builder(&p, std::process::id() as i32, false).unwrap_err();
    assert!(e.to_string().contains("executable file not found"), "{e}");
}

/// `ociVersion`: lenient about the numbers (a newer spec's 1.3.0, which crun 1.8.1
/// refuses, a pre-release, build metadata), strict about the form: what is not
/// MAJOR.MINOR.PATCH is refused naming the field (runtime-tools' misc_props).
#[test]
fn oci_version_lenient_numbers_strict_form() {
    let bundle = Bundle::new("version");
    let base = podman_json(&bundle);
    let with = |ver: &str| {
        let mut v = base.clone();
        v["ociVersion"] = json!(ver);
        builder_for(&spec_of(&v), &bundle.opts())
    };
    for good in [
        "1.0.2",
        "1.3.0",
        "9.99.0",
        "1.0.2-dev",
        "1.1.0-rc.1",
        "1.0.0+build.5",
    ] {
        assert!(with(good).is_ok(), "{good} refused");
    }
    for bad in [
        "invalid", "1.0", "1", "1.0.0.0", "v1.0.0", "", "1..0", "1.0.x", "1.0.0 ",
    ] {
        match with(bad) {
            Err(e) => assert_eq!(field_of(e), "ociVersion", "{bad}"),
            Ok(_) => panic!("{bad:?} taken"),
        }
    }
}

/// `linux.mountLabel`: taken where SELinux is off (this host; no label means anything
/// there), refused where it is on (the library cannot apply it).
#[test]
fn mount_label_taken_only_without_selinux() {
    let text = "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811";
    let label = Some(text);
    assert!(check_mount_label(label, false).is_ok());
    assert_eq!(
        field_of(check_mount_label(label, true).unwrap_err()),
        "linux.mountLabel"
    );
    assert!(check_mount_label(None, true).is_ok());
    assert!(check_mount_label(Some(""), true).is_ok());
    assert!(!selinux_enabled(), "this host has SELinux off");
    let bundle = Bundle::new("label");
    let mut v = podman_json(&bundle);
    v["linux"]["mountLabel"] = json!(text);
    assert!(builder_for(&spec_of(&v), &bundle.opts()).is_ok());
}

/// What is refused, each naming its field.
#[test]
fn refusals_name_the_field() {
    let bundle = Bundle::new("refuse");
    let base = podman_json(&bundle);
    let refused = |edit: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        edit(&mut v);
        field_of(builder_for(&spec_of(&v), &bundle.opts()).unwrap_err())
    };
    assert_eq!(
        refused(&|v| v["process"]["args"] = json!([])),
        "process.args"
    );
    assert_eq!(
        refused(&|v| v["process"]["apparmorProfile"] = json!("docker-default")),
        "process.apparmorProfile"
    );
    assert_eq!(
        refused(&|v| v["process"]["selinuxLabel"] = json!("system_u:system_r:container_t")),
        "process.selinuxLabel"
    );
    assert_eq!(
        refused(&|v| v["process"]["capabilities"]["effective"] = json!(["CAP_SYS_ADMIN"])),
        "process.capabilities.effective"
    );
    assert_eq!(
        refused(&|v| v["process"]["capabilities"]["ambient"] = json!(["CAP_SYS_ADMIN"])),
        "process.capabilities.ambient"
    );
    assert_eq!(
        refused(&|v| v["process"]["terminal"] = json!(true)),
        "process.terminal"
    );
    assert_eq!(
        refused(&|v| v["root"]["path"] = json!("/nonexistent/rootfs")),
        "root.path"
    );
    assert_eq!(
        refused(&|v| v["linux"]["sysctl"] = json!({"kernel.core_pattern": "|/tmp/x"})),
        "linux.sysctl"
    );
    assert_eq!(
        refused(&|v| v["linux"]["cgroupsPath"] = json!("system.slice:cellblock:x")),
        "linux.cgroupsPath"
    );
    assert_eq!(
        refused(&|v| v["mounts"][0]["options"] = json!(["nosuid", "bogus"])),
        "mounts[0].options"
    );
    assert_eq!(
        refused(&|v| v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/mnt", "type": "nfs", "source": "x:/y"}))),
        "mounts[10].type"
    );
    assert_eq!(
        refused(&|v| v["linux"]["resources"]["memory"] = json!({"swappiness": 10})),
        "linux.resources.memory.swappiness"
    );
    assert_eq!(
        refused(&|v| v["linux"]["resources"]["devices"] =
            json!([{"allow": true, "type": "c", "access": "rwx"}])),
        "linux.resources.devices.access"
    );
    assert_eq!(
        refused(&|v| v["linux"]["seccomp"]["defaultAction"] = json!("SCMP_ACT_TRAP")),
        "linux.seccomp.defaultAction"
    );
    assert_eq!(
        refused(&|v| v["linux"]["seccomp"]["syscalls"][2]["action"] = json!("SCMP_ACT_TRACE")),
        "linux.seccomp.syscalls[2].action"
    );
    assert_eq!(
        refused(&|v| v["linux"]["seccomp"]["syscalls"][2]["args"] =
            json!([{"index": 6, "value": 1, "op": "SCMP_CMP_MASKED_EQ"}])),
        "linux.seccomp.syscalls[2].args"
    );
    assert_eq!(
        refused(&|v| v["linux"]["uidMappings"] =
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}])),
        "linux.uidMappings"
    );
    assert_eq!(
        refused(&|v| v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}])),
        "hostname"
    );
    assert_eq!(
        refused(&|v| v["linux"]["rootfsPropagation"] = json!("rsharedd")),
        "linux.rootfsPropagation"
    );
    assert_eq!(
        refused(&|v| v["linux"]["personality"] = json!({"domain": "LINUX32"})),
        "linux.personality"
    );
    assert_eq!(
        refused(&|v| v["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 10}})),
        "linux.timeOffsets"
    );
}

/// Lenient: another ociVersion and unknown fields are accepted.
#[test]
fn lenient_about_version_and_unknown_fields() {
    let bundle = Bundle::new("lenient");
    let mut v = podman_json(&bundle);
    v["ociVersion"] = json!("1.3.0");
    v["somethingNew"] = json!({"x": 1});
    v["process"]["futureField"] = json!(true);
    builder_for(&spec_of(&v), &bundle.opts()).unwrap();
}

/// Mount points: created in the root filesystem (directories, files for file binds),
/// never through a symlink that leaves it.
#[test]
fn mount_points_stay_inside_the_rootfs() {
    let bundle = Bundle::new("mountpoint");
    let root = bundle.rootfs();
    mount_point(&root, Path::new("/a/b/c"), true).unwrap();
    assert!(root.join("a/b/c").is_dir());
    mount_point(&root, Path::new("/a/file"), false).unwrap();
    assert!(root.join("a/file").is_file());
    let outside = bundle.dir.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
    mount_point(&root, Path::new("/escape/x/y"), true).unwrap();
    mount_point(&root, Path::new("/escape"), true).unwrap();
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "created through a symlink"
    );
    assert_eq!(
        field_of(clean_destination(Path::new("/a/../../etc"), "mounts[0]").unwrap_err()),
        "mounts[0].destination"
    );
}

#[test]
fn mount_options_and_sizes() {
    assert_eq!(parse_size("65536k"), Some(65536 << 10));
    assert_eq!(parse_size("64m"), Some(64 << 20));
    assert_eq!(parse_size("1g"), Some(1 << 30));
    assert_eq!(parse_size("4096"), Some(4096));
    assert_eq!(parse_size("50%"), None);
    let m: Mount = serde_json::from_value(json!({
        "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "strictatime", "mode=1777", "size=65536k", "ro"]
    }))
    .unwrap();
    assert_eq!(
        mount_options(&m, "mounts[0]").unwrap(),
        MountOptions {
            bind: false,
            flags: libc::MS_NOSUID | libc::MS_RDONLY,
            mode: Some(0o1777),
            size: Some(65536 << 10)
        }
    );
}

/// sysctl: runc's namespaced keys only, and only with their namespace.
#[test]
fn sysctl_keys_are_checked() {
    use crate::sysctl::{check, namespace_of};
    assert_eq!(namespace_of("net.ipv4.ip_forward"), Some(Namespaces::NET));
    assert_eq!(namespace_of("kernel.shmmax"), Some(Namespaces::IPC));
    assert_eq!(namespace_of("fs.mqueue.queues_max"), Some(Namespaces::IPC));
    assert_eq!(namespace_of("kernel.domainname"), Some(Namespaces::UTS));
    assert_eq!(namespace_of("kernel.core_pattern"), None);
    assert_eq!(namespace_of("vm.overcommit_memory"), None);
    let one = |k: &str| Some([(k.to_string(), "1".to_string())].into_iter().collect());
    check(one("net.ipv4.ip_forward").as_ref(), Namespaces::NET).unwrap();
    check(one("net/ipv4/ip_forward").as_ref(), Namespaces::NET).unwrap();
    assert!(check(one("net.ipv4.ip_forward").as_ref(), Namespaces::IPC).is_err());
    assert!(check(one("kernel.shmmax").as_ref(), Namespaces::NET).is_err());
    assert!(check(one("net.ipv4...x").as_ref(), Namespaces::NET).is_err());
}

/// The device rules in runc's order: the spec's (ctr's start with a deny all), the
/// defaults, the devices'.
#[test]
fn device_rules_plan() {
    let spec = spec_of(&serde_json::from_str::<Value>(CTR).unwrap());
    let rules = spec
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone();
    let plan = crate::devices::plan(rules.as_deref().unwrap(), &[]).unwrap();
    assert_eq!(plan[0], ("devices.deny", "a".to_string()), "ctr's deny all");
    assert_eq!(plan[1], ("devices.allow", "c 1:3 rwm".to_string()));
    assert!(plan.contains(&("devices.allow", "c 136:* rwm".to_string())));
    let tail: Vec<&str> = plan[plan.len() - crate::devices::DEFAULT_RULES.len()..]
        .iter()
        .map(|(_, l)| l.as_str())
        .collect();
    assert_eq!(tail, crate::devices::DEFAULT_RULES);
}

/// The x86_64 table agrees with libc's numbers.
#[test]
fn syscall_table_matches_libc() {
    use crate::seccomp::syscall_number;
    for (name, nr) in [
        ("read", libc::SYS_read),
        ("personality", libc::SYS_personality),
        ("sethostname", libc::SYS_sethostname),
        ("clone3", libc::SYS_clone3),
        ("set_mempolicy_home_node", libc::SYS_set_mempolicy_home_node),
        ("_sysctl", libc::SYS__sysctl),
    ] {
        assert_eq!(syscall_number(name), Some(nr), "{name}");
    }
    assert_eq!(syscall_number("_llseek"), None);
    assert_eq!(syscall_number("clock_settime64"), None);
}

// ---- As root: busybox containers from the mapped builders, observed from both sides. ----

/// `f`, failing the test after 60 s.
async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("no answer in 60 s")
}

/// Runs the builder's container to completion with its output collected.
async fn output(mut b: ContainerBuilder) -> cellblock::Output {
    b.die_with_supervisor(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tokio::time::timeout(Duration::from_secs(60), b.output())
        .await
        .expect("the container did not finish in 60 s")
        .unwrap()
}

fn script(v: &mut Value, script: &str) {
    v["process"]["args"] = json!(["sh", "-c", script]);
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Waits (30 s at most) until process `pid` runs its program: its exe is no longer this
/// test binary (the setup child is a copy of it until execve).
async fn exec_done(pid: i32) -> Result<(), tokio::time::error::Elapsed> {
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        while std::fs::read_link(format!("/proc/{pid}/exe")).ok().as_ref() == Some(&me) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// A line of /proc/PID/status, e.g. "CapBnd".
fn status_field(status: &str, name: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("{name} in {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

fn mask_of(caps: &[&str]) -> u64 {
    caps.iter()
        .map(|c| c.parse::<Capability>().unwrap().bitmask())
        .fold(0, |a, b| a | b)
}

/// podman's config run for real: the workload sees its hostname, the env, its caps
/// (the 14 Docker defaults in the bounding set, seen in its own /proc/self/status and
/// by the host in /proc/PID/status), the binds, the read-only /sys, the masked and
/// read-only paths, and the rlimits.
#[tokio::test(flavor = "multi_thread")]
async fn podman_config_runs() {
    let bundle = Bundle::new("podman-run");
    let mut v = podman_json(&bundle);
    script(
        &mut v,
        "hostname; echo env=$container; grep -E '^Cap(Bnd|Eff|Prm)' /proc/self/status; \
         cat /etc/hostname; ulimit -n; \
         if touch /sys/kernel/x 2>/dev/null; then echo sys=rw; else echo sys=ro; fi; \
         if echo 1 > /proc/sys/kernel/ns_last_pid; then echo procsys=rw; else echo procsys=ro; fi 2>/dev/null; \
         if echo c > /proc/sysrq-trigger; then echo sysrq=rw; else echo sysrq=ro; fi 2>/dev/null; \
         echo keys=$(stat -c %t:%T /proc/keys); \
         grep -c ' /sys/fs/cgroup/' /proc/self/mountinfo",
    );
    let b = builder_for(&spec_of(&v), &bundle.opts()).unwrap();
    let out = output(b).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "4513eee274f8");
    assert_eq!(lines[1], "env=podman");
    let caps = v["process"]["capabilities"]["bounding"].as_array().unwrap();
    let want = mask_of(&caps.iter().map(|c| c.as_str().unwrap()).collect::<Vec<_>>());
    for (i, name) in ["CapPrm", "CapEff", "CapBnd"].iter().enumerate() {
        assert!(lines[2 + i].starts_with(name), "{stdout}");
        let have = u64::from_str_radix(lines[2 + i].split_whitespace().nth(1).unwrap(), 16);
        assert_eq!(have.unwrap(), want, "{name}");
    }
    assert_eq!(lines[5], "4513eee274f8", "the /etc/hostname bind");
    assert_eq!(lines[6], "1024", "RLIMIT_NOFILE");
    assert_eq!(lines[7], "sys=ro");
    assert_eq!(lines[8], "procsys=ro");
    assert_eq!(
        lines[9], "sysrq=ro",
        "readonlyPaths has /proc/sysrq-trigger"
    );
    assert_eq!(
        lines[10], "keys=1:3",
        "maskedPaths has /proc/keys: /dev/null bound on it"
    );
    let cgroup_mounts: usize = lines[11].parse().unwrap();
    assert!(
        cgroup_mounts > 0,
        "the host's cgroup hierarchies under /sys/fs/cgroup"
    );
}

/// containerd's config run for real: no_new_privs (noNewPrivileges true), the groups
/// (additionalGids [0]), its /run tmpfs (mode 755), the library's /dev with the
/// runtime-spec's default devices and links, and no hostname of its own set (none given:
/// the new UTS namespace keeps the host's name).
#[tokio::test(flavor = "multi_thread")]
async fn ctr_config_runs() {
    let bundle = Bundle::new("ctr-run");
    let mut v = ctr_json(&bundle);
    script(
        &mut v,
        "grep NoNewPrivs /proc/self/status; id -G; stat -c %a /run; grep -c ' /run tmpfs ' /proc/mounts; \
         ls /dev | grep -E '^(null|zero|full|random|urandom|tty|ptmx|fd|stdin|stdout|stderr|pts|shm|mqueue)$' | sort | tr '\n' ' '; echo; \
         readlink /dev/ptmx; readlink /dev/fd",
    );
    let out = output(builder_for(&spec_of(&v), &bundle.opts()).unwrap()).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0].split_whitespace().nth(1), Some("1"), "{stdout}");
    assert_eq!(lines[1], "0");
    assert_eq!(&lines[2..4], ["755", "1"], "/run is a tmpfs of mode 755");
    assert_eq!(
        lines[4].trim(),
        "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero"
    );
    assert_eq!(&lines[5..7], ["pts/ptmx", "/proc/self/fd"]);
}

/// The host's side of the capabilities: /proc/PID/status of the running workload holds
/// exactly the spec's set in its bounding, permitted and effective sets, and nothing in
/// inheritable and ambient. The control: without `process.capabilities` every set is
/// empty.
#[tokio::test(flavor = "multi_thread")]
async fn capabilities_seen_from_the_host() {
    for with_caps in [true, false] {
        let bundle = Bundle::new("caps");
        let mut v = ctr_json(&bundle);
        script(&mut v, "sleep 30");
        if !with_caps {
            v["process"]["capabilities"] = Value::Null;
        }
        let want = if with_caps {
            let caps = v["process"]["capabilities"]["bounding"].as_array().unwrap();
            mask_of(&caps.iter().map(|c| c.as_str().unwrap()).collect::<Vec<_>>())
        } else {
            0
        };
        let mut b = builder_for(&spec_of(&v), &bundle.opts()).unwrap();
        b.die_with_supervisor(true).stdin(Stdio::null());
        let mut c = within(b.spawn()).await.unwrap();
        let pid = c.pid();
        let started = exec_done(pid).await;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        within(c.kill()).await.unwrap();
        started.expect("the workload did not start in 30 s");
        for set in ["CapBnd", "CapPrm", "CapEff"] {
            assert_eq!(
                status_field(&status, set),
                want,
                "{set} with caps {with_caps}"
            );
        }
        // Inheritable and ambient as the spec says: empty.
        for set in ["CapInh", "CapAmb"] {
            assert_eq!(status_field(&status, set), 0, "{set} with caps {with_caps}");
        }
    }
}

/// A non-root workload (podman's config with `user` 1000:1000) keeps the bounding set but
/// holds no capability after execve, as the kernel does with runc: its ambient set is
/// empty. The control: with CAP_KILL also in inheritable and ambient, it holds CAP_KILL.
#[tokio::test(flavor = "multi_thread")]
async fn non_root_workload_gets_only_its_ambient_capabilities() {
    for ambient in [false, true] {
        let bundle = Bundle::new("nonroot");
        let mut v = podman_json(&bundle);
        v["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        if ambient {
            v["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL"]);
            v["process"]["capabilities"]["ambient"] = json!(["CAP_KILL"]);
        }
        script(&mut v, "id -u; grep -E '^Cap(Eff|Bnd)' /proc/self/status");
        let out = output(builder_for(&spec_of(&v), &bundle.opts()).unwrap()).await;
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
        let caps = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        let bounding = mask_of(&caps.iter().map(|c| c.as_str().unwrap()).collect::<Vec<_>>());
        let want_eff = if ambient { mask_of(&["CAP_KILL"]) } else { 0 };
        assert_eq!(stdout.lines().next(), Some("1000"));
        assert_eq!(
            status_field(&stdout, "CapEff"),
            want_eff,
            "ambient {ambient}: {stdout}"
        );
        assert_eq!(status_field(&stdout, "CapBnd"), bounding, "{stdout}");
    }
}

/// seccomp: podman's profile (less its EPERM rule for sethostname) makes a call outside
/// its allow list (sethostname) fail with
/// the profile's defaultErrnoRet, ENOSYS. The control: the same container without the
/// profile gets EPERM (no CAP_SYS_ADMIN), so the errno is the filter's.
#[tokio::test(flavor = "multi_thread")]
async fn seccomp_denial_returns_the_profiles_errno() {
    for with_profile in [true, false] {
        let bundle = Bundle::new("seccomp");
        let mut v = podman_json(&bundle);
        script(&mut v, "hostname other 2>&1; hostname");
        // podman's profile fails sethostname with EPERM by a rule of its own; without that
        // rule it is a call outside the allow list.
        for rule in v["linux"]["seccomp"]["syscalls"].as_array_mut().unwrap() {
            let names = rule["names"].as_array_mut().unwrap();
            names.retain(|n| n != "sethostname");
        }
        if !with_profile {
            v["linux"]["seccomp"] = Value::Null;
        }
        let out = output(builder_for(&spec_of(&v), &bundle.opts()).unwrap()).await;
        let stdout = text(&out.stdout);
        let want = if with_profile {
            "Function not implemented"
        } else {
            "Operation not permitted"
        };
        assert!(stdout.contains(want), "profile {with_profile}: {stdout}");
        assert!(stdout.ends_with("4513eee274f8\n"), "{stdout}");
    }
}

/// personality() under podman's profile: allowed for the listed values only (allow_arg);
/// another value fails with ENOSYS. Checked with busybox's `linux32`/`setarch`-free way:
/// a shell cannot call personality, so the rules are checked on the compiled policy by
/// the library's tests; here the same profile must still run a workload at all (the
/// profile allows what busybox and the setup need).
#[tokio::test(flavor = "multi_thread")]
async fn podman_profile_runs_busybox() {
    let bundle = Bundle::new("profile");
    let mut v = podman_json(&bundle);
    script(&mut v, "ls / > /dev/null && mkdir /tmp/d && echo ok");
    let out = output(builder_for(&spec_of(&v), &bundle.opts()).unwrap()).await;
    assert_eq!(text(&out.stdout), "ok\n", "{}", text(&out.stderr));
}

/// `linux.rootfsPropagation` (runtime-tools' check, with CAP_SYS_ADMIN in the
/// container): bind `/` recursively to `/t`, then bind `/d` onto `/m`; the file in `/d`
/// shows at `/t/m` only when the root is shared. private (the default) and slave hide it,
/// unbindable refuses the bind of `/` itself; in every case the host sees none of the
/// container's mounts.
#[tokio::test(flavor = "multi_thread")]
async fn rootfs_propagation_shared_private_unbindable() {
    for (prop, want) in [
        ("shared", "exposed"),
        ("private", "hidden"),
        ("slave", "hidden"),
        ("unbindable", "unbindable"),
    ] {
        let bundle = Bundle::new("propagation");
        let mut v = podman_json(&bundle);
        for set in ["bounding", "effective", "permitted"] {
            v["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_ADMIN"));
        }
        v["linux"]["seccomp"] = Value::Null;
        v["linux"]["rootfsPropagation"] = json!(prop);
        script(
            &mut v,
            "mkdir -p /t /m /d && touch /d/f && \
             { mount --rbind / /t || { echo unbindable; exit 0; }; } && mount --bind /d /m && \
             if [ -e /t/m/f ]; then echo exposed; else echo hidden; fi",
        );
        let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let out = output(builder_for(&spec_of(&v), &bundle.opts()).unwrap()).await;
        assert_eq!(
            text(&out.stdout),
            format!("{want}\n"),
            "{prop}: {}",
            text(&out.stderr)
        );
        let after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let ours = |m: &str| {
            m.lines()
                .filter(|l| l.contains(" /t") || l.contains("/m "))
                .count()
        };
        assert_eq!(
            ours(&after),
            ours(&before),
            "{prop}: a mount reached the host"
        );
    }
}

/// `linux.devices` the host has no node for (runtime-tools' linux_devices: c 10:666,
/// b 8:666 and a FIFO) are made with mknod in the container's /dev, with the config's mode
/// and owner exactly (the umask 022 of podman's config would otherwise take the group's
/// write bit); a FIFO gets no device cgroup rule.
#[tokio::test(flavor = "multi_thread")]
async fn devices_the_host_lacks_are_made() {
    assert!(!Path::new("/dev/char/10:666").exists() && !Path::new("/dev/block/8:666").exists());
    let bundle = Bundle::new("mknod");
    let mut v = podman_json(&bundle);
    v["linux"]["devices"] = json!([
        {"path": "/dev/test1", "type": "c", "major": 10, "minor": 666, "fileMode": 432, "uid": 0, "gid": 0},
        {"path": "/dev/test2", "type": "b", "major": 8, "minor": 666, "fileMode": 432, "uid": 1, "gid": 2},
        {"path": "/dev/test3", "type": "p", "major": 8, "minor": 666, "fileMode": 432}
    ]);
    script(
        &mut v,
        "for d in test1 test2 test3; do stat -c '%n %F %t:%T %a %u:%g' /dev/$d; done",
    );
    let out = output(builder_for(&spec_of(&v), &bundle.opts()).unwrap()).await;
    assert_eq!(
        text(&out.stdout),
        "/dev/test1 character special file a:29a 660 0:0\n\
         /dev/test2 block special file 8:29a 660 1:2\n\
         /dev/test3 fifo 0:0 660 0:0\n",
        "{}",
        text(&out.stderr)
    );
    let rules = crate::devices::plan(
        &[],
        &spec_of(&v)
            .linux()
            .as_ref()
            .unwrap()
            .devices()
            .clone()
            .unwrap(),
    )
    .unwrap();
    assert!(rules.iter().any(|(_, l)| l == "c 10:666 rwm"), "{rules:?}");
    assert!(rules.iter().any(|(_, l)| l == "b 8:666 rwm"), "{rules:?}");
    assert!(!rules.iter().any(|(_, l)| l.starts_with('p')), "{rules:?}");
}

/// Creates the container, detaches it, runs `after_create`, starts it and waits until its
/// cgroup is empty; returns the stdout file's contents and what `inspect` read from the
/// created container.
async fn run_detached<T>(
    bundle: &Bundle,
    v: &Value,
    inspect: impl FnOnce(&cellblock::Detached) -> T,
) -> (String, T) {
    let spec = spec_of(v);
    let out_path = bundle.dir.join("stdout");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut b = builder_for(&spec, &bundle.opts()).unwrap();
    let err = std::fs::File::create(bundle.dir.join("stderr")).unwrap();
    b.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .start_fifo(bundle.dir.join("fifo"));
    let created = within(b.create()).await.unwrap();
    let d = created.detach().unwrap();
    let result = after_create(&spec, &d);
    let seen = inspect(&d);
    if let Err(e) = result {
        d.destroy().unwrap();
        panic!("after_create: {e}");
    }
    d.start().unwrap();
    let gone = tokio::time::timeout(Duration::from_secs(30), async {
        while d.state() != cellblock::DetachedState::Stopped {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // We are its parent: reap it.
    let mut status = 0;
    // SAFETY: waitpid on a child of this process.
    unsafe { libc::waitpid(d.pid, &mut status, 0) };
    eprintln!(
        "container status {status:#x}, stderr: {}",
        std::fs::read_to_string(bundle.dir.join("stderr")).unwrap_or_default()
    );
    d.destroy().unwrap();
    gone.expect("the container did not stop in 30 s");
    (std::fs::read_to_string(&out_path).unwrap(), seen)
}

/// Device cgroup (v1), the attack: the host's /dev/loop-control bound into the container
/// (a bind keeps the node usable) cannot be opened under podman's "deny all" rule, while
/// the default devices (/dev/null) still can, and `devices.list` shows exactly the
/// defaults. The control: the same container with no device rule opens it.
#[tokio::test(flavor = "multi_thread")]
async fn device_rules_reach_the_devices_cgroup() {
    for deny_all in [true, false] {
        let bundle = Bundle::new("devices");
        let mut v = podman_json(&bundle);
        v["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/dev/loop-control", "type": "bind",
            "source": "/dev/loop-control", "options": ["bind"]
        }));
        script(
            &mut v,
            "if ( : < /dev/loop-control ); then echo loop=open; else echo loop=denied; fi 2>/dev/null; \
             if echo x > /dev/null; then echo null=ok; else echo null=denied; fi 2>/dev/null",
        );
        if !deny_all {
            v["linux"]["resources"]["devices"] = json!([]);
        }
        let (stdout, list) = run_detached(&bundle, &v, |d| {
            let dir = d
                .cgroup_dirs
                .iter()
                .find(|p| p.join("devices.list").exists())
                .expect("a devices cgroup");
            std::fs::read_to_string(dir.join("devices.list")).unwrap()
        })
        .await;
        if deny_all {
            assert_eq!(stdout, "loop=denied\nnull=ok\n", "{list}");
            let mut have: Vec<&str> = list.lines().collect();
            let mut want = crate::devices::DEFAULT_RULES.to_vec();
            have.sort_unstable();
            want.sort_unstable();
            assert_eq!(have, want);
        } else {
            assert_eq!(stdout, "loop=open\nnull=ok\n", "{list}");
            assert_eq!(list.trim(), "a *:* rwm");
        }
    }
}

/// sysctl: written in the container's namespaces between create and start; the workload
/// reads its values, the host's stay as they were.
#[tokio::test(flavor = "multi_thread")]
async fn sysctls_are_applied_in_the_containers_namespaces() {
    let bundle = Bundle::new("sysctl");
    let mut v = podman_json(&bundle);
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_shm = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    let want_fwd = if host_fwd.trim() == "1" { "0" } else { "1" };
    v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": want_fwd, "kernel.shmmni": "1234"});
    script(
        &mut v,
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
    );
    let (stdout, ()) = run_detached(&bundle, &v, |_| ()).await;
    assert_eq!(stdout, format!("{want_fwd}\n1234\n"));
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(),
        host_shm
    );
}

/// Limits: memory, pids, cpu reach the container's cgroup files (v1 here).
#[tokio::test(flavor = "multi_thread")]
async fn resources_reach_the_cgroup() {
    let bundle = Bundle::new("resources");
    let mut v = podman_json(&bundle);
    v["linux"]["resources"]["memory"] = json!({"limit": 64 << 20, "swap": 96 << 20});
    v["linux"]["resources"]["pids"] = json!({"limit": 77});
    v["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 100000, "shares": 512});
    script(&mut v, "true");
    let (_, files) = run_detached(&bundle, &v, |d| {
        let read = |file: &str| {
            d.cgroup_dirs
                .iter()
                .map(|p| p.join(file))
                .find(|p| p.exists())
                .map(|p| std::fs::read_to_string(p).unwrap().trim().to_string())
        };
        (
            read("memory.limit_in_bytes").or_else(|| read("memory.max")),
            read("pids.max"),
            read("cpu.cfs_quota_us"),
            read("cpu.shares"),
        )
    })
    .await;
    assert_eq!(files.0.as_deref(), Some("67108864"));
    assert_eq!(files.1.as_deref(), Some("77"));
    assert_eq!(files.2.as_deref(), Some("50000"));
    assert_eq!(files.3.as_deref(), Some("512"));
}

/// exec: a process from podman's exec process file, run by `exec_builder_in` in a running
/// container: it sees the container's hostname, its PID 1 (the container's `sleep`), its
/// root filesystem, and gets the profile's ENOSYS; the host sees it in the container's
/// namespaces.
#[tokio::test(flavor = "multi_thread")]
async fn exec_joins_the_running_container() {
    let bundle = Bundle::new("exec");
    let mut v = podman_json(&bundle);
    // Without its own EPERM rule sethostname is outside the allow list (as above).
    for rule in v["linux"]["seccomp"]["syscalls"].as_array_mut().unwrap() {
        rule["names"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n != "sethostname");
    }
    script(&mut v, "exec sleep 30");
    let spec = spec_of(&v);
    let mut b = builder_for(&spec, &bundle.opts()).unwrap();
    b.stdin(Stdio::null()).start_fifo(bundle.dir.join("fifo"));
    let d = within(b.create()).await.unwrap().detach().unwrap();
    d.start().unwrap();
    let started = exec_done(d.pid).await;
    let mut p: Process = serde_json::from_str(PODMAN_PROCESS).unwrap();
    p.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "hostname; cat /proc/1/comm; ls /run/.containerenv; hostname x 2>&1; sleep 1".into(),
    ]));
    let result = async {
        let mut e = exec_builder_in(&spec, &p, d.pid, false)?;
        e.die_with_supervisor(true)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let c = within(e.spawn()).await?;
        let ns = |pid: i32, kind: &str| std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok();
        let same = ["pid", "mnt", "uts", "net", "ipc"]
            .iter()
            .all(|k| ns(c.pid(), k) == ns(d.pid, k));
        let out = tokio::time::timeout(Duration::from_secs(30), c.wait_with_output())
            .await
            .expect("exec did not finish in 30 s")?;
        Ok::<_, SpecError>((same, out))
    }
    .await;
    d.destroy().unwrap();
    // SAFETY: waitpid on a child of this process (the detached container).
    unsafe { libc::waitpid(d.pid, std::ptr::null_mut(), 0) };
    started.expect("the container did not start in 30 s");
    let (same, out) = result.unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout,
        "4513eee274f8\nsleep\n/run/.containerenv\nhostname: sethostname: Function not implemented\n",
        "{}",
        text(&out.stderr)
    );
    assert!(same, "the exec'd process is in the container's namespaces");
}

/// Bind options: podman's /dev/shm bind is nosuid, nodev, noexec: a program copied into its
/// source cannot be executed in the container (the attack), and mountinfo shows the flags.
/// The control: the same bind without noexec runs it. A tmpfs with noexec likewise.
#[tokio::test(flavor = "multi_thread")]
async fn bind_and_tmpfs_options_apply() {
    for noexec in [true, false] {
        let bundle = Bundle::new("bindopts");
        // Named after an applet: busybox runs as the applet its name says.
        std::fs::copy("/bin/busybox", bundle.dir.join("shm/true")).unwrap();
        let mut v = podman_json(&bundle);
        let opts = if noexec {
            json!(["bind", "rprivate", "nosuid", "noexec", "nodev"])
        } else {
            json!(["bind", "rprivate", "nosuid", "nodev"])
        };
        for m in v["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/dev/shm" {
                m["options"] = opts.clone();
            }
        }
        let mut tmp_opts = vec!["nosuid", "nodev", "mode=1777"];
        if noexec {
            tmp_opts.push("noexec");
        }
        v["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": tmp_opts
        }));
        script(
            &mut v,
            "/dev/shm/true && echo shm=ran || echo shm=refused; \
             cat /dev/shm/true > /tmp/true; chmod 755 /tmp/true; \
             /tmp/true && echo tmp=ran || echo tmp=refused; \
             grep -E ' /dev/shm | /tmp ' /proc/self/mountinfo",
        );
        let out = output(builder_for(&spec_of(&v), &bundle.opts()).unwrap()).await;
        let stdout = text(&out.stdout);
        let word = if noexec { "refused" } else { "ran" };
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines[0],
            format!("shm={word}"),
            "{stdout}{}",
            text(&out.stderr)
        );
        assert_eq!(
            lines[1],
            format!("tmp={word}"),
            "{stdout}{}",
            text(&out.stderr)
        );
        // The last one is on top (mountinfo lists mounts in the order they were made):
        // with the bind, the library's /dev/shm tmpfs lies under it.
        let shm = lines
            .iter()
            .rev()
            .find(|l| l.contains(" /dev/shm "))
            .unwrap();
        let flags = shm.split_whitespace().nth(5).unwrap();
        assert!(flags.contains("nosuid") && flags.contains("nodev"), "{shm}");
        assert_eq!(flags.contains("noexec"), noexec, "{shm}");
    }
}

/// `process.oomScoreAdj` is written between create and start: the host reads it in
/// /proc/PID/oom_score_adj, the workload in its own.
#[tokio::test(flavor = "multi_thread")]
async fn oom_score_adj_is_set() {
    let bundle = Bundle::new("oom");
    let mut v = podman_json(&bundle);
    v["process"]["oomScoreAdj"] = json!(321);
    script(&mut v, "cat /proc/self/oom_score_adj");
    let (stdout, host) = run_detached(&bundle, &v, |d| {
        std::fs::read_to_string(format!("/proc/{}/oom_score_adj", d.pid)).unwrap()
    })
    .await;
    assert_eq!(host.trim(), "321");
    assert_eq!(stdout, "321\n");
}

/// A namespace with a `path` is joined: the network namespace of a running container, by
/// its /proc path; the workload is in it (same inode, seen from the host). A PID
/// namespace with a path, with `create` (runtime-tools `linux_ns_path`, its `pid` case):
/// the created workload is already in it while it waits at its gate (seen from the host),
/// and inside it is a process of that namespace, not its pid 1. A mount namespace with a
/// path, with the bundle's root filesystem (`linux_ns_path`'s `mnt` case).
#[tokio::test(flavor = "multi_thread")]
async fn namespaces_with_a_path_are_joined() {
    let first = Bundle::new("ns-first");
    let mut v = podman_json(&first);
    script(&mut v, "exec sleep 30");
    let spec = spec_of(&v);
    let mut b = builder_for(&spec, &first.opts()).unwrap();
    b.stdin(Stdio::null()).start_fifo(first.dir.join("fifo"));
    let d = within(b.create()).await.unwrap().detach().unwrap();
    d.start().unwrap();
    let net = format!("/proc/{}/ns/net", d.pid);
    let theirs = std::fs::read_link(&net).unwrap();
    let their_pidns = std::fs::read_link(format!("/proc/{}/ns/pid", d.pid)).unwrap();

    let second = Bundle::new("ns-second");
    let mut w = podman_json(&second);
    script(&mut w, "readlink /proc/self/ns/net");
    for ns in w["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!(net);
        }
    }
    let joined = output(builder_for(&spec_of(&w), &second.opts()).unwrap()).await;
    // The PID namespace by path, created.
    let third = Bundle::new("ns-third");
    let mut x = podman_json(&third);
    script(&mut x, "echo $$; readlink /proc/self/ns/pid");
    for ns in x["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "pid" {
            ns["path"] = json!(format!("/proc/{}/ns/pid", d.pid));
        }
    }
    let (stdout, at_gate) = run_detached(&third, &x, |c| {
        std::fs::read_link(format!("/proc/{}/ns/pid", c.pid)).unwrap()
    })
    .await;
    // The mount namespace by path, with the bundle's root filesystem (`linux_ns_path`'s
    // `mnt` case: the namespace of an `unshare --mount`, a copy of ours, where the bundle's
    // path exists). Set up in that namespace, which moves the `unshare`'s process into the
    // new root too, as with runc.
    /// Kills and reaps the `unshare` (by its pid: our child) however the test ends.
    struct Reaped(std::process::Child);
    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let unshared = Reaped(
        std::process::Command::new("unshare")
            .args(["--mount", "sleep", "100"])
            .spawn()
            .unwrap(),
    );
    let upid = unshared.0.id();
    let ours_mnt = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let their_mntns = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(n) = std::fs::read_link(format!("/proc/{upid}/ns/mnt")) {
                if n != ours_mnt {
                    return n;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("unshare made no mount namespace");
    let fourth = Bundle::new("ns-fourth");
    let mut y = podman_json(&fourth);
    script(&mut y, "readlink /proc/self/ns/mnt");
    for ns in y["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "mount" {
            ns["path"] = json!(format!("/proc/{upid}/ns/mnt"));
        }
    }
    let (mnt_stdout, ()) = run_detached(&fourth, &y, |_| ()).await;
    drop(unshared);
    d.destroy().unwrap();
    // SAFETY: waitpid on a child of this process (the detached container).
    unsafe { libc::waitpid(d.pid, std::ptr::null_mut(), 0) };
    assert_eq!(
        text(&joined.stdout).trim(),
        theirs.to_str().unwrap(),
        "{}",
        text(&joined.stderr)
    );
    assert_ne!(theirs, std::fs::read_link("/proc/self/ns/net").unwrap());
    assert_ne!(
        their_pidns,
        std::fs::read_link("/proc/self/ns/pid").unwrap()
    );
    assert_eq!(at_gate, their_pidns, "the created process's PID namespace");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout:?}");
    let pid_inside: i32 = lines[0].parse().unwrap();
    assert!(pid_inside > 1, "pid {pid_inside} in the joined namespace");
    assert_eq!(lines[1], their_pidns.to_str().unwrap());
    assert_ne!(
        their_mntns,
        std::fs::read_link("/proc/self/ns/mnt").unwrap()
    );
    assert_eq!(mnt_stdout.trim(), their_mntns.to_str().unwrap());
}

/// uid/gid mappings: a new user namespace mapping the container's 0..65536 to host
/// 200000..: the workload is root inside, the host sees uid 200000 in /proc/PID/status.
#[tokio::test(flavor = "multi_thread")]
async fn uid_and_gid_mappings() {
    let bundle = Bundle::new("userns");
    let mut v = podman_json(&bundle);
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    script(&mut v, "id -u; id -g; cat /proc/self/uid_map");
    let (stdout, status) = run_detached(&bundle, &v, |d| {
        std::fs::read_to_string(format!("/proc/{}/status", d.pid)).unwrap()
    })
    .await;
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("200000"),
        "{uid_line}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(&lines[..2], ["0", "0"], "{stdout}");
    let map: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(map, ["0", "200000", "65536"]);
}

/// Our own cgroup in each hierarchy, by its `/proc/self/cgroup` controllers field
/// (`memory`, `cpu,cpuacct`, empty for v2).
fn own_cgroups() -> BTreeMap<String, PathBuf> {
    cgroups_of("self")
}

fn cgroups_of(pid: &str) -> BTreeMap<String, PathBuf> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            Some((ctrls.to_string(), PathBuf::from(path)))
        })
        .collect()
}

/// Checks that the container `pid` is in `own/rel` in the memory, pids and v2 hierarchies
/// (each read from our own cgroup *in that hierarchy*: on this hybrid host our memory
/// cgroup is not our v2 one).
fn assert_under_ours(seen: &BTreeMap<String, PathBuf>, rel: &Path) {
    let own = own_cgroups();
    // A v1 (or hybrid) host: the library uses the v1 hierarchies; v2-only: the v2 one.
    let used: &[&str] = if own.contains_key("memory") {
        &["memory", "pids"]
    } else {
        &[""]
    };
    for &ctrl in used {
        let (Some(ours), Some(theirs)) = (own.get(ctrl), seen.get(ctrl)) else {
            continue;
        };
        assert_eq!(theirs, &ours.join(rel), "{ctrl:?}: {seen:?}");
    }
    assert!(
        seen.contains_key("memory") || seen.contains_key(""),
        "{seen:?}"
    );
}

/// A relative cgroupsPath lands under our own cgroup, in every hierarchy the container
/// has (the host reads the container's /proc/PID/cgroup).
#[tokio::test(flavor = "multi_thread")]
async fn relative_cgroups_path_lands_under_ours() {
    let bundle = Bundle::new("relcg");
    let mut v = podman_json(&bundle);
    let rel = format!("{}-rel/c", bundle.cgroup);
    v["linux"]["cgroupsPath"] = json!(rel);
    script(&mut v, "true");
    let (_, seen) = run_detached(&bundle, &v, |d| cgroups_of(&d.pid.to_string())).await;
    assert_under_ours(&seen, Path::new(&rel));
    // The parent is kept (the caller's); remove it.
    for (ctrl, ours) in own_cgroups() {
        let mount = if ctrl.is_empty() {
            "unified".to_string()
        } else {
            ctrl.clone()
        };
        let dir = Path::new("/sys/fs/cgroup")
            .join(mount)
            .join(ours.strip_prefix("/").unwrap())
            .join(format!("{}-rel", bundle.cgroup));
        let _ = std::fs::remove_dir(&dir);
    }
}

/// Without a cgroupsPath (umoci's config, runtime-tools' bundles) the container still gets
/// a cgroup of its own, `cellblock-oci/ID` under ours, so `pause`, `ps` and `kill --all`
/// work.
#[tokio::test(flavor = "multi_thread")]
async fn no_cgroups_path_gets_one_under_ours() {
    let bundle = Bundle::new("nocg");
    let mut v = podman_json(&bundle);
    v["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    script(&mut v, "true");
    let id = bundle.opts().id;
    let (_, seen) = run_detached(&bundle, &v, |d| cgroups_of(&d.pid.to_string())).await;
    assert_under_ours(
        &seen,
        &Path::new(crate::spec::DEFAULT_CGROUP_PARENT).join(&id),
    );
}

/// Runs the device program the way the kernel would for one access: `typ` b'b'/b'c',
/// `access` bits (mknod 1, read 2, write 4). Only the opcodes the compiler emits.
fn run_device_program(
    prog: &[crate::devices::bpf::Insn],
    typ: u8,
    access: u32,
    major: u32,
    minor: u32,
) -> u64 {
    // SAFETY: Insn is repr(C) of u8, u8, i16, i32: 8 plain bytes.
    let raw: &[[u8; 8]] = unsafe { std::slice::from_raw_parts(prog.as_ptr().cast(), prog.len()) };
    let ctx = [
        (access << 16) | u32::from(if typ == b'b' { 1u8 } else { 2 }),
        major,
        minor,
    ];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let i = raw[pc];
        let (code, dst, src) = (i[0], (i[1] & 0xf) as usize, (i[1] >> 4) as usize);
        let off = i16::from_ne_bytes([i[2], i[3]]);
        let imm = i32::from_ne_bytes([i[4], i[5], i[6], i[7]]);
        pc += 1;
        match code {
            0x61 => r[dst] = u64::from(ctx[off as usize / 4]),
            0x54 => r[dst] = (r[dst] as u32 & imm as u32) as u64,
            0x74 => r[dst] = ((r[dst] as u32) >> imm) as u64,
            0xbc => r[dst] = r[src] as u32 as u64,
            0xb7 => r[dst] = imm as i64 as u64,
            0x55 if r[dst] != imm as i64 as u64 => pc += off as usize,
            0x5d if r[dst] != r[src] => pc += off as usize,
            0x55 | 0x5d => {}
            0x95 => return r[0],
            c => panic!("opcode {c:#x}"),
        }
    }
}

/// The v2 device program decides as the v1 controller would: podman's deny-all plus the
/// defaults allows /dev/null (c 1:3) for rwm, mknod of anything, ptys (c 136:*), and
/// denies /dev/loop-control (c 10:237) and block devices but for mknod; a spec allowing
/// c 10:237 r lets it be read, not written; a default-allow list with a deny exception.
#[test]
fn device_program_decides_like_v1() {
    use crate::devices::bpf::{program, reduce, Rule};
    let podman = spec_of(&serde_json::from_str::<Value>(PODMAN).unwrap());
    let rules = podman
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone();
    let lines = crate::devices::plan(rules.as_deref().unwrap(), &[]).unwrap();
    let prog = program(&lines).unwrap();
    let (r, w, m) = (2, 4, 1);
    assert_eq!(run_device_program(&prog, b'c', r | w, 1, 3), 1, "/dev/null");
    assert_eq!(run_device_program(&prog, b'c', r | w, 136, 7), 1, "a pty");
    assert_eq!(
        run_device_program(&prog, b'b', m, 8, 0),
        1,
        "mknod of a block device"
    );
    assert_eq!(
        run_device_program(&prog, b'b', r, 8, 0),
        0,
        "reading a block device"
    );
    assert_eq!(
        run_device_program(&prog, b'c', r, 10, 237),
        0,
        "/dev/loop-control"
    );
    let mut more = lines.clone();
    more.push(("devices.allow", "c 10:237 r".to_string()));
    let prog = program(&more).unwrap();
    assert_eq!(run_device_program(&prog, b'c', r, 10, 237), 1);
    assert_eq!(run_device_program(&prog, b'c', r | w, 10, 237), 0);
    // Default allow with one deny exception; a later allow of the same device lifts it.
    let lines = vec![("devices.deny", "c 1:3 w".to_string())];
    let prog = program(&lines).unwrap();
    assert_eq!(run_device_program(&prog, b'c', w, 1, 3), 0);
    assert_eq!(run_device_program(&prog, b'c', r, 1, 3), 1);
    assert_eq!(run_device_program(&prog, b'c', w, 1, 5), 1);
    let rule = |allow, s: &str| {
        crate::devices::bpf::parse(
            if allow {
                "devices.allow"
            } else {
                "devices.deny"
            },
            s,
        )
        .unwrap()
    };
    let (default, exceptions) = reduce(&[rule(false, "c 1:3 w"), rule(true, "c 1:3 w")]);
    assert!(default && exceptions.is_empty());
    assert_eq!(
        rule(true, "c 136:* rwm"),
        Rule {
            allow: true,
            typ: b'c',
            major: Some(136),
            minor: None,
            access: 7
        }
    );
}

/// The attack on cgroup v2: a shell in a v2 cgroup with podman's device program attached
/// cannot open /dev/loop-control, and can still write /dev/null. The control: the same
/// shell in a v2 cgroup without the program opens it. (This host's v2 hierarchy is at
/// /sys/fs/cgroup/unified; the program applies there beside the v1 controller.)
#[test]
fn device_program_on_cgroup_v2() {
    let v2 = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("cgroup.controllers").exists())
        .expect("a cgroup v2 hierarchy");
    let podman = spec_of(&serde_json::from_str::<Value>(PODMAN).unwrap());
    let rules = podman
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone();
    for attach in [true, false] {
        let dir = v2.join(format!(
            "cellblock-spec-{}-bpf-{attach}",
            std::process::id()
        ));
        std::fs::create_dir(&dir).unwrap();
        if attach {
            crate::devices::apply(rules.as_deref().unwrap(), &[], std::slice::from_ref(&dir))
                .unwrap();
        }
        let script = format!(
            "echo $$ > {}/cgroup.procs && \
             if ( : < /dev/loop-control ) 2>/dev/null; then echo loop=open; else echo loop=denied; fi; \
             if ( echo x > /dev/null ) 2>/dev/null; then echo null=ok; else echo null=denied; fi",
            dir.display()
        );
        let mut child = std::process::Command::new("/bin/busybox")
            .args(["sh", "-c", &script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the shell did not finish in 30 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut out = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
        std::fs::remove_dir(&dir).unwrap();
        let want = if attach {
            "loop=denied\nnull=ok\n"
        } else {
            "loop=open\nnull=ok\n"
        };
        assert_eq!(out, want, "attached {attach}");
    }
}

/// `process.terminal` with a console socket: the workload's stdio is a pty whose master
/// `create` hands over (what the lifecycle sends over the socket); the workload reports
/// its tty, that stdin is a terminal and the window size of `consoleSize`, and the master
/// reads it.
#[tokio::test(flavor = "multi_thread")]
async fn terminal_gives_a_pty() {
    let bundle = Bundle::new("tty");
    let mut v = ctr_json(&bundle);
    v["process"]["terminal"] = json!(true);
    v["process"]["consoleSize"] = json!({"height": 31, "width": 97});
    script(&mut v, "tty; [ -t 0 ] && echo stdin=tty; stty size");
    let mut opts = bundle.opts();
    opts.console = true;
    let mut b = builder_for(&spec_of(&v), &opts).unwrap();
    b.die_with_supervisor(true);
    let mut created = within(b.create()).await.unwrap();
    let master = created.take_pty_fd().expect("a pty master");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        // Ends with EIO once the slave's last holder is gone; what came before is kept.
        let _ = std::io::Read::read_to_end(&mut std::fs::File::from(master), &mut out);
        let _ = tx.send(out);
    });
    let mut c = within(created.start()).await.unwrap();
    let status = within(c.wait()).await.unwrap();
    let out = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the pty did not close in 30 s");
    let out = text(&out);
    assert!(status.success(), "{out}");
    assert_eq!(out.replace('\r', ""), "/dev/pts/0\nstdin=tty\n31 97\n");
}

/// `linux.timeOffsets` in a new time namespace: the workload's CLOCK_BOOTTIME (its
/// /proc/uptime) is shifted by the offset; the host's is not.
#[tokio::test(flavor = "multi_thread")]
async fn time_offsets_shift_the_clocks() {
    let bundle = Bundle::new("time");
    let mut v = ctr_json(&bundle);
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    v["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000}});
    script(&mut v, "cat /proc/uptime");
    let out = output(builder_for(&spec_of(&v), &bundle.opts()).unwrap()).await;
    let inside: f64 = text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("{}", text(&out.stderr)))
        .parse()
        .unwrap();
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        inside - host > 863_000.0 && inside - host < 865_000.0,
        "{inside} vs {host}"
    );
}

// Ported from opencontainers/runtime-tools validation/linux_ns_itype/linux_ns_itype.go
// (at 260e151): every namespace type is removed from the config (and the hostname), and
// each namespace of the container must be the runtime's own (same inode). A deliberate
// difference: cellblock refuses a root filesystem without a mount namespace (runc and crun
// would mount and pivot in the runtime's own mount namespace, the host's), so the port
// asserts that refusal, typed, and then runs the same check with only the mount namespace
// kept (and without the mqueue mount, see below): every other namespace is inherited, the
// mount namespace is the container's own.
#[tokio::test(flavor = "multi_thread")]
async fn namespaces_left_out_are_inherited_but_a_root_needs_its_own_mount_namespace() {
    const PROC_NAMESPACES: [&str; 7] = ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"];
    let host: BTreeMap<&str, PathBuf> = PROC_NAMESPACES
        .iter()
        .map(|n| {
            (
                *n,
                std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap(),
            )
        })
        .collect();
    let bundle = Bundle::new("ns-itype");
    let mut v = podman_json(&bundle);
    script(&mut v, "true");
    v["linux"]["namespaces"] = json!([]);
    v.as_object_mut().unwrap().remove("hostname");
    // podman's sysctls name the network and IPC namespaces; the upstream config has none.
    v["linux"].as_object_mut().unwrap().remove("sysctl");
    let mut b = builder_for(&spec_of(&v), &bundle.opts()).unwrap();
    let refused = within(b.create()).await.map(drop);
    assert!(
        matches!(
            &refused,
            Err(cellblock::Error::NeedsNamespace { option: "rootfs/chroot", needs })
                if *needs == Namespaces::MOUNT
        ),
        "{refused:?}"
    );

    let kept = Bundle::new("ns-itype-mnt");
    let mut w = podman_json(&kept);
    script(&mut w, "true");
    w["linux"]["namespaces"] = json!([{"type": "mount"}]);
    w.as_object_mut().unwrap().remove("hostname");
    w["linux"].as_object_mut().unwrap().remove("sysctl");
    // A second deliberate difference: the mqueue mount needs an IPC namespace of the
    // container's (the host's queues are not mounted into a container; runc and crun
    // would), so it goes too.
    let mounts = w["mounts"].as_array_mut().unwrap();
    let before = mounts.len();
    mounts.retain(|m| m["type"] != "mqueue");
    assert_eq!(mounts.len(), before - 1);
    let ((), seen) = {
        let (out, seen) = run_detached(&kept, &w, |d| {
            PROC_NAMESPACES
                .iter()
                .map(|n| {
                    (
                        *n,
                        std::fs::read_link(format!("/proc/{}/ns/{n}", d.pid)).unwrap(),
                    )
                })
                .collect::<BTreeMap<&str, PathBuf>>()
        })
        .await;
        assert_eq!(out, "");
        ((), seen)
    };
    for n in PROC_NAMESPACES {
        if n == "mnt" {
            assert_ne!(
                seen[n], host[n],
                "the mount namespace is the container's own"
            );
        } else {
            assert_eq!(seen[n], host[n], "inherit namespace {n} without type");
        }
    }
}
