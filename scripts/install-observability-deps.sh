#!/bin/sh
# Installs what the observability tests need beyond scripts/install-deps.sh:
# Debian's chromium, which test/status_page_test.go drives headless to
# render the admin status page. Run as root (or with sudo) on Debian 12.
set -eu
if command -v chromium >/dev/null 2>&1; then
	echo "chromium: $(chromium --version 2>/dev/null || echo installed)"
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium
chromium --version
