#!/usr/bin/env bash
# install-deps.sh installs what `make test` needs on a Debian machine: the
# reference memcached and the real clients the end-to-end tests drive
# (libmemcached-tools' memccapable, pymemcache with pytest), chromium for the
# status page test, redis-server for the benchmarks, and staticcheck for
# `make lint`.
#
# It is idempotent and quiet: when everything is present it prints nothing
# and touches nothing. Run it as root, or as a user who may sudo.
set -euo pipefail

packages=(memcached libmemcached-tools python3-pymemcache python3-pytest redis-server chromium)
# staticcheck 2026.2.2 (module v0.8.2) is the first release that reads Go 1.26 code.
staticcheck_version=v0.8.2

sudo=()
if [[ $EUID -ne 0 ]]; then
	if ! command -v sudo >/dev/null; then
		echo "install-deps: not root and no sudo; cannot install packages" >&2
		exit 1
	fi
	sudo=(sudo)
fi

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if ((${#missing[@]})); then
	echo "install-deps: installing ${missing[*]}"
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# Debian starts memcached as a service on 127.0.0.1:11211, the port
	# `make run` serves on. The tests start their own memcached; stop the
	# service we just installed so that it does not hold the port.
	if [[ " ${missing[*]} " == *" memcached "* ]] && command -v systemctl >/dev/null &&
		systemctl is-active --quiet memcached 2>/dev/null; then
		echo "install-deps: stopping and disabling the memcached service (it holds port 11211)"
		"${sudo[@]}" systemctl disable --now memcached >/dev/null 2>&1 || true
	fi
fi

gobin="$(go env GOPATH)/bin"
if ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "(${staticcheck_version#v})"; then
	echo "install-deps: installing staticcheck@$staticcheck_version into $gobin"
	go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
fi
