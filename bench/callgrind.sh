#!/usr/bin/env bash
# callgrind.sh SERVER [COMMAND...]: user-space instructions per query, counted by callgrind
# (repeatable whatever else the machine does): N queries (default 20000) of the bench mix at
# 2000 q/s after a warm-up whose cost is discarded. SERVER is gdnsd or cmd, e.g.
#   bench/callgrind.sh gdnsd
#   bench/callgrind.sh cmd bench/regdns-as-cmd.sh {port} {zone} {dir}   # REGDNS_BIN: the binary
# KEEP=1 keeps the profile (callgrind_annotate it). Needs valgrind, dnsperf.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
source "${BENCH_LIB:-$here/harness/lib.sh}"
NAME=$1; shift
PORT=${BENCH_PORT:-25413}
N=${N:-20000}
OUT=$WORK/callgrind.out
need valgrind; need dnsperf; need callgrind_control valgrind
CG=(valgrind --tool=callgrind "--callgrind-out-file=$OUT" --dump-instr=no)
case $NAME in
  gdnsd)
    d="$WORK/gdnsd"; mkdir -p "$d/zones" "$d/run" "$d/state"; cp "$ZONE" "$d/zones/registry.io"
    render "$BENCH_DIR/gdnsd.conf" "$d" "$PORT" >"$d/config"
    "${CG[@]}" gdnsd -c "$d" start >"$WORK/log" 2>&1 & SERVER_PID=$! ;;
  cmd)
    d="$WORK/cmd"; mkdir -p "$d"; args=()
    for a in "$@"; do a=${a//\{port\}/$PORT}; a=${a//\{zone\}/$ZONE}; a=${a//\{dir\}/$d}; args+=("$a"); done
    bin=${REGDNS_BIN:-$here/../target/release/regdns}
    printf '#!/bin/sh\nexec %s %s "$@"\n' "${CG[*]}" "$bin" >"$WORK/wrap"; chmod +x "$WORK/wrap"
    REGDNS_BIN=$WORK/wrap "${args[@]}" >"$WORK/log" 2>&1 & SERVER_PID=$! ;;
  *) die "gdnsd or cmd" ;;
esac
PIDS+=("$SERVER_PID")
for _ in $(seq 300); do [ "$(ask "$PORT" registry.io SOA)" = NOERROR ] && break; sleep 0.2; done
dnsperf -s 127.0.0.1 -p "$PORT" -d "$BENCH_DIR/queries.txt" -n 10 -c 1 -Q 1000 >/dev/null 2>&1
vg=$(pgrep -f -- "--callgrind-out-file=$OUT" | head -1)
callgrind_control -z "$vg" >/dev/null
dnsperf -s 127.0.0.1 -p "$PORT" -d "$BENCH_DIR/queries.txt" -n $((N / 100)) -c 2 -Q 2000 >"$WORK/dp.out" 2>&1
q=$(awk '/Queries completed/ {print $3}' "$WORK/dp.out")
callgrind_control -d "$vg" >/dev/null 2>&1; sleep 1
total=$(callgrind_annotate "$OUT".* 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
echo "$NAME: $q queries, $total user-space instructions, $((total / q)) per query"
[ -z "${KEEP:-}" ] || { cp "$OUT".* /tmp/ && echo "profile kept in /tmp/$(basename "$OUT").*"; }
kill_tree "$SERVER_PID"
