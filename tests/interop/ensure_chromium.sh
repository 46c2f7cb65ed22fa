#!/bin/sh
# Make sure Debian's chromium is at /usr/bin/chromium (the real-browser interop test drives it
# with Playwright). Idempotent: does nothing when it is already installed. Needs root or sudo.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "ensure_chromium.sh: need root (or sudo) to apt-get install chromium" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
test -x /usr/bin/chromium
