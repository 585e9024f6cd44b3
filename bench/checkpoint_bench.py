#!/usr/bin/env python3
"""Checkpoint benchmarks for issue 4, "Measure" (standard library only):

    checkpoint_bench.py BUILD_DIR [rate] [threads]     (default: both)
    (also: bench/run.sh BUILD_DIR rate [threads])

Target: tests/programs/checkpoints built with graft-cc --graft-policy=strict -O2
(strict keeps changed_timed() a function of its own; balanced could inline it
into the never-returning worker loop), mode `rate N GAP_US INSIDE_US spin|sleep`:
N threads call changed_timed() (which the v1->v2 patch replaces) in a loop,
INSIDE_US inside it (spinning, or blocked in nanosleep), then GAP_US outside
(nanosleep of a random length in [GAP/2, 3 GAP/2] with 1 ns timer slack, from
a random phase; 0 = back to back).

  rate     N in RATE_THREADS ("4 16"), GAP in RATE_GAPS_US ("1000 100 10 1 0"),
           INSIDE in RATE_INSIDE_US ("0 10 100", spinning), --timeout
           RATE_TIMEOUT_MS (2000).
  threads  N in THREADS_N ("1 16 256 1024"), GAP = max(1 ms, N/16 ms) (the process
           makes at most 16,000 calls/s whatever N), two loads: THREADS_LOADS
           ("10:spin 1000:sleep": 10 us spinning inside, 1 ms blocked inside),
           --timeout THREADS_TIMEOUT_MS (5000).

One fresh target per cell; CP_REPS (5) repetitions, each an apply + revert with
--checkpoints dynamic and the same with poll, interleaved (the order alternates
from one repetition to the next) so that the noise of the shared machine hits
both. Every graft command runs with GRAFT_TRACE=1: "safe" = µs from the start of
the search for a safe moment to the check that found one (time to checkpoint);
"stopped"/"checked" per stop give the stop and check cost per thread.
A revert that fails is retried with --checkpoints dynamic (recorded as
revert-retry); a target that cannot be brought back to v1 is replaced.
CELL_BUDGET_S (100): no new repetition starts in a cell after that many seconds
(at least 3 are run).

Writes bench/results/cp_{rate,threads}.csv (one row per command),
cp_{rate,threads}_summary.csv, cp_stops.csv (one row per stop of the threads
set), cp_stopcost_summary.csv, and the <!-- generated:cp-* --> sections of
docs/BENCHMARKS.md. Processes are started here and ended by their PID only.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import json

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench as B  # noqa: E402

TRACE_RE = re.compile(r"graft: trace: (\S+)\s+(\d+) us")


def env_list(name, default):
    return os.environ.get(name, default).split()


def build(tools, work):
    d = os.path.join(work, "cp-strict")
    bins = {}
    for v in ("v1", "v2"):
        vd = os.path.join(d, v)
        os.makedirs(vd)
        shutil.copy(os.path.join(ROOT, "tests", "programs", "checkpoints", v, "main.c"), vd)
        B.check([tools["graft-cc"], "--graft-policy=strict", "-O2", "-pthread", "main.c", "-o", "prog"], cwd=vd)
        bins[v] = os.path.join(vd, "prog")
    patch = os.path.join(d, "p.graft")
    B.check([tools["graft"], "diff", bins["v1"], bins["v2"], "-o", patch])
    info = json.loads(B.check([tools["graft"], "info", patch, "--json"]).stdout)
    names = sorted(f["identity"].split(":")[-1] for f in info["functions"])
    return bins, patch, names


def graft_traced(cmd, timeout_s):
    """Runs a graft command with --json and GRAFT_TRACE=1: (json or None, error, trace events, wall ms)."""
    env = dict(os.environ, GRAFT_TRACE="1")
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired as e:  # run() kills the child (by its PID) before raising
        text = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        return None, "graft did not return within %d s" % timeout_s, parse_trace(text), (time.perf_counter() - t0) * 1000
    wall = (time.perf_counter() - t0) * 1000
    events = parse_trace(r.stderr)
    j = None
    try:
        j = json.loads(r.stdout) if r.stdout.strip() else None
    except ValueError:
        j = None
    if r.returncode != 0 or not j or not j.get("ok", True):
        err = " ".join(l for l in r.stderr.splitlines() if "graft: trace:" not in l).strip()
        return None, err or ("exit %d" % r.returncode), events, wall
    return j, None, events, wall


def parse_trace(stderr):
    """[(name, us)] in order; a stop is a "stopped" followed by its "checked"."""
    return [(m.group(1), int(m.group(2))) for m in TRACE_RE.finditer(stderr)]


def stops_of(events):
    out, cur = [], None
    for name, us in events:
        if name == "stopped":
            cur = [us, None]
            out.append(cur)
        elif name == "checked" and cur is not None and cur[1] is None:
            cur[1] = us - cur[0]
    return [(s, c) for s, c in out if c is not None]


def safe_of(events):
    v = [us for name, us in events if name == "safe"]
    return v[-1] if v else None


class Target:
    """One running `prog rate ...`, started and ended by PID."""

    def __init__(self, binary, args, ready_timeout):
        self.args = [binary] + [str(a) for a in args]
        self.ready_timeout = ready_timeout
        self.p = None
        self.restarts = -1
        self.start()

    def start(self):
        if self.p is not None:
            B.stop(self.p, signal.SIGKILL)
        self.p = B.start(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        B.read_line(self.p, r"ready (\d+)", self.ready_timeout)
        time.sleep(0.3)
        self.restarts += 1

    @property
    def pid(self):
        return self.p.pid

    def ask(self, line, pattern, timeout=10):
        os.write(self.p.stdin.fileno(), line)
        return B.read_line(self.p, pattern, timeout)

    def version(self):
        try:
            if self.p.poll() is not None:
                return None
            return int(self.ask(b"x\n", r"(\d) \d\n").group(1))
        except (RuntimeError, OSError):
            return None

    def calls(self):
        return int(self.ask(b"c\n", r"calls (\d+)\n").group(1))

    def close(self):
        B.stop(self.p, signal.SIGKILL)


def measure_rate(t, n, window=0.5):
    """Calls per second per thread and target CPU % (100 = one core), before any graft command."""
    c0, cpu0, w0 = t.calls(), B.proc_cpu_s(t.pid), time.time()
    time.sleep(window)
    c1, cpu1, w1 = t.calls(), B.proc_cpu_s(t.pid), time.time()
    return (c1 - c0) / (w1 - w0) / n, 100.0 * (cpu1 - cpu0) / (w1 - w0)


def run_cell(graft, bins, patch, cell, reps, timeout_ms, rows, stops_out):
    """cell: dict(set, threads, gap_us, inside_us, kind). Appends one row per graft command."""
    n, gap, inside, kind = cell["threads"], cell["gap_us"], cell["inside_us"], cell["kind"]
    ready_timeout = 60 + n // 8
    sub_timeout = timeout_ms // 1000 * 4 + 60
    t = Target(bins["v1"], ["rate", n, gap, inside, kind], ready_timeout)
    t0 = time.time()
    budget = B.env_int("CELL_BUDGET_S", 100)
    label = "%s N=%d gap=%dus inside=%dus %s" % (cell["set"], n, gap, inside, kind)
    # A stop, and threads let go together from checkpoints, put the threads in step; the target's random
    # gaps take them out of step again within a few cycles: wait about 12 cycles after every command.
    settle = min(1.5, max(0.05, 12 * (gap + inside) / 1e6))
    try:
        rate, cpu = measure_rate(t, n)
        base = [cell["set"], n, gap, inside, kind, "%.0f" % rate, "%.0f" % cpu]
        done = 0
        for rep in range(reps):
            if rep >= 3 and time.time() - t0 > budget:
                B.log("%s: cell budget of %d s used up after %d repetitions" % (label, budget, rep))
                break
            done += 1
            for cp in (("dynamic", "poll") if rep % 2 == 0 else ("poll", "dynamic")):
                cmd = [graft, "apply", str(t.pid), patch, "--json", "--checkpoints", cp, "--timeout", str(timeout_ms)]
                j, err, ev, wall = graft_traced(cmd, sub_timeout)
                record(rows, stops_out, base, rep, cp, "apply", j, err, ev, wall)
                time.sleep(settle)
                if j is None:
                    if t.version() != 1:
                        B.log("%s: target not answering v1 after a failed apply (%s): restarted" % (label, err))
                        t.start()
                    continue
                v = t.version()
                if v != 2:
                    rows[-1][-1] = ("version %s after apply; " % v) + rows[-1][-1]
                for op, mode, tmo in (("revert", cp, timeout_ms), ("revert-retry", "dynamic", 2 * timeout_ms)):
                    cmd = [graft, "revert", str(t.pid), "--json", "--checkpoints", mode, "--timeout", str(tmo)]
                    j, err, ev, wall = graft_traced(cmd, sub_timeout)
                    record(rows, stops_out, base, rep, mode, op, j, err, ev, wall)
                    time.sleep(settle)
                    if j is not None:
                        break
                if t.version() != 1:
                    B.log("%s: could not revert (%s): target restarted" % (label, err))
                    t.start()
        B.log("%s: %d reps, %.0f calls/s/thread, CPU %.0f%%, %d restarts, %.0f s" % (
            label, done, rate, cpu, t.restarts, time.time() - t0))
    finally:
        t.close()


def record(rows, stops_out, base, rep, cp, op, j, err, ev, wall):
    st = stops_of(ev)
    safe = safe_of(ev)
    j = j or {}
    rows.append(base + [rep, cp, op, 0 if err else 1, j.get("threads", ""), j.get("attempts", ""),
                        j.get("arrivals", ""), j.get("pause_us", ""), j.get("hold_us", ""), j.get("prepare_us", ""),
                        safe if safe is not None and not err else "", "%.3f" % j["total_ms"] if "total_ms" in j else "",
                        "%.1f" % wall, len(st), max((s for s, _ in st), default=""), (err or "")[:300]])
    thr = j.get("threads") or base[1] + 1
    for i, (s, c) in enumerate(st):
        stops_out.append(base[:5] + [rep, cp, op, i, thr, s, c])


HEADER = ["set", "threads", "gap_us", "inside_us", "inside_kind", "calls_per_s_per_thread", "target_cpu_pct", "rep",
          "checkpoints", "op", "ok", "threads_seen", "attempts", "arrivals", "pause_us", "hold_us", "prepare_us",
          "safe_us", "total_ms", "wall_ms", "stops", "stopped_us_max", "error"]
SUMMARY_HEADER = ["set", "threads", "gap_us", "inside_us", "inside_kind", "checkpoints", "op", "ok", "tries",
                  "safe_ms_p50", "safe_ms_p99", "total_ms_p50", "total_ms_p99", "pause_ms_p50", "pause_ms_p99",
                  "attempts_p50", "attempts_max", "arrivals_mean", "arrivals_max", "calls_per_s_per_thread",
                  "target_cpu_pct", "hold_ms_max", "first_error"]


def summarise(rows, cells):
    summary = []
    for c in cells:
        key = [c["set"], c["threads"], c["gap_us"], c["inside_us"], c["kind"]]
        for cp in ("dynamic", "poll"):
            for op in ("apply", "revert"):
                sel = [r for r in rows if r[:5] == key and r[8] == cp and r[9] == op]
                if not sel:
                    continue
                good = [r for r in sel if r[10] == 1]
                safe = [r[17] / 1000.0 for r in good if r[17] != ""]
                tot = [float(r[18]) for r in good]
                pz = [r[14] / 1000.0 for r in good]
                att = [int(r[12]) for r in good if r[12] != ""]
                arr = [int(r[13]) for r in good if r[13] != ""]
                f3 = lambda v, q: ("%.3f" % B.pct(v, q)) if v else ""
                summary.append(key + [cp, op, len(good), len(sel), f3(safe, 50), f3(safe, 99), f3(tot, 50),
                                      f3(tot, 99), f3(pz, 50), f3(pz, 99), B.pct(att, 50) if att else "",
                                      max(att) if att else "", "%.1f" % (sum(arr) / len(arr)) if arr else "",
                                      max(arr) if arr else "", sel[0][5], sel[0][6],
                                      "%.3f" % (max(r[15] for r in good) / 1000.0) if good else "",
                                      next((r[22] for r in sel if r[10] == 0), "")[:160]])
    return summary


def pp(s, key50, key99):
    """"p50 / p99" from a summary row (indices), n/a when empty."""
    a, b = s[key50], s[key99]
    return "n/a" if a == "" else "%s / %s" % (B.fmt(float(a)), B.fmt(float(b)))


def na(x):
    return "n/a" if x == "" else x


def ratio(a, b):
    return "n/a" if a == "" or b == "" or float(b) == 0 else "%.2f" % (float(a) / float(b))


def table(summary, first_cols):
    """Markdown rows: one per cell, dynamic and poll apply side by side, and the revert outcome."""
    out = []
    cells = []
    for s in summary:
        if s[:5] not in cells:
            cells.append(s[:5])
    for key in cells:
        get = lambda cp, op: next((s for s in summary if s[:5] == key and s[5] == cp and s[6] == op), None)
        d, p = get("dynamic", "apply"), get("poll", "apply")
        dr, pr = get("dynamic", "revert"), get("poll", "revert")
        if not d or not p:
            continue
        row = first_cols(key, d)
        row += ["%d/%d" % (d[7], d[8]), pp(d, 9, 10), pp(d, 13, 14), "%s / %s" % (na(d[15]), na(d[16])), "%s / %s" % (na(d[17]), na(d[18])), B.fmt(float(d[21])) if d[21] != "" else "n/a",
                "%d/%d" % (p[7], p[8]), pp(p, 9, 10), pp(p, 13, 14), "%s / %s" % (na(p[15]), na(p[16])),
                ratio(d[9], p[9]), ratio(d[13], p[13]),
                "%s, %s" % ("%d/%d" % (dr[7], dr[8]) if dr else "-", "%d/%d" % (pr[7], pr[8]) if pr else "-")]
        out.append(row)
    return out


TABLE_HEAD = ["dyn ok", "dyn safe ms p50 / p99", "dyn pause ms p50 / p99", "dyn attempts p50 / max",
              "dyn arrivals mean / max", "dyn hold ms max", "poll ok", "poll safe ms p50 / p99", "poll pause ms p50 / p99",
              "poll attempts p50 / max", "safe dyn/poll", "pause dyn/poll", "revert ok dyn, poll"]

COMMON_TEXT = (
    "Target `tests/programs/checkpoints/v1` built with `graft-cc --graft-policy=strict -O2 -pthread`, mode "
    "`rate N GAP_US INSIDE_US spin|sleep` (N threads calling `changed_timed()` in a loop, INSIDE_US inside it, then "
    "on average GAP_US outside in `nanosleep` (a random length in [GAP/2, 3 GAP/2], 1 ns timer slack, from a random "
    "phase, so that the threads do not run in step; gap 0 = back to back); patch `graft diff v1 v2` (%s). "
    "One fresh target per row; %d repetitions, each `graft apply PID p.graft --json --checkpoints dynamic|poll "
    "--timeout T` followed by `graft revert PID --json --checkpoints (same) --timeout T` (retried with dynamic if it "
    "fails), a pause of 12 mean cycles (GAP + INSIDE; at least 50 ms, at most 1.5 s) after every command so that the "
    "threads are out of step again, dynamic and poll interleaved (the order alternates per repetition), all with `GRAFT_TRACE=1`. "
    "safe = time to checkpoint: from the start of the search for a safe moment to the check that found one (trace "
    "line \"safe\"; attaching and mapping the patch come before it, the commit and detach after); pause = longest "
    "all-threads stop (`pause_us`); hold = longest time one thread was kept waiting at an entry checkpoint (`hold_us`, counted while the other threads run; at most max(2 ms, the last stop and check) plus one wait); attempts = stops with a full check; arrivals = threads that reached a planted "
    "checkpoint. p50/p99 are nearest-rank over the successful applies (p99 of 5 samples is the maximum). "
    "ok = successful applies / tries; \"dyn/poll\" = ratio of the p50s; revert ok = successful reverts / tries "
    "(with their own --checkpoints mode).")


def rate_set(graft, bins, patch, names):
    reps = B.env_int("CP_REPS", 5)
    ns = [int(x) for x in env_list("RATE_THREADS", "4 16")]
    timeout_ms = B.env_int("RATE_TIMEOUT_MS", 2000)
    cells = [dict(set="rate", threads=n, gap_us=int(g), inside_us=int(i), kind="spin") for n in ns
             for i in env_list("RATE_INSIDE_US", "0 10 100") for g in env_list("RATE_GAPS_US", "1000 100 10 1 0")]
    rows, stops = [], []
    l0, t0 = B.loadavg(), time.time()
    for c in cells:
        run_cell(graft, bins, patch, c, reps, timeout_ms, rows, stops)
    l1 = B.loadavg()
    B.write_csv("cp_rate.csv", HEADER, rows)
    summary = summarise(rows, cells)
    B.write_csv("cp_rate_summary.csv", SUMMARY_HEADER, summary)
    md_rows = table(summary, lambda k, d: [k[1], k[2], k[3], d[19], d[20]])
    return "\n".join([
        "Run %s. " % B.now() + COMMON_TEXT % (", ".join(names), reps),
        "",
        "N = %s threads, spinning INSIDE_US inside the changed function, T = %d ms. calls/s = calls per second per "
        "thread, measured over 0.5 s before the first command; CPU = the target's CPU use then (100 = one core)."
        % (" and ".join(str(n) for n in ns), timeout_ms),
        "",
        B.md_table(["threads", "gap µs", "inside µs", "calls/s per thread", "target CPU %"] + TABLE_HEAD, md_rows),
        "",
        "Raw: `bench/results/cp_rate.csv` (one row per command), summary `bench/results/cp_rate_summary.csv`. "
        "Load average before/after: %s / %s; %.0f s." % (l0, l1, time.time() - t0),
    ])


def threads_set(graft, bins, patch, names):
    reps = B.env_int("CP_REPS", 5)
    timeout_ms = B.env_int("THREADS_TIMEOUT_MS", 5000)
    loads = [(int(x.split(":")[0]), x.split(":")[1]) for x in env_list("THREADS_LOADS", "10:spin 1000:sleep")]
    cells = [dict(set="threads", threads=int(n), gap_us=max(1000, int(n) * 1000 // 16), inside_us=i, kind=k)
             for i, k in loads for n in env_list("THREADS_N", "1 16 256 1024")]
    rows, stops = [], []
    l0, t0 = B.loadavg(), time.time()
    for c in cells:
        run_cell(graft, bins, patch, c, reps, timeout_ms, rows, stops)
    l1 = B.loadavg()
    B.write_csv("cp_threads.csv", HEADER, rows)
    summary = summarise(rows, cells)
    B.write_csv("cp_threads_summary.csv", SUMMARY_HEADER, summary)
    B.write_csv("cp_stops.csv", ["set", "threads", "gap_us", "inside_us", "inside_kind", "rep", "checkpoints", "op",
                                 "stop_index", "threads_seen", "stopped_us", "check_us"], stops)
    md_rows = table(summary, lambda k, d: [k[1], "%g" % (k[2] / 1000.0), "%d %s" % (k[3], k[4]), d[19], d[20]])
    # stop and check cost per thread, over every stop of every command of the cell
    cost, cost_md = [], []
    for c in cells:
        for cp in ("dynamic", "poll", "all"):
            sel = [s for s in stops if s[1] == c["threads"] and s[3] == c["inside_us"] and s[4] == c["kind"]
                   and (cp == "all" or s[6] == cp)]
            if not sel:
                continue
            st, ck = [s[10] for s in sel], [s[11] for s in sel]
            thr = B.pct([s[9] for s in sel], 50)
            s50, c50 = B.pct(st, 50), B.pct(ck, 50)
            cost.append([c["threads"], c["inside_us"], c["kind"], cp, thr, len(sel), s50, B.pct(st, 99), c50,
                         B.pct(ck, 99), "%.2f" % (s50 / thr), "%.2f" % (c50 / thr)])
            if cp == "all":
                cost_md.append([c["threads"], "%d %s" % (c["inside_us"], c["kind"]), thr, len(sel),
                                "%d / %d" % (s50, B.pct(st, 99)), "%d / %d" % (c50, B.pct(ck, 99)),
                                "%.1f" % (s50 / thr), "%.2f" % (c50 / thr)])
    B.write_csv("cp_stopcost_summary.csv", ["threads", "inside_us", "inside_kind", "checkpoints", "threads_seen",
                                            "stops", "stopped_us_p50", "stopped_us_p99", "check_us_p50",
                                            "check_us_p99", "stopped_us_per_thread_p50", "check_us_per_thread_p50"],
                cost)
    main = "\n".join([
        "Run %s. " % B.now() + COMMON_TEXT % (", ".join(names), reps),
        "",
        "N threads with gap max(1 ms, N/16 ms), so that the process makes at most 16,000 calls per second whatever N "
        "(as in the pause benchmark above), and two loads inside: 10 µs spinning (about 0.16 threads inside at any "
        "moment at 16 threads and more) and 1 ms blocked in nanosleep (about 16 threads inside at any moment from 16 "
        "threads up, half the time at 1 thread). T = %d ms." % timeout_ms,
        "",
        B.md_table(["threads", "gap ms", "inside µs", "calls/s per thread", "target CPU %"] + TABLE_HEAD, md_rows),
        "",
        "Raw: `bench/results/cp_threads.csv`, summary `bench/results/cp_threads_summary.csv`. "
        "Load average before/after: %s / %s; %.0f s." % (l0, l1, time.time() - t0),
    ])
    cost_text = "\n".join([
        "Same runs as the table above: every stop of every apply and revert (dynamic and poll) is one sample. "
        "stopped = µs from the start of the stop until every thread is stopped (trace line \"stopped\"); check = "
        "\"checked\" − \"stopped\", reading every thread's registers and stack and deciding whether it is safe "
        "(graft's replacement for a remote unwind). threads = as counted by graft (includes main).",
        "",
        B.md_table(["threads (N)", "inside µs", "threads seen", "stops", "stopped µs p50 / p99", "check µs p50 / p99",
                    "stop µs per thread (p50)", "check µs per thread (p50)"], cost_md),
        "",
        "Raw: `bench/results/cp_stops.csv` (one row per stop), summary `bench/results/cp_stopcost_summary.csv` "
        "(also split by dynamic / poll).",
    ])
    return main, cost_text


SECTIONS = [
    ("cp-rate", "Time to checkpoint against the call rate (issue 4)"),
    ("cp-threads", "Time to checkpoint against threads, to 1024 (issue 4)"),
    ("cp-stopcost", "Stop and check cost per thread, to 1024 threads (GRAFT_TRACE)"),
]


def splice(texts):
    with open(B.DOC) as f:
        doc = f.read()
    for name, title in SECTIONS:
        if name not in texts:
            continue
        begin, end = "<!-- generated:%s begin -->" % name, "<!-- generated:%s end -->" % name
        body = "%s\n%s\n%s" % (begin, texts[name], end)
        if begin in doc and end in doc:
            i, k = doc.index(begin), doc.index(end) + len(end)
            doc = doc[:i] + body + doc[k:]
        else:
            doc = doc.rstrip("\n") + "\n\n### %s\n\n%s\n" % (title, body)
    with open(B.DOC, "w") as f:
        f.write(doc)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    build_dir = os.path.abspath(sys.argv[1])
    which = sys.argv[2:] or ["rate", "threads"]
    for w in which:
        if w not in ("rate", "threads"):
            print("checkpoint_bench: unknown set %r (rate, threads)" % w, file=sys.stderr)
            return 2
    work = tempfile.mkdtemp(prefix="graft-cp-")
    # a private copy of the tools, so that a rebuild meanwhile does not mix builds
    for sub, names in (("bin", ("graft", "graft-cc")), ("lib", ("graft-pass.so",)), ("include/graft", ("graft.h",))):
        os.makedirs(os.path.join(work, "tools", sub))
        for nm in names:
            shutil.copy2(os.path.join(build_dir, sub, nm), os.path.join(work, "tools", sub, nm))
    tools = {t: os.path.join(work, "tools", "bin", t) for t in ("graft", "graft-cc")}
    os.environ["GRAFT_STORE"] = os.path.join(work, "store")
    m = B.machine()
    B.log("machine: %s; load %s; work dir %s" % (B.machine_line(m), B.loadavg(), work))
    try:
        bins, patch, names = build(tools, work)
        B.log("patch replaces: %s" % ", ".join(names))
        for w in which:
            t0 = time.time()
            if w == "rate":
                texts = {"cp-rate": rate_set(tools["graft"], bins, patch, names) + "\n\n" + B.machine_line(m)}
            else:
                main_text, cost_text = threads_set(tools["graft"], bins, patch, names)
                texts = {"cp-threads": main_text + "\n\n" + B.machine_line(m),
                         "cp-stopcost": cost_text + "\n\n" + B.machine_line(m)}
            splice(texts)
            B.log("%s: done in %.0f s" % (w, time.time() - t0))
    finally:
        B.cleanup()
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        B.cleanup()
        sys.exit(130)
