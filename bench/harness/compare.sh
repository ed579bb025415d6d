#!/usr/bin/env bash
# compare.sh: Knot DNS, NSD, gdnsd (when installed) and optionally another server (regdns) on the
# same zone and query mix,
# back to back in one run, each pinned to one core (SERVER_CPU, default 1) with dnsperf pinned
# to the other (LOAD_CPU, default 0). Prints a table and ratios against Knot.
#
#   ./compare.sh [--duration S] [--clients N] [--outstanding N] [--rate QPS] [--lat-duration S]
#                [--repeat N] [--tcp] [--only knot,nsd,gdnsd,cmd] [--save DIR] [-- COMMAND...]
#
# COMMAND starts the extra server in the foreground; {port}, {zone} and {dir} (an empty state
# dir, removed on exit) are substituted, e.g.
#   ./compare.sh -- ../regdns-as-cmd.sh {port} {zone} {dir}
#
# Per server: 1 s warm-up; a throughput run at full speed (--duration, --clients, --outstanding)
# giving QPS, lost queries, server CPU and queries per CPU-second; a latency run at a fixed offered
# load (--rate for --lat-duration seconds) giving queries per CPU-second at that load (what a
# server that is not saturated costs) and avg/p50/p99/p99.9 from dnsperf -v per-query
# times; peak RSS (VmHWM over the process tree); the response-code mix, checked against Knot's.
# --repeat N: N rounds (server order reversed every other round), one row per round, then the
# median of each column per server; the ratios and targets use the medians.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

usage() { awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit "${1:-0}"; }
REPEAT=1 DURATION=10 CLIENTS=8 OUTSTANDING=100 RATE=50000 LAT_DURATION=5 MODE=udp ONLY="" SAVE="" CMD=()
while [ $# -gt 0 ]; do
  case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --outstanding) OUTSTANDING=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --lat-duration) LAT_DURATION=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --tcp) MODE=tcp; shift ;;
    --only) ONLY=$2; shift 2 ;;
    --save) SAVE=$2; shift 2 ;;
    -h|--help) usage ;;
    --) shift; CMD=("$@"); break ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
done
need dnsperf; need taskset util-linux
command -v kdig >/dev/null || need dig bind9-dnsutils
[ "$(nproc)" -ge 2 ] || die "needs 2 cores: one for the server, one for dnsperf"
[ "$SERVER_CPU" != "$LOAD_CPU" ] || die "SERVER_CPU and LOAD_CPU must differ"
HZ=$(getconf CLK_TCK); PORT=${BENCH_PORT:-25399}; Q="$BENCH_DIR/queries.txt"
servers=(knot nsd); command -v gdnsd >/dev/null && servers+=(gdnsd); [ ${#CMD[@]} -gt 0 ] && servers+=(cmd)
[ -n "$ONLY" ] && IFS=, read -r -a servers <<<"$ONLY"
for s in "${servers[@]}"; do
  case $s in knot|nsd|gdnsd) ;; cmd) [ ${#CMD[@]} -gt 0 ] || die "--only cmd needs -- COMMAND" ;; *) die "unknown server $s" ;; esac
done
SUMMARY=/dev/null; if [ -n "$SAVE" ]; then mkdir -p "$SAVE"; SUMMARY="$SAVE/summary.txt"; fi

perf() {  # perf ARGS...: dnsperf on the load core against the server under test
  taskset -c "$LOAD_CPU" dnsperf -m "$MODE" -s 127.0.0.1 -p "$PORT" -d "$Q" "$@"
}
field() { awk -v k="$1" 'index($0, k) {sub(/.*: */, ""); split($0, a, " "); print a[1]; exit}' "$2"; }

declare -A R
measure() {  # measure NAME
  local name=$1 d="$WORK/$1" c0 c1
  start_server "$name" "$PORT" "${CMD[@]}" || return 1
  perf -l 1 -c "$CLIENTS" >/dev/null 2>&1 || true                      # warm-up
  pin_tree "$SERVER_PID"     # again: threads started lazily under the first load get pinned too
  # throughput: full speed, the server's CPU time read from /proc around the run
  c0=$(cpu_ticks "$SERVER_PID")
  perf -l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" -t 2 >"$d/throughput.out" 2>&1 || true
  c1=$(cpu_ticks "$SERVER_PID")
  R[$name.qps]=$(printf '%.0f' "$(field 'Queries per second' "$d/throughput.out")")
  R[$name.done]=$(field 'Queries completed' "$d/throughput.out")
  R[$name.lost]=$(field 'Queries lost' "$d/throughput.out")
  R[$name.avgfull]=$(awk '/Average Latency/ {printf "%.0f", $4 * 1e6; exit}' "$d/throughput.out")
  R[$name.cpu]=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v d="$DURATION" 'BEGIN {printf "%.0f", 100 * t / hz / d}')
  R[$name.qpc]=$(awk -v n="${R[$name.done]}" -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN {printf "%.0f", (t > 0) ? n / (t / hz) : 0}')
  R[$name.rcodes]=$(sed -n 's/ *Response codes: *//p' "$d/throughput.out" | sed 's/ [0-9]* (/ (/g')
  # latency: fixed offered load below every server's capacity; per-query times from -v, written
  # to a file by dnsperf on the load core and only processed after the run
  c0=$(cpu_ticks "$SERVER_PID")
  perf -l "$LAT_DURATION" -c 4 -Q "$RATE" -t 2 -v >"$d/latency.out" 2>&1 || true
  c1=$(cpu_ticks "$SERVER_PID")
  R[$name.qpcrate]=$(awk -v n="$(field 'Queries completed' "$d/latency.out")" -v t=$((c1 - c0)) -v hz="$HZ" \
    'BEGIN {printf "%.0f", (t > 0) ? n / (t / hz) : 0}')
  R[$name.latlost]=$(field 'Queries lost' "$d/latency.out")
  awk '/^> / {printf "%.0f\n", $NF * 1e6}' "$d/latency.out" | sort -n >"$d/latency.us"
  read -r R[$name.avg] R[$name.p50] R[$name.p99] R[$name.p999] < <(awk '{a[NR] = $1; s += $1}
    function q(p) { i = int(NR * p + 0.5); if (i < 1) i = 1; if (i > NR) i = NR; return a[i] }
    END { if (NR == 0) { print "- - - -"; exit } printf "%.0f %d %d %d\n", s / NR, q(0.50), q(0.99), q(0.999) }' "$d/latency.us")
  R[$name.offcore]=$(off_core "$SERVER_PID" | tr '\n' ' ')
  R[$name.rss]=$(awk -v k="$(peak_rss_kib "$SERVER_PID")" 'BEGIN {printf "%.1f", k / 1024}')
  stop_server
  if [ -n "$SAVE" ]; then   # raw dnsperf outputs and server logs, for a second look
    for f in "$d"/*.out "$d"/*.log "$d"/*.conf "$d/command"; do [ ! -f "$f" ] || cp "$f" "$SAVE/$name.$ROUND.${f##*/}"; done
  fi
  return 0
}
COLS="qps lost cpu qpc avgfull qpcrate avg p50 p99 p999 latlost rss"
declare -A FAILED
for ROUND in $(seq "$REPEAT"); do
  order=("${servers[@]}")
  if [ $((ROUND % 2)) = 0 ]; then order=(); for s in "${servers[@]}"; do order=("$s" "${order[@]}"); done; fi
  for s in "${order[@]}"; do
    [ -z "${FAILED[$s]:-}" ] || continue
    if measure "$s"; then
      for c in $COLS offcore rcodes; do R[$s.$c.$ROUND]=${R[$s.$c]}; done
    else echo "skipping $s" >&2; FAILED[$s]=1; fi
  done
done
ok=(); for s in "${servers[@]}"; do [ -n "${FAILED[$s]:-}" ] || ok+=("$s"); done
[ ${#ok[@]} -gt 0 ] || die "no server could be measured"
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
if [ "$REPEAT" -gt 1 ]; then   # the columns of the summary rows are per-column medians
  for s in "${ok[@]}"; do
    for c in $COLS; do
      vals=(); for r in $(seq "$REPEAT"); do vals+=("${R[$s.$c.$r]}"); done
      R[$s.$c]=$(median "${vals[@]}")
    done
    R[$s.offcore]=""; for r in $(seq "$REPEAT"); do R[$s.offcore]+="${R[$s.offcore.$r]}"; done
  done
fi
row() {  # row LABEL SERVER [ROUND]
  local k=$2 x=${3:+.$3}
  printf '%-8s %8s %6s %5s %8s %8s | %8s %7s %7s %7s %8s %6s | %7s\n' "$1" "${R[$k.qps$x]}" "${R[$k.lost$x]}" \
    "${R[$k.cpu$x]}" "${R[$k.qpc$x]}" "${R[$k.avgfull$x]}" "${R[$k.qpcrate$x]}" "${R[$k.avg$x]}" "${R[$k.p50$x]}" "${R[$k.p99$x]}" \
    "${R[$k.p999$x]}" "${R[$k.latlost$x]}" "${R[$k.rss$x]}"
}

{
printf '# %s  mode=%s  rounds=%s  duration=%ss clients=%s outstanding=%s  latency: %s q/s for %ss  server core %s, dnsperf core %s\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$MODE" "$REPEAT" "$DURATION" "$CLIENTS" "$OUTSTANDING" "$RATE" "$LAT_DURATION" "$SERVER_CPU" "$LOAD_CPU"
printf '%-8s %8s %6s %5s %8s %8s | %8s %7s %7s %7s %8s %6s | %7s\n' \
  server qps lost cpu% q/cpu-s avg_us q/cpu-s avg_us p50_us p99_us p99.9_us lost rss_MiB
printf '%-8s %8s %6s %5s %8s %8s | %8s %7s %7s %7s %8s %6s | %7s\n' \
  "" "<-" "full" speed "" "->" "<-" "fixed" rate "" "" "->" ""
if [ "$REPEAT" -gt 1 ]; then
  for r in $(seq "$REPEAT"); do for s in "${ok[@]}"; do row "$s#$r" "$s" "$r"; done; done
  for s in "${ok[@]}"; do row "$s-med" "$s"; done
else
  for s in "${ok[@]}"; do row "$s" "$s"; done
fi
if [ -n "${R[knot.qps]:-}" ] && [ ${#ok[@]} -gt 1 ]; then
  echo "ratios to knot$([ "$REPEAT" -gt 1 ] && echo ' (medians)') (qps, q/cpu-s: higher is better; p99, rss: lower is better):"
  for s in "${ok[@]}"; do
    [ "$s" = knot ] && continue
    awk -v s="$s" -v q="${R[$s.qps]}" -v kq="${R[knot.qps]}" -v c="${R[$s.qpc]}" -v kc="${R[knot.qpc]}" \
        -v f="${R[$s.qpcrate]}" -v kf="${R[knot.qpcrate]}" \
        -v p="${R[$s.p99]}" -v kp="${R[knot.p99]}" -v r="${R[$s.rss]}" -v kr="${R[knot.rss]}" \
      'function d(a, b) { return (b > 0 && a != "-") ? sprintf("%.2f", a / b) : "-" }
       BEGIN {printf "  %-5s qps %s  q/cpu-s %s  q/cpu-s@rate %s  p99 %s  rss %s\n", s, d(q, kq), d(c, kc), d(f, kf), d(p, kp), d(r, kr)}'
    [ "${R[$s.rcodes]}" = "${R[knot.rcodes]}" ] || \
      printf '  WARNING %s answers a different rcode mix:\n    knot: %s\n    %s: %s\n' "$s" "${R[knot.rcodes]}" "$s" "${R[$s.rcodes]}"
  done
  if [ -n "${R[cmd.qps]:-}" ] && [ -n "${R[gdnsd.qps]:-}" ]; then
    awk -v q="${R[cmd.qps]}" -v gq="${R[gdnsd.qps]}" -v c="${R[cmd.qpc]}" -v gc="${R[gdnsd.qpc]}" \
        -v f="${R[cmd.qpcrate]}" -v gf="${R[gdnsd.qpcrate]}" \
      'function v(b) { return b ? "PASS" : "FAIL" }
       BEGIN {printf "target for cmd vs gdnsd: qps %.2f %s, q/cpu-s %.2f %s, q/cpu-s@rate %.2f %s\n",
                     q / gq, v(q >= gq), c / gc, v(c >= gc), f / gf, v(f >= gf)}'
  fi
  if [ -n "${R[cmd.qps]:-}" ]; then
    awk -v q="${R[cmd.qps]}" -v kq="${R[knot.qps]}" -v c="${R[cmd.qpc]}" -v kc="${R[knot.qpc]}" \
        -v f="${R[cmd.qpcrate]}" -v kf="${R[knot.qpcrate]}" \
        -v p="${R[cmd.p99]}" -v kp="${R[knot.p99]}" -v r="${R[cmd.rss]}" \
      'function v(b) { return b ? "PASS" : "FAIL" }
       BEGIN {printf "target for cmd: qps >= knot %s, q/cpu-s >= knot %s, q/cpu-s@rate >= knot %s, p99 <= knot %s, rss <= 20 MiB %s\n",
                     v(q >= kq), v(c >= kc), v(f >= kf), v(p != "-" && p <= kp), v(r <= 20)}'
  fi
fi
for s in "${ok[@]}"; do
  [ -z "${R[$s.offcore]}" ] || echo "WARNING $s has threads that left core $SERVER_CPU during the run: ${R[$s.offcore]}"
done
echo "rcode mix (full-speed run): ${R[${ok[0]}.rcodes]}"
} | tee "$SUMMARY"
