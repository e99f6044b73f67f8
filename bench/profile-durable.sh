#!/usr/bin/env bash
# Profile `petrel serve --durability=sync` under a set-only load: 50
# connections, depth 1, 10,000 keys of 16 B, 100 B values. Saves the CPU
# profile, a `go tool pprof -top` of it, and the server's CPU time per
# acknowledged set (from /proc) to OUT.
#
#   bash bench/profile-durable.sh [OUT] [extra petrel serve args...]
#
# OUT defaults to bench/results/<date>-profile-durable. Ports 19011 and
# 19090 on 127.0.0.1 must be free. Build first: make build (bin/petrel).
set -euo pipefail
out=${1:-bench/results/$(date -u +%F)-profile-durable}
shift || true
mkdir -p "$out"
data=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
bin/petrel serve -l 127.0.0.1 -p 19011 -t 2 -m 1024 --admin=127.0.0.1:19090 \
	--data-dir "$data" --durability=sync "$@" >"$out/server.log" 2>&1 &
pid=$!
sleep 1.5
bin/petrel bench -server 127.0.0.1:19011 -conns 50 -keys 10000 -ratio 0:1 \
	-value fixed:100 -preload -duration 12s -quiet -json "$out/bench.json" >"$out/bench.txt" 2>&1 &
bp=$!
sleep 3
hz=$(getconf CLK_TCK)
t0=$(awk '{print $14+$15}' /proc/$pid/stat)
curl -s -o "$out/cpu.pprof" "http://127.0.0.1:19090/debug/pprof/profile?seconds=6"
t1=$(awk '{print $14+$15}' /proc/$pid/stat)
wait $bp
go tool pprof -top -nodecount=40 bin/petrel "$out/cpu.pprof" >"$out/top.txt" 2>/dev/null
go tool pprof -top -cum -nodecount=60 bin/petrel "$out/cpu.pprof" >"$out/top-cum.txt" 2>/dev/null
ops=$(grep -m1 '^ops:' "$out/bench.txt" | sed 's/.*= \([0-9]*\) ops\/s.*/\1/')
{
	echo "command: bash bench/profile-durable.sh $out $*"
	echo "nproc: $(nproc)"
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "sets/s: $ops"
	echo "server CPU over the 6 s profile: $(( (t1 - t0) * 100 / hz / 6 ))% of a core"
	awk -v t=$((t1 - t0)) -v hz="$hz" -v ops="$ops" 'BEGIN { printf "server CPU per set: %.1f us\n", t / hz / 6 / ops * 1e6 }'
} | tee "$out/summary.txt"
