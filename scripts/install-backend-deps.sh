#!/usr/bin/env bash
# install-backend-deps.sh installs what the storage backend tests need on a
# Debian machine: PostgreSQL's server binaries (the tests run their own
# cluster with initdb and pg_ctl on a free port) and dynalite, a
# DynamoDB-compatible server from npm (started by the tests with node).
#
# It is idempotent and quiet: when everything is present it prints nothing
# and touches nothing. Run it as root, or as a user who may sudo.
#
# dynalite goes into $PETREL_DEPS_DIR (default ~/.cache/petrel-test), where
# internal/storage/backendtest looks for it; PETREL_DYNALITE may instead
# name any dynalite cli.js.
set -euo pipefail

packages=(postgresql)
# A node from elsewhere (NodeSource's nodejs bundles npm and conflicts with
# Debian's npm package) is fine: only install what is missing.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
dynalite_version=4.0.0
deps_dir=${PETREL_DEPS_DIR:-$HOME/.cache/petrel-test}

sudo=()
if [[ $EUID -ne 0 ]]; then
	if ! command -v sudo >/dev/null; then
		echo "install-backend-deps: not root and no sudo; cannot install packages" >&2
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
	echo "install-backend-deps: installing ${missing[*]}"
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# Debian starts a cluster as a service on port 5432. The tests start
	# their own on free ports and never use it; stop it so that it holds no
	# memory on a CI box.
	if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v systemctl >/dev/null &&
		systemctl is-active --quiet postgresql 2>/dev/null; then
		"${sudo[@]}" systemctl stop postgresql
		"${sudo[@]}" systemctl disable --quiet postgresql || true
	fi
fi

if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	echo "install-backend-deps: postgresql installed but no /usr/lib/postgresql/*/bin/initdb" >&2
	exit 1
fi

cli=$deps_dir/node_modules/dynalite/cli.js
have=$(node -p "require('$deps_dir/node_modules/dynalite/package.json').version" 2>/dev/null || true)
if [[ ! -f $cli || $have != "$dynalite_version" ]]; then
	echo "install-backend-deps: installing dynalite $dynalite_version into $deps_dir"
	mkdir -p "$deps_dir"
	# dynalite's storage (classic-level) ships prebuilt binaries for
	# linux-x64 and arm64, so no compiler is needed.
	npm install --prefix "$deps_dir" --no-audit --no-fund --loglevel=error \
		"dynalite@$dynalite_version" >/dev/null
fi
