#!/usr/bin/env bash
# Throughput through an egress container's veth against the host's loopback, measured
# interleaved (loopback, veth, loopback) with iperf3 (Debian package `iperf3`), as root.
#
# The container (job_runner --network egress: the default bridge cellblock0, 10.201.0.0/16)
# runs `iperf3 -s`; the host's client connects to its address over the bridge and veth.
# The baseline is iperf3 on the host's 127.0.0.1. Only addresses of this host and of the
# container this script starts are used.
#
#   cargo build --release --examples && bash benches/net_throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v iperf3 >/dev/null || { echo "iperf3 is not installed (apt-get install iperf3)" >&2; exit 1; }
runner=target/release/examples/job_runner
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo 'iperf3 -s -1 -p 5201' > "$tmp/jobs"
"$runner" --network egress --jobs 1 "$tmp/jobs" > "$tmp/runner.log" 2>&1 &
runner_pid=$!
# The container's address: the only lease of this runner (a fresh bridge hands out .2).
addr=""
for _ in $(seq 100); do
  addr=$(ls /run/cellblock/net/cellblock0/lease 2>/dev/null | head -1)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "the container did not come up" >&2; cat "$tmp/runner.log" >&2; exit 1; }
sleep 1
gbits() { python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'; }
loopback() {
  iperf3 -s -1 -p 5202 -B 127.0.0.1 >/dev/null 2>&1 & local s=$!
  sleep 0.3
  iperf3 -c 127.0.0.1 -p 5202 -t 3 -J | gbits
  wait "$s" || true
}
l1=$(loopback)
v=$(iperf3 -c "$addr" -p 5201 -t 3 -J | gbits)
l2=$(loopback)
wait "$runner_pid" || true
echo "loopback ${l1} Gbit/s, veth (host -> container $addr) ${v} Gbit/s, loopback ${l2} Gbit/s"
python3 -c "print('veth/loopback %.2fx' % ($v / (($l1 + $l2) / 2)))"
