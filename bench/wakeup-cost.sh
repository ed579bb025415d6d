#!/usr/bin/env bash
# wakeup-cost.sh SERVER [COMMAND...]: what one query costs a server at a fixed rate, from the
# kernel's counters (not timings): system calls, context switches and CPU time per query over
# 5 s of dnsperf at RATE q/s (default 50000; DPMODE="-m tcp" for TCP). SERVER is knot, nsd,
# gdnsd or cmd (then COMMAND as for bench/harness/compare.sh), e.g.
#   bench/wakeup-cost.sh gdnsd
#   bench/wakeup-cost.sh cmd bench/regdns-as-cmd.sh {port} {zone} {dir}
# Needs perf (linux-perf) with the raw_syscalls tracepoint, dnsperf, taskset.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
source "${BENCH_LIB:-$here/harness/lib.sh}"
NAME=$1; shift
PORT=${BENCH_PORT:-25411}
RATE=${RATE:-50000}
need perf linux-perf; need dnsperf
start_server "$NAME" "$PORT" "$@" || die "$NAME did not start"
# shellcheck disable=SC2086
taskset -c "$LOAD_CPU" dnsperf ${DPMODE:-} -s 127.0.0.1 -p "$PORT" -d "$BENCH_DIR/queries.txt" -l 2 -c 4 -Q "$RATE" >/dev/null 2>&1
c0=$(cpu_ticks "$SERVER_PID")
# shellcheck disable=SC2086
taskset -c "$LOAD_CPU" dnsperf ${DPMODE:-} -s 127.0.0.1 -p "$PORT" -d "$BENCH_DIR/queries.txt" -l 6 -c 4 -Q "$RATE" >"$WORK/dp.out" 2>&1 &
DP=$!
sleep 0.5
pids=$(tree "$SERVER_PID" | paste -sd,)
perf stat -e raw_syscalls:sys_enter,context-switches,task-clock -p "$pids" -- sleep 5 2>"$WORK/perf.out"
wait "$DP"
c1=$(cpu_ticks "$SERVER_PID")
q=$(awk '/Queries completed/ {print $3}' "$WORK/dp.out")
echo "$NAME: $q queries, $(awk -v q="$q" -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", q / (t / hz)}') per CPU-second"
awk -v q=$((RATE * 5)) '/raw_syscalls/ {gsub(",", "", $1); printf "  system calls per query    %.3f\n", $1 / q}
  /context-switches/ {gsub(",", "", $1); printf "  context switches per query %.3f\n", $1 / q}
  /task-clock/ {gsub(",", "", $1); printf "  CPU per query              %.2f us\n", $1 * 1000 / q}' "$WORK/perf.out"
stop_server
