#!/usr/bin/env bash
# scale.sh [--regdns BIN] [--endpoints N] [--instances N]: issue 15 part 1. Generates 1,000
# endpoints x 3 views (default CNAME, two VPC views with A records) and 300 instances
# (interval 1s, timeout 500ms, rise 1, fall 2) on two simulated registries (half the
# instances on each; every endpoint's primary on registry A), starts `regdns serve` on it
# and prints: first answer after start, startup CPU (process, and the controller's own
# rounds from /metrics), RSS, steady probe CPU per instance, then a region outage (registry
# A refuses connections): time until every endpoint answers its second target in every view,
# per-view spread, controller CPU, journal bytes. The driver is examples/scale.rs; everything
# runs on loopback and is stopped by PID.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
cargo build --release --bin regdns --example scale >/dev/null 2>&1 || cargo build --release --bin regdns --example scale
bin=target/release/regdns
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --regdns) bin=$2; shift 2 ;;
    --endpoints|--instances) args+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
exec target/release/examples/scale --regdns "$bin" "${args[@]}"
