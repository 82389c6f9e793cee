#!/bin/sh
# Installs Debian packages for the tests (`apt-get update`, then `apt-get install -y PKG...`), as
# root or through `sudo -n`. The install-*.sh scripts decide whether anything is missing first.
set -eu
if [ "$(id -u)" -eq 0 ]; then
    SUDO=
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
else
    echo "apt-install.sh: not root and no sudo; install $* by hand" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y "$@"
