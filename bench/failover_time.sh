#!/usr/bin/env bash
# failover_time.sh [--rounds N] [--interval 1s] [--timeout 500ms] [--fall 2]: time from a
# registry failing (its process killed: connection refused) to the new answer on the wire,
# for regdns and, when installed, PowerDNS with a health-checked LUA record (ifurlup) on
# the same two registries. Reports each round and the median, against regdns's bound from
# docs/design.md#11-performance-targets: interval + (fall - 1) × fast_interval + timeout + 200 ms.
#
# Registries are `python3 -m http.server` instances answering GET /v2/ with 200 on
# 127.0.0.10 and 127.0.0.11 (loopback only). Everything started here is stopped by PID.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=5 INTERVAL=1s TIMEOUT=500ms FALL=2
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --interval) INTERVAL=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --fall) FALL=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
bin=${REGDNS_BIN:-$here/target/release/regdns}
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 1; }
command -v dig >/dev/null || { echo "dig is missing (apt-get install bind9-dnsutils)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/failover-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

ms() { # ms DURATION (1s, 500ms, 1250ms) -> milliseconds
  case $1 in *ms) echo "${1%ms}" ;; *s) echo $(( ${1%s} * 1000 )) ;; *) echo "$1" ;; esac
}
I=$(ms "$INTERVAL") T=$(ms "$TIMEOUT")
FAST=$(( I / 4 )); [ "$FAST" -lt 200 ] && FAST=200
BOUND=$(( I + (FALL - 1) * FAST + T + 200 ))
REG_PORT=$(( 20000 + RANDOM % 10000 ))
mkdir -p "$WORK/www/v2" && echo '{}' >"$WORK/www/v2/index.html"

start_registry() { # start_registry IP -> pid
  python3 -m http.server --bind "$1" --directory "$WORK/www" "$REG_PORT" >/dev/null 2>&1 &
  echo $!
}
wait_http() { for _ in $(seq 100); do curl -sf "http://$1:$REG_PORT/v2/" >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }
answer() { dig +time=1 +tries=1 +short @127.0.0.1 -p "$1" "$2" A 2>/dev/null | tail -1; }
now_ms() { date +%s%3N; }

regdns_rounds=() pdns_rounds=()
for round in $(seq "$ROUNDS"); do
  A_PID=$(start_registry 127.0.0.10); PIDS+=("$A_PID")
  B_PID=$(start_registry 127.0.0.11); PIDS+=("$B_PID")
  wait_http 127.0.0.10 && wait_http 127.0.0.11 || { echo "registries did not start" >&2; exit 1; }

  port=$(( 30000 + RANDOM % 20000 )); d="$WORK/regdns-$round"; mkdir -p "$d"
  cat >"$d/regdns.toml" <<C
[server]
listen = ["127.0.0.1:$port"]
admin = "127.0.0.1:0"
admin_token_file = "$d/admin.token"
state_dir = "$d/state"
[[zone]]
origin = "registry.io."
file = "$here/zones/demo/registry.io.zone"
[[instance]]
id = "a"
url = "http://127.0.0.10:$REG_PORT/v2/"
interval = "$INTERVAL"
timeout = "$TIMEOUT"
rise = 1
fall = $FALL
[[instance]]
id = "b"
url = "http://127.0.0.11:$REG_PORT/v2/"
interval = "$INTERVAL"
timeout = "$TIMEOUT"
rise = 1
fall = $FALL
[[endpoint]]
name = "cross-region.registry.io."
ttl = 5
[endpoint.targets]
default = [{ instance = "a", a = ["127.0.0.10"] }, { instance = "b", a = ["127.0.0.11"] }]
C
  RUST_LOG=warn "$bin" serve -c "$d/regdns.toml" 2>"$d/log" & R_PID=$!; PIDS+=("$R_PID")
  for _ in $(seq 100); do [ "$(answer "$port" cross-region.registry.io)" = 127.0.0.10 ] && break; sleep 0.05; done
  sleep 2 # probes concluded: a is up

  pport=""
  if command -v pdns_server >/dev/null; then
    pport=$(( port + 1 )); pd="$WORK/pdns-$round"; mkdir -p "$pd"
    cp "$here/zones/demo/registry.io.zone" "$pd/registry.io.zone"
    echo "cross-region 5 IN LUA A \"ifurlup('http://registry.test:$REG_PORT/v2/', {{'127.0.0.10'}, {'127.0.0.11'}})\"" >>"$pd/registry.io.zone"
    echo "zone \"registry.io\" { type master; file \"$pd/registry.io.zone\"; };" >"$pd/named.conf"
    pdns_server --config-dir="$pd" --daemon=no --guardian=no --disable-syslog --write-pid=no \
      --socket-dir="$pd" --local-address="127.0.0.1:$pport" --launch=bind --bind-config="$pd/named.conf" \
      --enable-lua-records=yes --lua-health-checks-interval=1 --cache-ttl=0 --query-cache-ttl=0 \
      --negquery-cache-ttl=0 >"$pd/log" 2>&1 & P_PID=$!; PIDS+=("$P_PID")
    for _ in $(seq 100); do [ "$(answer "$pport" cross-region.registry.io)" = 127.0.0.10 ] && break; sleep 0.05; done
    sleep 2
  fi

  # Kill registry a once; watch both servers move to b.
  t0=$(now_ms); kill "$A_PID"
  r_ms="" p_ms=""
  while :; do
    t=$(( $(now_ms) - t0 ))
    [ -z "$r_ms" ] && [ "$(answer "$port" cross-region.registry.io)" = 127.0.0.11 ] && r_ms=$t
    [ -n "$pport" ] && [ -z "$p_ms" ] && [ "$(answer "$pport" cross-region.registry.io)" = 127.0.0.11 ] && p_ms=$t
    { [ -n "$r_ms" ] && { [ -z "$pport" ] || [ -n "$p_ms" ]; }; } && break
    [ "$t" -gt 30000 ] && break
  done
  regdns_rounds+=("${r_ms:-timeout}"); [ -n "$pport" ] && pdns_rounds+=("${p_ms:-timeout}")
  printf 'round %d: regdns %s ms%s\n' "$round" "${r_ms:-timeout}" "${pport:+, PowerDNS LUA ifurlup ${p_ms:-timeout} ms}"
  for p in "$R_PID" "$B_PID" ${P_PID:-}; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true; P_PID=
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
echo
echo "settings: interval $INTERVAL, timeout $TIMEOUT, fall $FALL, fast_interval ${FAST}ms; failure = connection refused"
echo "regdns median ${#regdns_rounds[@]} rounds: $(median "${regdns_rounds[@]}") ms (bound $BOUND ms = interval + (fall-1) x fast_interval + timeout + 200 ms)"
[ ${#pdns_rounds[@]} -gt 0 ] && echo "PowerDNS LUA ifurlup (1 s check interval) median: $(median "${pdns_rounds[@]}") ms"
echo "(the time includes dig's polling, ~5-10 ms per query)"
