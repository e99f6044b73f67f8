#!/usr/bin/env bash
# fuzz.sh runs every Go fuzz target in the module (func FuzzXxx in a
# _test.go file) for a short time each: FUZZTIME, default 20s. It stops at
# the first failure; the failing input is saved under testdata/fuzz of the
# package, where `go test` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-20s}
found=0
while IFS= read -r file; do
	dir=$(dirname "$file")
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
		found=1
		echo "fuzz: ./$dir $target ($fuzztime)"
		go test "./$dir" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime"
	done
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | sed 's|^\./||' | sort)

if [[ $found -eq 0 ]]; then
	echo "fuzz: no fuzz targets found"
fi
