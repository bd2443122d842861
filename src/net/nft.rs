//! nftables through the `nftables` crate (JSON, applied by the `nft` binary): one table of
//! our own per bridge, `ip cellblock-<bridge>`.
//!
//! ```text
//! table ip cellblock-<br> {
//!   chain postrouting { type nat hook postrouting priority srcnat
//!     ip saddr <subnet> oifname != <br> masquerade     # egress: NAT to the host's routes
//!     oifname <br> ip saddr 127.0.0.0/8 masquerade     # published ports from loopback
//!     oifname <br> ip saddr <subnet> ct status dnat masquerade }  # hairpin (isolation off)
//!   chain prerouting { type nat hook prerouting priority dstnat
//!     fib daddr type local jump publish }               # from outside (and other hosts)
//!   chain output { type nat hook output priority dstnat
//!     fib daddr type local jump publish }               # from the host itself, loopback too
//!   chain publish { <proto> dport <host port> dnat to <addr>:<port> comment "cellblock <addr>" ... }
//!   chain forward { type filter hook forward priority filter
//!     iifname <br> oifname <br> drop }                  # isolation (EgressConfig::isolate)
//! }
//! ```
//!
//! Published ports are reached from the host's loopback the way docker does it without its
//! userland proxy: DNAT in the `output` hook, `route_localnet=1` on the bridge (so a packet
//! from 127.0.0.1 may be routed out of it) and a masquerade of those packets.
//! Each container's rules carry its address as a comment; they are deleted by handle when
//! it ends, and by the next start when its supervisor was killed.

use std::net::Ipv4Addr;

use nftables::schema::{NfListObject, NfObject, Nftables};
use serde_json::{json, Value};

use super::{EgressConfig, Publish};
use crate::error::{Error, Result};

/// The table's name for a bridge.
pub(crate) fn table(bridge: &str) -> String {
    format!("cellblock-{bridge}")
}

/// The comment that marks a container's rules.
pub(crate) fn comment(addr: Ipv4Addr) -> String {
    format!("cellblock {addr}")
}

fn nft_error(context: &'static str) -> impl FnOnce(nftables::helper::NftablesError) -> Error {
    move |e| match e {
        nftables::helper::NftablesError::NftExecution { inner, .. }
            if inner.kind() == std::io::ErrorKind::NotFound =>
        {
            Error::MissingTool {
                tool: "nft",
                package: "nftables",
                purpose: "NAT and published ports of Network::Egress",
            }
        }
        other => Error::Io {
            context,
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// Applies a batch written as libnftables JSON (checked against the crate's schema).
fn apply(batch: Value, context: &'static str) -> Result<()> {
    let text = batch.to_string();
    let parsed: Nftables = serde_json::from_str(&text).map_err(|e| Error::Io {
        context,
        source: std::io::Error::other(format!("nftables schema: {e}")),
    })?;
    nftables::helper::apply_ruleset(&parsed).map_err(nft_error(context))
}

/// Our table's current contents, `None` when it does not exist.
fn list(bridge: &str) -> Result<Option<Nftables<'static>>> {
    let t = table(bridge);
    match nftables::helper::get_current_ruleset_with_args(
        nftables::helper::DEFAULT_NFT,
        ["list", "table", "ip", t.as_str()],
    ) {
        Ok(r) => Ok(Some(r)),
        Err(nftables::helper::NftablesError::NftFailed { stderr, .. })
            if stderr.contains("No such file") =>
        {
            Ok(None)
        }
        Err(e) => Err(nft_error("listing the nftables table")(e)),
    }
}

fn m(op: &str, left: Value, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

/// `ip saddr == addr/len`.
fn saddr_in(addr: impl Into<String>, len: u8) -> Value {
    m(
        "==",
        json!({"payload": {"protocol": "ip", "field": "saddr"}}),
        json!({"prefix": {"addr": addr.into(), "len": len}}),
    )
}

/// Creates the table with its base rules if it is not there yet. Called under the bridge's
/// setup lock (`bridge.rs`), so two supervisors never both create it.
pub(crate) fn ensure_table(cfg: &EgressConfig) -> Result<()> {
    if list(&cfg.bridge)?.is_some() {
        return Ok(());
    }
    let t = table(&cfg.bridge);
    let br = cfg.bridge.as_str();
    let chain = |name: &str, kind: Option<(&str, &str, i32)>| match kind {
        Some((ty, hook, prio)) => {
            json!({"add": {"chain": {"family": "ip", "table": t, "name": name,
            "type": ty, "hook": hook, "prio": prio, "policy": "accept"}}})
        }
        None => json!({"add": {"chain": {"family": "ip", "table": t, "name": name}}}),
    };
    let rule = |chain: &str, expr: Vec<Value>| json!({"add": {"rule": {"family": "ip", "table": t, "chain": chain, "expr": expr}}});
    let local = m(
        "==",
        json!({"fib": {"result": "type", "flags": ["daddr"]}}),
        json!("local"),
    );
    let mut batch = vec![
        json!({"add": {"table": {"family": "ip", "name": t}}}),
        chain("postrouting", Some(("nat", "postrouting", 100))),
        chain("prerouting", Some(("nat", "prerouting", -100))),
        chain("output", Some(("nat", "output", -100))),
        chain("publish", None),
        chain("forward", Some(("filter", "forward", 0))),
        rule(
            "postrouting",
            vec![
                saddr_in(cfg.subnet.to_string(), cfg.prefix),
                m("!=", meta("oifname"), json!(br)),
                json!({"masquerade": null}),
            ],
        ),
        rule(
            "postrouting",
            vec![
                m("==", meta("oifname"), json!(br)),
                saddr_in("127.0.0.0", 8),
                json!({"masquerade": null}),
            ],
        ),
        // A container reaching another's published port through the host (isolation
        // off): masqueraded, so that the reply comes back through the host too.
        rule(
            "postrouting",
            vec![
                m("==", meta("oifname"), json!(br)),
                saddr_in(cfg.subnet.to_string(), cfg.prefix),
                m("in", json!({"ct": {"key": "status"}}), json!("dnat")),
                json!({"masquerade": null}),
            ],
        ),
        rule(
            "prerouting",
            vec![local.clone(), json!({"jump": {"target": "publish"}})],
        ),
        rule(
            "output",
            vec![local, json!({"jump": {"target": "publish"}})],
        ),
    ];
    if cfg.isolate {
        batch.push(rule(
            "forward",
            vec![
                m("==", meta("iifname"), json!(br)),
                m("==", meta("oifname"), json!(br)),
                json!({"drop": null}),
            ],
        ));
    }
    apply(json!({"nftables": batch}), "creating the nftables table")
}

/// Adds the DNAT rules of one container.
pub(crate) fn publish(bridge: &str, addr: Ipv4Addr, ports: &[Publish]) -> Result<()> {
    if ports.is_empty() {
        return Ok(());
    }
    let t = table(bridge);
    let batch: Vec<Value> = ports
        .iter()
        .map(|p| {
            json!({"add": {"rule": {"family": "ip", "table": t, "chain": "publish",
                "comment": comment(addr),
                "expr": [
                    m("==", json!({"payload": {"protocol": p.proto.name(), "field": "dport"}}), json!(p.host_port)),
                    {"dnat": {"addr": addr.to_string(), "port": p.container_port}},
                ]}}})
        })
        .collect();
    apply(json!({"nftables": batch}), "publishing ports (nftables)")
}

/// Deletes every rule whose comment marks one of `addrs`.
pub(crate) fn unpublish(bridge: &str, addrs: &[Ipv4Addr]) -> Result<()> {
    let Some(current) = list(bridge)? else {
        return Ok(());
    };
    let marks: Vec<String> = addrs.iter().map(|a| comment(*a)).collect();
    let t = table(bridge);
    let batch: Vec<Value> = current
        .objects
        .iter()
        .filter_map(|o| match o {
            NfObject::ListObject(NfListObject::Rule(r))
                if r.comment
                    .as_deref()
                    .is_some_and(|c| marks.iter().any(|m| m == c)) =>
            {
                Some(json!({"delete": {"rule": {"family": "ip", "table": t,
                    "chain": r.chain, "handle": r.handle, "expr": []}}}))
            }
            _ => None,
        })
        .collect();
    if batch.is_empty() {
        return Ok(());
    }
    apply(
        json!({"nftables": batch}),
        "removing published ports (nftables)",
    )
}

/// The comments of the table's per-container rules (for tests and leak checks).
pub(crate) fn marked_rules(bridge: &str) -> Result<Vec<String>> {
    Ok(list(bridge)?
        .map(|r| {
            r.objects
                .iter()
                .filter_map(|o| match o {
                    NfObject::ListObject(NfListObject::Rule(r)) => {
                        r.comment.as_ref().map(|c| c.to_string())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Deletes the table (the last supervisor of the bridge is gone).
pub(crate) fn delete_table(bridge: &str) -> Result<()> {
    if list(bridge)?.is_none() {
        return Ok(());
    }
    apply(
        json!({"nftables": [{"delete": {"table": {"family": "ip", "name": table(bridge)}}}]}),
        "deleting the nftables table",
    )
}

/// Whether the table exists.
pub(crate) fn table_exists(bridge: &str) -> Result<bool> {
    Ok(list(bridge)?.is_some())
}
