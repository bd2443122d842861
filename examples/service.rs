//! A long-running service: a few workers under one supervisor, each with a restart policy.
//! Ctrl-C (SIGINT) or SIGTERM stops everything gracefully: SIGTERM to every worker, a grace
//! period, SIGKILL, everything reaped — then a summary.
//!
//! Run as root: `cargo run --release --example service` (then press Ctrl-C).
//! `--publish HOST:CONTAINER` adds a `web` worker (`python3 -m http.server CONTAINER`) on an
//! egress network with its port published on the host's HOST (try
//! `curl http://127.0.0.1:HOST/` from the host).
//! `RUST_LOG=debug` shows the tracing spans (one per worker and per container).

use std::time::Duration;

use cellblock::{
    Backoff, Container, ContainerBuilder, EgressConfig, Event, Namespaces, Network, Proto,
    RestartBudget, RestartPolicy, Supervisor, Worker,
};
use futures::StreamExt;

/// A worker running `script` with `/bin/sh` in its own UTS, IPC, PID and mount namespaces.
fn worker(name: &str, script: &str) -> ContainerBuilder {
    let mut b = Container::builder("/bin/sh");
    b.args(["-c", script])
        .namespaces(Namespaces::UTS | Namespaces::IPC | Namespaces::PID | Namespaces::MOUNT)
        .hostname(name);
    b
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let grace = std::env::args()
        .skip_while(|a| a != "--grace")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);

    let mut sup = Supervisor::new();
    sup.grace_period(Duration::from_secs_f64(grace));
    let mut events = sup.events();

    // A steady worker: restarted whatever happens, at most 10 times a minute.
    sup.add(
        Worker::new(
            "ticker",
            worker(
                "ticker",
                "while :; do echo \"$(hostname): tick\"; sleep 1; done",
            ),
        )
        .policy(RestartPolicy::Always {
            backoff: Backoff::default(),
        })
        .budget(RestartBudget::new(10, Duration::from_secs(60))),
    )
    .expect("add ticker");
    // A flaky worker: crashes every 2 s, restarted with growing delays, up to 5 times.
    sup.add(
        Worker::new(
            "flaky",
            worker("flaky", "sleep 2; echo \"$(hostname): crashing\"; exit 1"),
        )
        .policy(RestartPolicy::OnFailure {
            max_restarts: 5,
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(8)),
        }),
    )
    .expect("add flaky");
    // A worker with children of its own: stopping it must end its whole tree.
    sup.add(
        Worker::new("tree", worker("tree", "sleep 1000 & sleep 1000 & wait")).policy(
            RestartPolicy::Always {
                backoff: Backoff::default(),
            },
        ),
    )
    .expect("add tree");
    // --publish HOST:CONTAINER: a web server reachable on the host's port HOST.
    let publish = std::env::args()
        .skip_while(|a| a != "--publish")
        .nth(1)
        .and_then(|s| {
            let (h, c) = s.split_once(':')?;
            Some((h.parse::<u16>().ok()?, c.parse::<u16>().ok()?))
        });
    if let Some((host_port, port)) = publish {
        let mut web = worker("web", &format!("exec python3 -m http.server {port}"));
        web.network(Network::Egress(EgressConfig::default()))
            .publish(host_port, port, Proto::Tcp);
        sup.add(Worker::new("web", web).policy(RestartPolicy::Always {
            backoff: Backoff::default(),
        }))
        .expect("add web");
    }

    // Print the events as they come.
    tokio::spawn(async move {
        while let Some(ev) = events.next().await {
            match ev {
                Event::Started { name, attempt, pid } => {
                    println!("event started name={name} attempt={attempt} pid={pid}")
                }
                Event::Exited {
                    name,
                    status,
                    duration,
                    ..
                } => println!("event exited name={name} status=\"{status}\" after={duration:.1?}"),
                Event::Restarting {
                    name,
                    attempt,
                    delay,
                } => println!("event restarting name={name} attempt={attempt} in={delay:.1?}"),
                Event::GaveUp { name, reason } => {
                    println!("event gave-up name={name} reason=\"{reason}\"")
                }
                Event::SetupFailed { name, error, .. } => {
                    println!("event setup-failed name={name} error=\"{error}\"")
                }
                Event::Stopped { name, status } => {
                    println!("event stopped name={name} status={status:?}")
                }
                _ => {}
            }
        }
    });

    eprintln!("service running; Ctrl-C or SIGTERM stops it");
    let summary = sup.run_until_signal().await;
    tokio::time::sleep(Duration::from_millis(50)).await; // let the event printer drain
    println!("summary:\n{summary}");
}
