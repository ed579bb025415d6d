#!/usr/bin/env bash
# bench/agent-footprint.sh: what one `regdns agent` costs, beside a node probing the same.
# Starts `regdns demo` (two simulated registries, loopback), a one-member etcd, an agent
# observing the demo's VPC view with probe = "addresses" (2 instances + 2 addresses) and a
# `regdns serve` node on the same config (it probes the same 4 subjects and serves DNS).
# After SECONDS (default 60) prints, for each, resident memory (VmRSS, VmHWM), CPU time and
# CPU per check (from /proc and each process's /metrics).
# Usage: bench/agent-footprint.sh [SECONDS]   (needs etcd: Debian etcd-server; a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
bin=target/release/regdns
[ -x "$bin" ] || cargo build --release
etcd_bin=$(command -v etcd || echo /usr/bin/etcd)
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dns=$(port); admin=$(port); ec=$(port); ep=$(port); mp=$(port); ndns=$(port); nadmin=$(port)
"$bin" demo --no-tour --dir "$dir/demo" --listen "127.0.0.1:$dns" --admin "127.0.0.1:$admin" >"$dir/demo.log" 2>&1 < <(sleep 100000) &
pids+=($!)
"$etcd_bin" --data-dir "$dir/etcd" --listen-client-urls "http://127.0.0.1:$ec" --advertise-client-urls "http://127.0.0.1:$ec" \
  --listen-peer-urls "http://127.0.0.1:$ep" --initial-advertise-peer-urls "http://127.0.0.1:$ep" \
  --initial-cluster "default=http://127.0.0.1:$ep" --log-level warn >"$dir/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -f "$dir/demo/regdns.toml" ] && break; sleep 0.1; done
view=$(grep -m1 -A1 '^\[\[view\]\]' "$dir/demo/regdns.toml" | sed -n 's/^name = "\(.*\)"/\1/p')
mkdir -p "$dir/agent"
cp "$dir/demo/"*.zone "$dir/agent/" 2>/dev/null || true
sed "s/^\(clients = .*\)$/\1\nprobe = \"addresses\"/" "$dir/demo/regdns.toml" >"$dir/agent/regdns.toml"
cat >>"$dir/agent/regdns.toml" <<TOML

[cluster]
etcd = ["http://127.0.0.1:$ec"]
node = "agent-bench"

[agent]
views = ["$view"]
metrics = "127.0.0.1:$mp"
TOML
"$bin" check -c "$dir/agent/regdns.toml" >/dev/null
RUST_LOG=warn "$bin" agent -c "$dir/agent/regdns.toml" >"$dir/agent.log" 2>&1 &
agent=$!
pids+=($agent)
sed "s/^node = \"agent-bench\"/node = \"node-bench\"/" "$dir/agent/regdns.toml" >"$dir/agent/node.toml"
RUST_LOG=warn REGDNS_SERVER__ADMIN="\"127.0.0.1:$nadmin\"" REGDNS_SERVER__STATE_DIR="\"$dir/node-state\"" \
  "$bin" serve -c "$dir/agent/node.toml" --listen "127.0.0.1:$ndns" >"$dir/node.log" 2>&1 &
node=$!
pids+=($node)
sleep "$secs"
ticks=$(getconf CLK_TCK)
report() { # NAME PID METRICS_URL
  local ut st cpu rss hwm checks
  read -r ut st < <(awk '{print $14, $15}' "/proc/$2/stat")
  cpu=$(python3 -c "print(($ut+$st)/$ticks)")
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$2/status")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$2/status")
  checks=$(curl -s "$3" | awk '/^regdns_probe_duration_seconds_count/ {s+=$2} END {print s+0}')
  python3 -c "print(f'$1: {$checks} checks in ${secs}s, VmRSS {$rss/1024:.1f} MiB (VmHWM {$hwm/1024:.1f} MiB), CPU {float($cpu):.2f} s = {1e6*float($cpu)/max(1,$checks):.0f} µs per check')"
}
echo "view $view, probe = addresses; $(nproc) CPUs"
report agent "$agent" "http://127.0.0.1:$mp/metrics"
report "node " "$node" "http://127.0.0.1:$nadmin/metrics"
