#!/usr/bin/env python3
"""How much of the PostgreSQL storage backend repeats the SQLite backend.

Reads every .rs file under crates/store/src/postgres/ and crates/store/src/sqlite/, keeps the
code lines (not blank, not a comment), normalises what necessarily differs between the two
(placeholders `$n` / `?n` / `?`, type and module names such as SqliteRow/PgRow,
SqliteStore/PostgresStore, `sqlite`/`postgres`, whitespace), and counts the PostgreSQL code
lines that also occur among the SQLite ones. Prints both counts and that number as a percentage
of the smaller backend.

With --ignore-structure, lines that carry no logic are left out of both backends before
counting: lines without a letter or digit (closing braces and brackets), `use` and `mod` lines.

Usage: scripts/backend_overlap.py [--root DIR] [--top N] [--ignore-structure]
"""

import argparse
import collections
import os
import re
import sys

BACKENDS = {"postgres": "crates/store/src/postgres", "sqlite": "crates/store/src/sqlite"}

PLACEHOLDER = re.compile(r"\$\d+|\?\d+")
TYPE_NAMES = re.compile(r"(?:Sqlite|SQLite|Postgres|PostgreSQL|Pg)(?=[A-Z_]|\b)")
MODULE_NAMES = re.compile(r"\b(?:sqlite|postgres|postgresql|pg)\b")
SPACE = re.compile(r"\s+")
STRUCTURE = re.compile(r"^[^A-Za-z0-9]*$|^(pub(\([a-z]+\))? )?(use|mod) ")


def code_lines(path):
    """The code lines of one file: block comments, line comments and blanks dropped."""
    out = []
    in_block = False
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if in_block:
                if "*/" in line:
                    in_block = False
                continue
            if line.startswith("/*"):
                in_block = "*/" not in line
                continue
            if not line or line.startswith("//"):
                continue
            out.append(line)
    return out


def normalise(line):
    line = PLACEHOLDER.sub("?", line)
    line = TYPE_NAMES.sub("DB", line)
    line = MODULE_NAMES.sub("db", line)
    return SPACE.sub(" ", line).strip()


def backend_lines(root, rel):
    lines = []
    base = os.path.join(root, rel)
    for dirpath, _, files in os.walk(base):
        for name in sorted(files):
            if name.endswith(".rs"):
                lines.extend(normalise(l) for l in code_lines(os.path.join(dirpath, name)))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    ap.add_argument("--top", type=int, default=0, help="also list the N most repeated lines")
    ap.add_argument("--ignore-structure", action="store_true",
                    help="leave out punctuation-only, use and mod lines")
    args = ap.parse_args()
    pg = backend_lines(args.root, BACKENDS["postgres"])
    lite = backend_lines(args.root, BACKENDS["sqlite"])
    if args.ignore_structure:
        pg = [l for l in pg if not STRUCTURE.match(l)]
        lite = [l for l in lite if not STRUCTURE.match(l)]
    if not pg or not lite:
        sys.exit("no backend code found under " + os.path.abspath(args.root))
    lite_set = set(lite)
    shared = [l for l in pg if l in lite_set]
    smaller = min(len(pg), len(lite))
    print(f"postgres code lines: {len(pg)}")
    print(f"sqlite code lines:   {len(lite)}")
    print(f"postgres lines also in sqlite: {len(shared)}")
    print(f"shared as % of the smaller backend: {100.0 * len(shared) / smaller:.1f} %")
    if args.top:
        for line, n in collections.Counter(shared).most_common(args.top):
            print(f"{n:5}  {line}")


if __name__ == "__main__":
    main()
