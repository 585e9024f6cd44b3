#!/usr/bin/env python3
"""graft benchmarks, second set (standard library only):

    evolution_bench.py BUILD_DIR [evolution] [patchsize] [checkpoints] [trace]   (default: all)
    (also: bench/run.sh BUILD_DIR evolution [patchsize] [checkpoints] [trace])

  evolution    real evolution steps of the examples (kvstore v1->v2, v2->v3 under
               redis-benchmark; httpd v1->v2, v2->v3 under wrk, both clients in
               the background): EVO_REPS x (apply, revert) on one server per step.
  patchsize    bench/gen_target.py 1000 M (4 threads, 1 ms sleep), patches that
               change M = 1, 10, 100, 1000 functions: SIZE_REPS x (apply, revert).
  checkpoints  tests/programs/checkpoints (trap 4, churn 4, churn 16, busy 16,
               busy 256) with --checkpoints dynamic and poll, --timeout 3000:
               CP_REPS x (apply, then revert if it applied).
  trace        GRAFT_TRACE=1 per-stop timings (stopped / checked µs) divided by
               threads, busy mode and the gen_target sleepers at 1, 16, 256 threads.

Writes bench/results/{evolution,patchsize,checkpoints,trace_cost}[_summary].csv and
regenerates the <!-- generated:evo-* --> sections of docs/BENCHMARKS.md (appended
at the end when missing). Processes are started here and ended by their PID only.
"""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench as B  # noqa: E402  (helpers: run, check, start, stop, read_line, pct, fmt, md_table, write_csv, ...)

RESULTS = B.RESULTS
DOC = B.DOC


def env_int(name, default):
    return B.env_int(name, default)


def graft_json(cmd, env=None):
    """Runs a graft command with --json; returns (dict or None, error text, stderr)."""
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired as e:
        return None, "timeout: %s" % e, ""
    j = None
    try:
        j = json.loads(r.stdout) if r.stdout.strip() else None
    except ValueError:
        j = None
    if r.returncode != 0 or not j or not j.get("ok", True):
        err = (r.stderr.strip() or r.stdout.strip()).replace("\n", " ")
        return None, err, r.stderr
    return j, None, r.stderr


def summ(vals):
    return B.pct(vals, 50), B.pct(vals, 99)


# ------------------------------------------------------------------ evolution

def build_examples(work, tools):
    out = {}
    for ex in ("kvstore", "httpd"):
        d = os.path.join(work, ex)
        shutil.copytree(os.path.join(ROOT, "examples", ex), d)
        B.check(["make", "-C", d, "clean"])
        B.check(["make", "-C", d, "CC=" + tools["graft-cc"], "v1", "v2", "v3"])
        out[ex] = d
    return out


def evolution(tools, work):
    reps = env_int("EVO_REPS", 20)
    graft = tools["graft"]
    dirs = build_examples(work, tools)
    www = os.path.join(work, "www")
    os.makedirs(www)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("<!doctype html><title>graft</title><p>index</p>\n")
    rows, fails, notes = [], [], []
    for ex, steps in (("kvstore", (("v1", "v2"), ("v2", "v3"))), ("httpd", (("v1", "v2"), ("v2", "v3")))):
        for a, b in steps:
            d = dirs[ex]
            patch = os.path.join(work, "%s-%s-%s.graft" % (ex, a, b))
            r = B.run([graft, "diff", os.path.join(d, a, ex), os.path.join(d, b, ex), "-o", patch])
            if r.returncode != 0:
                fails.append([ex, "%s->%s" % (a, b), -1, "diff", r.stderr.strip()])
                B.log("evolution: %s %s->%s: diff failed: %s" % (ex, a, b, r.stderr.strip()))
                continue
            nfun = len(json.loads(B.check([graft, "info", patch, "--json"]).stdout).get("functions", []))
            cmd = [os.path.join(d, a, ex), "--port", "0"] + (["--root", www] if ex == "httpd" else [])
            srv = B.start(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            cli = None
            try:
                port = int(B.read_line(srv, r"ready on port (\d+)", 20).group(1))
                if ex == "kvstore":
                    ccmd = ["redis-benchmark", "-p", str(port), "-c", "2", "-n", "100000000", "-t", "set,get",
                            "-r", "1000", "-q", "-l"]
                else:
                    ccmd = ["wrk", "-t", "1", "-c", "2", "-d", "600s", "http://127.0.0.1:%d/index.html" % port]
                cli = B.start(ccmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
                c0, w0 = B.proc_cpu_s(srv.pid), time.time()
                ok = 0
                for rep in range(reps):
                    ap, err, _ = graft_json([graft, "apply", str(srv.pid), patch, "--json"])
                    if ap is None:
                        fails.append([ex, "%s->%s" % (a, b), rep, "apply", err])
                        continue
                    rv, err, _ = graft_json([graft, "revert", str(srv.pid), "--json"])
                    if rv is None:
                        fails.append([ex, "%s->%s" % (a, b), rep, "revert", err])
                        break
                    ok += 1
                    load = 100.0 * (B.proc_cpu_s(srv.pid) - c0) / max(1e-6, time.time() - w0)
                    for op, j in (("apply", ap), ("revert", rv)):
                        rows.append([ex, "%s->%s" % (a, b), rep, op, j.get("threads"), nfun, j.get("attempts", ""),
                                     j.get("arrivals", ""), j["pause_us"], j.get("prepare_us", ""),
                                     "%.3f" % j["total_ms"], "%.0f" % load])
                alive = srv.poll() is None and cli.poll() is None
                notes.append("%s %s->%s: %d/%d pairs, server and client %s afterwards" %
                             (ex, a, b, ok, reps, "alive" if alive else "NOT alive"))
                B.log("evolution: " + notes[-1])
            finally:
                if cli:
                    B.stop(cli, signal.SIGINT)
                B.stop(srv, signal.SIGKILL)
    B.write_csv("evolution.csv", ["example", "step", "rep", "op", "threads", "patch_functions", "attempts",
                                  "arrivals", "pause_us", "prepare_us", "total_ms", "server_cpu_pct"], rows)
    B.write_csv("evolution_failures.csv", ["example", "step", "rep", "op", "error"], fails)
    summary, table = [], []
    for key in sorted({(r[0], r[1]) for r in rows}, key=lambda k: (k[0] != "kvstore", k[1])):
        line = list(key)
        sel = [r for r in rows if (r[0], r[1]) == key]
        nfun, thr = sel[0][5], sel[0][4]
        trow = ["%s %s" % key, nfun, thr, len(sel) // 2]
        for op in ("apply", "revert"):
            p = [r[8] / 1000.0 for r in sel if r[3] == op]
            t = [float(r[10]) for r in sel if r[3] == op]
            line += ["%.3f" % x for x in summ(p) + summ(t)]
            trow += ["%s / %s" % (B.fmt(summ(p)[0]), B.fmt(summ(p)[1])), "%s / %s" % (B.fmt(summ(t)[0]), B.fmt(summ(t)[1]))]
        att = max(int(r[6]) for r in sel if r[3] == "apply")
        summary.append(line + [len(sel) // 2, nfun, thr, att, sel[-1][11]])
        trow += [att, sel[-1][11]]
        table.append(trow)
    B.write_csv("evolution_summary.csv", ["example", "step", "apply_pause_ms_p50", "apply_pause_ms_p99",
                                          "apply_total_ms_p50", "apply_total_ms_p99", "revert_pause_ms_p50",
                                          "revert_pause_ms_p99", "revert_total_ms_p50", "revert_total_ms_p99",
                                          "pairs", "patch_functions", "threads", "apply_attempts_max",
                                          "server_cpu_pct"], summary)
    text = "\n".join([
        "Run %s, %d apply+revert pairs per step on one server per step, client in the background "
        "(kvstore: `redis-benchmark -c 2 -t set,get -r 1000 -l`; httpd: `wrk -t 1 -c 2` on a 50-byte file; "
        "closed loop, not rate-limited: \"light\" means 2 connections). Patches: `graft diff vA/X vB/X` of graft-cc "
        "(balanced) builds. p99 of 20 samples is the maximum." % (B.now(), reps),
        "",
        B.md_table(["step", "patch functions", "threads", "pairs", "apply pause ms p50 / p99",
                    "apply total ms p50 / p99", "revert pause ms p50 / p99", "revert total ms p50 / p99",
                    "apply attempts max", "server CPU %"], table),
        "",
        "; ".join(notes) + ". Failures: %d (`bench/results/evolution_failures.csv`)%s." % (
            len(fails), "" if not fails else ": " + "; ".join("%s %s rep %s %s: %s" % tuple(f) for f in fails[:4])),
        "Raw: `bench/results/evolution.csv`, summary `bench/results/evolution_summary.csv`.",
    ])
    return text


# ------------------------------------------------------------------ patch size

def patchsize(tools, work):
    reps = env_int("SIZE_REPS", 10)
    nfun, threads, sleep_us = 1000, 4, 1000
    graft, gcc = tools["graft"], tools["graft-cc"]
    d = os.path.join(work, "size")
    bins = {}
    changes = (1, 10, 100, 1000)
    for mm in (0,) + changes:
        vd = os.path.join(d, "v%d" % mm)
        os.makedirs(vd)
        B.check([sys.executable, os.path.join(HERE, "gen_target.py"), str(nfun), str(mm), os.path.join(vd, "target.c")])
        B.check([gcc, "-O2", "-pthread", "-o", "target", "target.c"], cwd=vd)
        bins[mm] = os.path.join(vd, "target")
    patches, nfs = {}, {}
    for mm in changes:
        patches[mm] = os.path.join(d, "p%d.graft" % mm)
        B.check([graft, "diff", bins[0], bins[mm], "-o", patches[mm]])
        nfs[mm] = len(json.loads(B.check([graft, "info", patches[mm], "--json"]).stdout).get("functions", []))
        patches[mm + 0.5] = os.path.getsize(patches[mm])
    rows, fails = [], []
    p = B.start([bins[0], str(threads), str(sleep_us)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        B.read_line(p, r"ready (\d+)", 60)
        time.sleep(0.3)
        # interleaved: each repetition goes through every patch size in turn
        for rep in range(reps):
            for mm in changes:
                ap, err, _ = graft_json([graft, "apply", str(p.pid), patches[mm], "--json"])
                if ap is None:
                    fails.append([mm, rep, "apply", err])
                    continue
                rv, err, _ = graft_json([graft, "revert", str(p.pid), "--json"])
                if rv is None:
                    fails.append([mm, rep, "revert", err])
                    raise RuntimeError("patchsize: cannot revert: %s" % err)
                for op, j in (("apply", ap), ("revert", rv)):
                    rows.append([mm, nfs[mm], patches[mm + 0.5], rep, op, j["threads"], j.get("attempts", ""),
                                 j["pause_us"], j.get("prepare_us", ""), "%.3f" % j["total_ms"]])
    finally:
        B.stop(p, signal.SIGKILL)
    B.write_csv("patchsize.csv", ["changed", "patch_functions", "patch_bytes", "rep", "op", "threads", "attempts",
                                  "pause_us", "prepare_us", "total_ms"], rows)
    B.write_csv("patchsize_failures.csv", ["changed", "rep", "op", "error"], fails)
    summary, table = [], []
    for mm in changes:
        sel = [r for r in rows if r[0] == mm]
        if not sel:
            continue
        line, trow = [mm, nfs[mm], patches[mm + 0.5], len(sel) // 2], [mm, nfs[mm], "%.0f" % (patches[mm + 0.5] / 1024.0), len(sel) // 2]
        for op in ("apply", "revert"):
            pz = [r[7] / 1000.0 for r in sel if r[4] == op]
            t = [float(r[9]) for r in sel if r[4] == op]
            line += ["%.3f" % x for x in summ(pz) + summ(t)]
            trow += ["%s / %s" % (B.fmt(summ(pz)[0]), B.fmt(summ(pz)[1])), "%s / %s" % (B.fmt(summ(t)[0]), B.fmt(summ(t)[1]))]
        pr = [r[8] / 1000.0 for r in sel if r[4] == "apply"]
        line += ["%.3f" % x for x in summ(pr)]
        summary.append(line)
        table.append(trow)
    B.write_csv("patchsize_summary.csv", ["changed", "patch_functions", "patch_bytes", "pairs", "apply_pause_ms_p50",
                                          "apply_pause_ms_p99", "apply_total_ms_p50", "apply_total_ms_p99",
                                          "revert_pause_ms_p50", "revert_pause_ms_p99", "revert_total_ms_p50",
                                          "revert_total_ms_p99", "apply_prepare_ms_p50", "apply_prepare_ms_p99"], summary)
    return "\n".join([
        "Run %s. Target `bench/gen_target.py 1000 M`, %d worker threads (each calls all 1000 functions, then sleeps "
        "%d µs), one process for the whole cell set; %d repetitions, interleaved over the patch sizes "
        "(each repetition: apply+revert of 1, 10, 100, 1000 in turn). p99 of 10 samples is the maximum."
        % (B.now(), threads, sleep_us, reps),
        "",
        B.md_table(["changed functions", "patch functions", "patch KiB", "pairs", "apply pause ms p50 / p99",
                    "apply total ms p50 / p99", "revert pause ms p50 / p99", "revert total ms p50 / p99"], table),
        "",
        "Failures: %d. Raw: `bench/results/patchsize.csv`, summary `bench/results/patchsize_summary.csv`." % len(fails),
    ])


# ------------------------------------------------------------------ checkpoints

def build_cp(tools, work, policy="balanced"):
    d = os.path.join(work, "cp" if policy == "balanced" else "cp-" + policy)
    bins = {}
    for v in ("v1", "v2"):
        vd = os.path.join(d, v)
        os.makedirs(vd)
        shutil.copy(os.path.join(ROOT, "tests", "programs", "checkpoints", v, "main.c"), vd)
        B.check([tools["graft-cc"], "--graft-policy=" + policy, "-O2", "-pthread", "main.c", "-o", "prog"], cwd=vd)
        bins[v] = os.path.join(vd, "prog")
    patch = os.path.join(d, "p.graft")
    B.check([tools["graft"], "diff", bins["v1"], bins["v2"], "-o", patch])
    return bins, patch


def start_cp(binary, mode, n):
    p = B.start([binary, mode, str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    B.read_line(p, r"ready (\d+)", 60)
    time.sleep(0.2)
    return p


def ask_version(p):
    os.write(p.stdin.fileno(), b"x\n")
    m = B.read_line(p, r"(\d) \d\n", 10)
    return int(m.group(1))


def checkpoints(tools, work):
    reps = env_int("CP_REPS", 5)
    graft = tools["graft"]
    policies = os.environ.get("CP_POLICIES", "balanced strict").split()
    built = {pol: build_cp(tools, work, pol) for pol in policies}
    cells = [("trap", 4), ("churn", 4), ("churn", 16), ("busy", 16), ("busy", 256)]
    rows, wrong = [], []
    for pol, mode, n, cp in [(pol, mode, n, cp) for pol in policies for mode, n in cells for cp in ("dynamic", "poll")]:
        bins, patch = built[pol]
        if True:
            p = start_cp(bins["v1"], mode, n)
            try:
                for rep in range(reps):
                    ap, err, _ = graft_json([graft, "apply", str(p.pid), patch, "--json", "--checkpoints", cp,
                                             "--timeout", "3000"])
                    if ap is None:
                        rows.append([pol + " " + mode, n, cp, rep, "apply", 0, "", "", "", "", "", "", err[:200]])
                        continue
                    v = ask_version(p)
                    if v != 2:
                        wrong.append("%s %s %d %s rep %d: version %d after apply" % (pol, mode, n, cp, rep, v))
                    rows.append([pol + " " + mode, n, cp, rep, "apply", 1, ap["threads"], ap.get("attempts", ""),
                                 ap.get("arrivals", ""), ap["pause_us"], ap.get("hold_us", ""),
                                 "%.3f" % ap["total_ms"], ""])
                    rv, err, _ = graft_json([graft, "revert", str(p.pid), "--json", "--timeout", "3000"])
                    if rv is None:
                        rows.append([pol + " " + mode, n, cp, rep, "revert", 0, "", "", "", "", "", "", err[:200]])
                        B.log("checkpoints: %s %d %s: revert failed (%s): cell abandoned" % (mode, n, cp, err))
                        break
                    rows.append([pol + " " + mode, n, cp, rep, "revert", 1, rv["threads"], rv.get("attempts", ""),
                                 rv.get("arrivals", ""), rv["pause_us"], rv.get("hold_us", ""),
                                 "%.3f" % rv["total_ms"], ""])
            finally:
                B.stop(p, signal.SIGKILL)
            B.log("checkpoints: %s %s %d %s done" % (pol, mode, n, cp))
    B.write_csv("checkpoints.csv", ["policy_mode", "n", "checkpoints", "rep", "op", "ok", "threads", "attempts", "arrivals",
                                    "pause_us", "hold_us", "total_ms", "error"], rows)
    summary, table = [], []
    for mode, n in [(pol + " " + mo, n) for pol in policies for mo, n in cells]:
        for cp in ("dynamic", "poll"):
            for op in ("apply", "revert"):
                sel = [r for r in rows if r[:3] == [mode, n, cp] and r[4] == op]
                good = [r for r in sel if r[5] == 1]
                tot = [float(r[11]) for r in good]
                pz = [r[9] / 1000.0 for r in good]
                att = [int(r[7]) for r in good if r[7] != ""]
                arr = [int(r[8]) for r in good if r[8] != ""]
                s = [mode, n, cp, op, len(good), len(sel)]
                s += ["%.3f" % x for x in summ(tot) + summ(pz)] if good else ["", "", "", ""]
                s += [max(att) if att else "", "%.1f" % (sum(arr) / len(arr)) if arr else "", max(arr) if arr else ""]
                summary.append(s)
                err = next((r[12] for r in sel if r[5] == 0), "")
                table.append(["%s %d" % (mode, n), cp, op, "%d/%d" % (len(good), len(sel)),
                              "%s / %s" % (B.fmt(summ(tot)[0]), B.fmt(summ(tot)[1])) if good else "n/a",
                              "%s / %s" % (B.fmt(summ(pz)[0]), B.fmt(summ(pz)[1])) if good else "n/a",
                              "%s" % (max(att) if att else "n/a"),
                              ("%.1f / %d" % (sum(arr) / len(arr), max(arr))) if arr else "n/a",
                              err[:90].replace("|", "/")])
    B.write_csv("checkpoints_summary.csv", ["policy_mode", "n", "checkpoints", "op", "ok", "tries", "total_ms_p50",
                                            "total_ms_p99", "pause_ms_p50", "pause_ms_p99", "attempts_max",
                                            "arrivals_mean", "arrivals_max"], summary)
    return "\n".join([
        "Run %s. Target `tests/programs/checkpoints/v1` (graft-cc -O2, policy balanced (the default) and "
        "strict), patch v1->v2 (changed(), changed_timed() of the rate mode, version()); "
        "one process per (mode, checkpoints) cell, %d repetitions of `graft apply PID p.graft --json "
        "--checkpoints X --timeout 3000`, then (if it applied) a version check over stdin and "
        "`graft revert PID --json --timeout 3000` (revert has no --checkpoints option: its own default). "
        "total = time to a safe moment and the commit (`total_ms`); p99 of 5 samples is the maximum." % (B.now(), reps),
        "",
        B.md_table(["policy, mode", "checkpoints", "op", "ok", "total ms p50 / p99", "pause ms p50 / p99", "attempts max",
                    "arrivals mean / max", "first error"], table),
        "",
        "Version answered by the target after apply was 2 every time%s." % (
            "" if not wrong else " except: " + "; ".join(wrong)),
        "Raw: `bench/results/checkpoints.csv`, summary `bench/results/checkpoints_summary.csv`.",
    ])


# ------------------------------------------------------------------ trace cost

def trace_cost(tools, work):
    reps = env_int("TRACE_REPS", 5)
    graft = tools["graft"]
    bins, patch = build_cp(tools, os.path.join(work, "tr")) if not os.path.exists(os.path.join(work, "cp")) \
        else ({"v1": os.path.join(work, "cp", "v1", "prog")}, os.path.join(work, "cp", "p.graft"))
    # the basic sleepers: gen_target.py 256 functions, 1 changed
    sd = os.path.join(work, "trs")
    for mm in (0, 1):
        vd = os.path.join(sd, "v%d" % mm)
        os.makedirs(vd)
        B.check([sys.executable, os.path.join(HERE, "gen_target.py"), "256", str(mm), os.path.join(vd, "target.c")])
        B.check([tools["graft-cc"], "-O2", "-pthread", "-o", "target", "target.c"], cwd=vd)
    spatch = os.path.join(sd, "p1.graft")
    B.check([graft, "diff", os.path.join(sd, "v0", "target"), os.path.join(sd, "v1", "target"), "-o", spatch])
    env = dict(os.environ, GRAFT_TRACE="1")
    rows = []
    for kind in ("busy", "sleepers"):
        for n in (1, 16, 256):
            if kind == "busy":
                p = start_cp(bins["v1"], "busy", n)
                pt = patch
            else:
                p = B.start([os.path.join(sd, "v0", "target"), str(n), str(max(1000, n * 1000 // 16))],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                B.read_line(p, r"ready (\d+)", 60)
                time.sleep(0.3)
                pt = spatch
            try:
                for rep in range(reps):
                    for op, cmd in (("apply", [graft, "apply", str(p.pid), pt, "--json"]),
                                    ("revert", [graft, "revert", str(p.pid), "--json"])):
                        j, err, stderr = graft_json(cmd, env=env)
                        if j is None:
                            B.log("trace: %s %d %s failed: %s" % (kind, n, op, err))
                            break
                        stops = re.findall(r"trace: stopped\s+(\d+) us\s*\n.*?trace: checked\s+(\d+) us", stderr, re.S)
                        for i, (s, c) in enumerate(stops):
                            s, c = int(s), int(c)
                            rows.append([kind, n, rep, op, i, j["threads"], s, c - s,
                                         "%.2f" % (s / j["threads"]), "%.2f" % ((c - s) / j["threads"])])
            finally:
                B.stop(p, signal.SIGKILL)
            B.log("trace: %s %d done" % (kind, n))
    B.write_csv("trace_cost.csv", ["kind", "n", "rep", "op", "stop_index", "threads", "stopped_us", "check_us",
                                   "stopped_us_per_thread", "check_us_per_thread"], rows)
    table, summary = [], []
    for kind in ("busy", "sleepers"):
        for n in (1, 16, 256):
            sel = [r for r in rows if r[0] == kind and r[1] == n]
            if not sel:
                continue
            st = [r[6] for r in sel]
            ck = [r[7] for r in sel]
            thr = sel[0][5]
            s50, c50 = B.pct(st, 50), B.pct(ck, 50)
            summary.append([kind, n, thr, len(sel), s50, B.pct(st, 99), c50, B.pct(ck, 99),
                            "%.2f" % (s50 / thr), "%.2f" % (c50 / thr)])
            table.append(["%s %d" % (kind, n), thr, len(sel), "%d / %d" % (s50, B.pct(st, 99)),
                          "%d / %d" % (c50, B.pct(ck, 99)), "%.1f" % (s50 / thr), "%.2f" % (c50 / thr)])
    B.write_csv("trace_cost_summary.csv", ["kind", "n", "threads", "stops", "stopped_us_p50", "stopped_us_p99",
                                           "check_us_p50", "check_us_p99", "stopped_us_per_thread_p50",
                                           "check_us_per_thread_p50"], summary)
    return "\n".join([
        "Run %s. `GRAFT_TRACE=1 graft apply|revert ... --json`, %d apply+revert pairs per row; every stop of every "
        "command is one sample (\"stopped\" = µs from the start of the stop until all threads are stopped; "
        "check = \"checked\" − \"stopped\", the stack/PC check of all threads). busy N = checkpoints target "
        "(N spinning threads + main); sleepers N = `gen_target.py 256 M` with N threads sleeping "
        "max(1, N/16) ms between rounds. threads = as counted by graft (includes main)." % (B.now(), reps),
        "",
        B.md_table(["target", "threads", "stops", "stopped µs p50 / p99", "check µs p50 / p99",
                    "stop µs per thread (p50)", "check µs per thread (p50)"], table),
        "",
        "Raw: `bench/results/trace_cost.csv`, summary `bench/results/trace_cost_summary.csv`.",
    ])


# ------------------------------------------------------------------ doc

SECTIONS = [
    ("evo-evolution", "Evolution steps of the examples under load (apply and revert)"),
    ("evo-patchsize", "Pause and total time against patch size (1000-function target)"),
    ("evo-checkpoints", "Checkpoints: dynamic against poll (issue 4)"),
    ("evo-trace", "Per-thread cost of a stop and of the check (GRAFT_TRACE)"),
]


def splice(texts):
    with open(DOC) as f:
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
            doc = doc.rstrip("\n") + "\n\n## %s\n\n%s\n" % (title, body)
    with open(DOC, "w") as f:
        f.write(doc)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    build = os.path.abspath(sys.argv[1])
    tools = {t: os.path.join(build, "bin", t) for t in ("graft", "graft-cc")}
    which = sys.argv[2:] or ["evolution", "patchsize", "checkpoints", "trace"]
    work = tempfile.mkdtemp(prefix="graft-evo-")
    os.environ["GRAFT_STORE"] = os.path.join(work, "store")
    m = B.machine()
    B.log("machine: %s; load %s; work dir %s" % (B.machine_line(m), B.loadavg(), work))
    fns = {"evolution": ("evo-evolution", evolution), "patchsize": ("evo-patchsize", patchsize),
           "checkpoints": ("evo-checkpoints", checkpoints), "trace": ("evo-trace", trace_cost)}
    texts = {}
    try:
        for w in which:
            key, fn = fns[w]
            l0 = B.loadavg()
            t0 = time.time()
            body = fn(tools, work)
            texts[key] = body + "\n\n" + B.machine_line(m) + " Load average before/after: %s / %s; %.0f s." % (
                l0, B.loadavg(), time.time() - t0)
            splice({key: texts[key]})
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
