#!/bin/sh
# Installs headless Chromium and its WebDriver (Debian `chromium` + `chromium-driver`) for the
# portal's browser tests. Idempotent: does nothing when both binaries are already there.
set -eu
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
else
    echo "install-chromium.sh: not root and no sudo; install chromium and chromium-driver by hand" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y chromium chromium-driver
