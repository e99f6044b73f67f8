#!/usr/bin/env bash
# install-deps.sh installs what `make test` needs on a Debian machine: the
# reference memcached and the real clients the end-to-end tests drive
# (libmemcached-tools' memccapable, pymemcache with pytest), chromium for the
# status page test, redis-server for the benchmarks, PostgreSQL's server
# binaries and dynalite (a DynamoDB-compatible server from npm) for the storage
# backend tests, which start their own servers on free ports, and staticcheck
# for `make lint`.
#
# dynalite goes into $PETREL_DEPS_DIR (default ~/.cache/petrel-test), where
# internal/storage/backendtest looks for it; PETREL_DYNALITE may instead name
# any dynalite cli.js.
#
# It is idempotent and quiet: when everything is present it prints nothing
# and touches nothing. Run it as root, or as a user who may sudo.
set -euo pipefail

packages=(memcached libmemcached-tools python3-pymemcache python3-pytest redis-server chromium postgresql)
# A node from elsewhere (NodeSource's nodejs bundles npm and conflicts with
# Debian's npm package) is fine: only install what is missing.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
dynalite_version=4.0.0
deps_dir=${PETREL_DEPS_DIR:-$HOME/.cache/petrel-test}
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
	# Likewise Debian's PostgreSQL cluster on port 5432: the tests never use it.
	if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v systemctl >/dev/null &&
		systemctl is-active --quiet postgresql 2>/dev/null; then
		"${sudo[@]}" systemctl disable --now postgresql >/dev/null 2>&1 || true
	fi
fi

if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	echo "install-deps: postgresql installed but no /usr/lib/postgresql/*/bin/initdb" >&2
	exit 1
fi

cli=$deps_dir/node_modules/dynalite/cli.js
have=$(node -p "require('$deps_dir/node_modules/dynalite/package.json').version" 2>/dev/null || true)
if [[ ! -f $cli || $have != "$dynalite_version" ]]; then
	echo "install-deps: installing dynalite $dynalite_version into $deps_dir"
	mkdir -p "$deps_dir"
	# dynalite's storage (classic-level) ships prebuilt binaries for
	# linux-x64 and arm64, so no compiler is needed.
	npm install --prefix "$deps_dir" --no-audit --no-fund --loglevel=error \
		"dynalite@$dynalite_version" >/dev/null
fi

gobin="$(go env GOPATH)/bin"
if ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "(${staticcheck_version#v})"; then
	echo "install-deps: installing staticcheck@$staticcheck_version into $gobin"
	go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
fi
