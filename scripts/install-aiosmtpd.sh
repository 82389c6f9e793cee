#!/bin/sh
# Installs aiosmtpd (Debian `python3-aiosmtpd`), the SMTP server the mail tests run on loopback.
# Idempotent: does nothing when Debian's python3 (/usr/bin/python3, the one the package serves,
# whatever python3 comes first on PATH) can already import it.
set -eu
if /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
else
    echo "install-aiosmtpd.sh: not root and no sudo; install python3-aiosmtpd by hand" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y python3-aiosmtpd
