#!/bin/sh
# Installs headless Chromium and its WebDriver (Debian `chromium` + `chromium-driver`) for the
# portal's browser tests. Idempotent: does nothing when both binaries are already there.
set -eu
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
exec "$(dirname "$0")/apt-install.sh" chromium chromium-driver
