#!/usr/bin/env python3
"""Writes the C block that follows '<!-- example: NAME -->' in README.md.

extract.py README.md NAME OUT.c
"""
import sys

readme, name, out = sys.argv[1:4]
lines = open(readme).read().splitlines()
marker = f"<!-- example: {name} -->"
try:
    start = lines.index(marker)
except ValueError:
    sys.exit(f"{readme}: no '{marker}' marker")
if not lines[start + 1].startswith("```c"):
    sys.exit(f"{readme}:{start + 2}: the line after '{marker}' must open a ```c block")
body = []
for line in lines[start + 2:]:
    if line.startswith("```"):
        break
    body.append(line)
else:
    sys.exit(f"{readme}: the example block '{name}' is never closed")
with open(out, "w") as f:
    f.write("\n".join(body) + "\n")
