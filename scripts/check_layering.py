#!/usr/bin/env python3
"""Fails when a source file includes a project header from a folder its component may not use.

BUILD/layers.txt (written by cmake/Layering.cmake) lists `folder: allowed folders`, where the
allowed folders are the component's own and those of its declared dependencies, transitively.
The linker already refuses calls up the layering (the layer_check_* programs); this catches what
it cannot see: a wrong-way include of a header-only type, constant or inline function.
"""
import argparse
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"((?:core|partner_node|model_vendor)/[^"]+)"')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", required=True)
    parser.add_argument("--source", required=True)
    args = parser.parse_args()

    allowed = {}
    with open(args.layers) as f:
        for line in f:
            if ":" not in line:
                continue
            folder, rest = line.split(":", 1)
            allowed.setdefault(folder.strip(), set()).update(rest.split())

    violations = []
    checked = 0
    for folder, may_use in sorted(allowed.items()):
        directory = os.path.join(args.source, folder)
        for name in sorted(os.listdir(directory)):
            if not name.endswith((".cc", ".h")):
                continue
            checked += 1
            path = os.path.join(directory, name)
            with open(path, encoding="utf-8") as f:
                for number, text in enumerate(f, 1):
                    match = INCLUDE.match(text)
                    if not match:
                        continue
                    target = os.path.dirname(match.group(1))
                    if target not in may_use:
                        violations.append(
                            f"{folder}/{name}:{number}: includes {match.group(1)}, but "
                            f"{folder} may only use {' '.join(sorted(may_use))}")
    for v in violations:
        print(v)
    print(f"layering: {checked} files in {len(allowed)} folders, {len(violations)} wrong-way "
          f"include(s)")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
