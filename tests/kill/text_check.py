#!/usr/bin/env python3
"""Whether a live process's code is its binary's, but for the patched entries.

    text_check.py PID BINARY

Compares the executable's mappings (file-backed, executable) byte for byte
with the file. A difference is allowed only inside the 16-byte patchable
entry (14-byte pad, 2-byte entry) of a function an applied patch redirects,
as `graft status --json` names them (GRAFT env: the graft binary). Prints
one line per leftover difference (an int3 graft left, or anything else) and
exits 1 if there is one.

    text_check.py --serve

The same for every "PID BINARY" line read on stdin: the lines, then
"done N" (N: how many), so that a storm of checks pays for one Python
start (seconds on a loaded machine), not one a check.
"""
import json, os, subprocess, sys

graft = os.environ.get("GRAFT", "graft")
symbols = {}  # binary -> its nm lines, read once


def check(pid, binary):
    """The differences of pid's code from binary's, but the applied patches' entries."""
    exe = os.path.realpath(f"/proc/{pid}/exe")
    maps = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) < 6 or os.path.realpath(parts[5].strip()) != exe:
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            maps.append((start, end, parts[1], int(parts[2], 16)))
    base = min(s - off for s, e, perms, off in maps if off == 0)

    # The entries of the applied patches' functions: [entry - 14, entry + 2).
    allowed = []
    status = json.loads(subprocess.run([graft, "status", str(pid), "--json"], capture_output=True, text=True,
                                       check=True).stdout)
    names = {fn.split("::")[-1] for p in status["patches"] for fn in p["functions"]}
    if names:
        if binary not in symbols:
            symbols[binary] = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True,
                                             check=True).stdout.splitlines()
        for line in symbols[binary]:
            fields = line.split()
            if len(fields) == 3 and fields[2] in names and fields[1] in "tT":
                entry = base + int(fields[0], 16)
                allowed.append((entry - 14, entry + 2))

    bad = []
    with open(binary, "rb") as elf, open(f"/proc/{pid}/mem", "rb") as mem:
        for start, end, perms, offset in maps:
            if "x" not in perms:
                continue
            elf.seek(offset)
            want = elf.read(end - start)
            mem.seek(start)
            have = mem.read(len(want))
            for i, (a, b) in enumerate(zip(want, have)):
                if a != b and not any(lo <= start + i < hi for lo, hi in allowed):
                    bad.append(f"{start + i:#x}: {b:#04x} in memory, {a:#04x} in {binary}" +
                               (" (an int3)" if b == 0xCC else ""))
    return ["text: " + line for line in bad[:10]]


if sys.argv[1] == "--serve":
    for request in sys.stdin:
        pid, binary = request.split()
        try:
            bad = check(int(pid), binary)
        except Exception as e:  # the process died meanwhile, graft status failed: said, and the next request served
            bad = [f"text: cannot check process {pid}: {e}"]
        print("\n".join(bad + [f"done {len(bad)}"]), flush=True)
else:
    bad = check(int(sys.argv[1]), sys.argv[2])
    for line in bad:
        print(line)
    sys.exit(1 if bad else 0)
