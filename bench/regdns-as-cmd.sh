#!/usr/bin/env bash
# regdns-as-cmd.sh PORT ZONE DIR: regdns started the way bench/harness/compare.sh starts a third
# server, on the bench zone, with `cross-region` as a real failover endpoint (same CNAME and TTL as
# the zone file, so the answers are byte-for-byte comparable with Knot's), one worker thread:
#   bench/harness/compare.sh --only knot,gdnsd,cmd -- bench/regdns-as-cmd.sh {port} {zone} {dir}
# The instances point at a closed loopback port with a 1 h interval: probes cost nothing here.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
port=$1 zone=$2 dir=$3
bin=${REGDNS_BIN:-$here/target/release/regdns}
cp "$zone" "$dir/registry.io.zone"
cat >"$dir/regdns.toml" <<C
[server]
listen = ["127.0.0.1:$port"]
admin = "127.0.0.1:0"
admin_token_file = "$dir/admin.token"
state_dir = "$dir/state"
udp_workers = 1

[[zone]]
origin = "registry.io."
file = "$dir/registry.io.zone"

[[instance]]
id = "hangzhou"
url = "http://127.0.0.1:9/v2/"
interval = "1h"
timeout = "1s"

[[endpoint]]
name = "cross-region.registry.io."
ttl = 5
[endpoint.targets]
default = [{ instance = "hangzhou", cname = "a-registry.cn-hangzhou.example." }]
C
export TOKIO_WORKER_THREADS=1 RUST_LOG=${RUST_LOG:-warn}
exec "$bin" serve -c "$dir/regdns.toml"
