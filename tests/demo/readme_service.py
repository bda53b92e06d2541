#!/usr/bin/env python3
"""Writes the README's "Write your own service" program: the C blocks after
'<!-- example: PREFIX_1 -->', '<!-- example: PREFIX_2 -->', ... in order,
joined into one file.

readme_service.py README.md PREFIX OUT.c
"""
import sys

readme, prefix, out = sys.argv[1:4]
lines = open(readme).read().splitlines()
parts = []
n = 1
while True:
    marker = f"<!-- example: {prefix}_{n} -->"
    if marker not in lines:
        break
    start = lines.index(marker)
    if not lines[start + 1].startswith("```c"):
        sys.exit(f"{readme}:{start + 2}: the line after '{marker}' must open a ```c block")
    for i in range(start + 2, len(lines)):
        if lines[i].startswith("```"):
            parts.append("\n".join(lines[start + 2:i]))
            break
    else:
        sys.exit(f"{readme}: the example block '{marker}' is never closed")
    n += 1
if not parts:
    sys.exit(f"{readme}: no '<!-- example: {prefix}_1 -->' marker")
with open(out, "w") as f:
    f.write("\n\n".join(parts) + "\n")
