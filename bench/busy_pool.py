#!/usr/bin/env python3
"""A busy thread pool meeting at its entries: httpd v4 -> v5 under wrk.

Every worker of examples/httpd spends most of its time inside conn_event,
which the v4 -> v5 patch replaces (the per-connection struct changes), so
the update needs all four out of it at once. This runs the same apply
under the same load with two hold policies, interleaved (one run, side by
side): `--max-hold 2` (a thread parked at an entry is let go after 2 ms,
as before the hold could grow) and the default (`--max-hold 64`: the hold
doubles each time the parked threads must be let go before the others
came). Reports, per policy, how many applies found a safe moment within
--timeout, their total time, the longest time a thread was held, and the
stop/check rounds.

    bench/busy_pool.py BUILD_DIR [TRIES]     (default 8 tries per policy)
"""
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LUA = """
local paths = {{"GET", "/index.html"}, {"POST", "/api/counters/x/incr"}, {"GET", "/api/stats"}}
local reqs, n = {}, 0
function init(args) for i, p in ipairs(paths) do reqs[i] = wrk.format(p[1], p[2]) end end
function request() n = n % #reqs + 1 return reqs[n] end
"""


def build(version, build_dir, store):
    out = subprocess.run([os.path.join(ROOT, "scripts/example_build.sh"), "httpd", version, build_dir],
                         check=True, capture_output=True, text=True).stdout.strip()
    for record in os.listdir(os.path.join(out, "..", "store")):
        link = os.path.join(store, record)
        if not os.path.exists(link):
            os.symlink(os.path.join(out, "..", "store", record), link)
    return os.path.join(out, "httpd")


def one(graft, old, patch, work, extra):
    www = os.path.join(work, "www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("hello\n")
    server = subprocess.Popen([old, "--root", www, "--port", "0", "--threads", "4"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(re.search(r"port (\d+)", server.stdout.readline()).group(1))
        load = subprocess.Popen(["wrk", "-t2", "-c16", "-d4s", "-s", os.path.join(work, "mix.lua"),
                                 f"http://127.0.0.1:{port}/"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        time.sleep(1)
        r = subprocess.run([graft, "apply", str(server.pid), patch, "--json", "--timeout", "1500"] + extra,
                           capture_output=True, text=True)
        wrk = load.communicate()[0]
        report = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
        errors = "Socket errors" in wrk or "Non-2xx" in wrk
        return {"applied": r.returncode == 0, "total_ms": report.get("total_ms"), "hold_us": report.get("hold_us"),
                "attempts": report.get("attempts"), "client_errors": errors}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build_dir = os.path.abspath(sys.argv[1])
    tries = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    graft = os.path.join(build_dir, "bin", "graft")
    work = tempfile.mkdtemp(prefix="graft-busy-pool.")
    try:
        store = os.path.join(work, "store")
        os.makedirs(store)
        os.environ["GRAFT_STORE"] = store
        with open(os.path.join(work, "mix.lua"), "w") as f:
            f.write(LUA)
        v4, v5 = build("v4", build_dir, store), build("v5", build_dir, store)
        patch = os.path.join(work, "v4-v5.graft")
        subprocess.run([graft, "diff", v4, v5, "-o", patch], check=True, capture_output=True)
        policies = [("--max-hold 2", graft, ["--max-hold", "2"]), ("default (64)", graft, [])]
        if len(sys.argv) > 3:
            policies.insert(0, ("baseline", os.path.join(os.path.abspath(sys.argv[3]), "bin", "graft"), []))
        runs = {label: [] for label, _, _ in policies}
        for i in range(tries):
            for label, tool, extra in policies:
                runs[label].append(one(tool, v4, patch, work, extra))
        print(f"httpd v4 -> v5 under wrk -t2 -c16, apply --timeout 1500, {tries} tries per policy, interleaved")
        print(f"{'policy':>14} {'applied':>8} {'total_ms (median)':>18} {'hold_us (max)':>14} "
              f"{'rounds (median)':>16} {'client errors':>14}")
        for label, rs in runs.items():
            ok = [r for r in rs if r["applied"]]
            total = statistics.median([r["total_ms"] for r in ok]) if ok else float("nan")
            held = max([r["hold_us"] or 0 for r in ok], default=0)
            rounds = statistics.median([r["attempts"] or 0 for r in ok]) if ok else float("nan")
            print(f"{label:>14} {len(ok):>4}/{len(rs):<3} {total:>18.1f} {held:>14} {rounds:>16} "
                  f"{sum(r['client_errors'] for r in rs):>14}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
