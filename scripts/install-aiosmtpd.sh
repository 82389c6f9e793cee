#!/bin/sh
# Installs aiosmtpd (Debian `python3-aiosmtpd`), the SMTP server the mail tests run on loopback.
# Idempotent: does nothing when Debian's python3 (/usr/bin/python3, the one the package serves,
# whatever python3 comes first on PATH) can already import it.
set -eu
if /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
    exit 0
fi
exec "$(dirname "$0")/apt-install.sh" python3-aiosmtpd
