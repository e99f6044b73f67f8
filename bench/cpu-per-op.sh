#!/usr/bin/env bash
# Server and client CPU per operation, from /proc, for one server under a
# set-only load (100 B values, depth 1): the figure behind "what limits
# Petrel" in docs/performance.md. One line per run:
#
#   bash bench/cpu-per-op.sh petrel [petrel serve args...]
#   bash bench/cpu-per-op.sh redis always|everysec|none
#
# Environment: CONNS (default 50), KEYS (default 100000), SECS (measured
# seconds, default 4), HOLD_STORER=1 (Petrel: hold the data directory's
# storer lock, as a `petrel storer` beside it would, so that no storer runs
# in the server). Petrel runs from bin/petrel (make build), Redis from
# redis-server; port 19011 on 127.0.0.1 must be free.
set -euo pipefail
kind=$1
shift
conns=${CONNS:-50} keys=${KEYS:-100000} secs=${SECS:-4}
data=$(mktemp -d)
holder=
cleanup() {
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	[ -n "$holder" ] && kill "$holder" 2>/dev/null
	rm -rf "$data"
}
case $kind in
petrel)
	if [ -n "${HOLD_STORER:-}" ]; then
		touch "$data/storer.lock"
		flock -n "$data/storer.lock" sleep 3600 &
		holder=$!
		sleep 0.2
	fi
	bin/petrel serve -l 127.0.0.1 -p 19011 -t 2 -m 1024 --data-dir "$data" "$@" >"$data.log" 2>&1 &
	proto=text
	;;
redis)
	persist=(--appendonly yes --appendfsync "$1")
	[ "$1" = none ] && persist=(--appendonly no)
	redis-server --port 19011 --bind 127.0.0.1 --dir "$data" --save '' "${persist[@]}" >"$data.log" 2>&1 &
	proto=resp
	;;
*)
	echo "usage: $0 petrel [serve args] | redis always|everysec|none" >&2
	exit 2
	;;
esac
pid=$!
trap cleanup EXIT
sleep 1.5
bin/petrel bench -protocol "$proto" -server 127.0.0.1:19011 -conns "$conns" -keys "$keys" -ratio 0:1 \
	-value fixed:100 -preload -duration "$((secs + 4))s" -quiet >"$data.bench" 2>&1 &
bp=$!
sleep 2
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
s0=$(ticks "$pid") c0=$(ticks "$bp") t0=$(date +%s.%N)
sleep "$secs"
s1=$(ticks "$pid") c1=$(ticks "$bp") t1=$(date +%s.%N)
wait "$bp"
ops=$(grep -m1 '^ops:' "$data.bench" | sed 's/.*= \([0-9]*\) ops\/s.*/\1/')
p99=$(grep -m1 'latency:' "$data.bench" | sed 's/.*p99 \([0-9.]*\).*/\1/')
awk -v k="$kind $*" -v c="$conns" -v ops="$ops" -v p99="$p99" -v s=$((s1 - s0)) -v cl=$((c1 - c0)) \
	-v hz="$(getconf CLK_TCK)" -v t0="$t0" -v t1="$t1" -v hold="${HOLD_STORER:-}" 'BEGIN {
	t = t1 - t0
	printf "%s%s, %d conns: %d ops/s, p99 %s us, server %.0f%% of a core, %.1f us CPU/op, client %.1f us CPU/op\n",
		k, (hold ? " (storer held off)" : ""), c, ops, p99, 100 * s / hz / t, s / hz / t / ops * 1e6, cl / hz / t / ops * 1e6 }'
rm -f "$data.log" "$data.bench"
