#!/usr/bin/env python3
"""graft benchmarks (standard library only). Run through bench/run.sh BUILD_DIR.

    bench.py BUILD_DIR [cpu] [kv] [pause]      (default: all three)

Writes CSV files to bench/results/ and regenerates the marked sections of
docs/BENCHMARKS.md (text outside the markers is kept). Knobs (environment):
    CPU_REPS=7        interleaved repetitions of the CPU-bound program
    CPU_ROUNDS=200    its work per run (about 1.4 s with clang -O2 here)
    KV_ROUNDS=3       interleaved rounds of redis-benchmark without pipelining
    KV_ROUNDS_P16=7   ... and with -P 16
    CPU_BUDGET_S=150 KV_BUDGET_S=330 PAUSE_BUDGET_S=200 KV_RUN_TIMEOUT_S=120
                      time bounds: further repetitions/rounds/cells are skipped
    KV_REQUESTS=100000
    PAUSE_REPS=20     apply+revert pairs per (threads, functions) cell
    PAUSE_THREADS="1 4 16 64 256 1024"
Processes are started by this script and ended by their PID only.
"""
import csv
import datetime
import json
import math
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
DOC = os.path.join(ROOT, "docs", "BENCHMARKS.md")
CLANG = os.environ.get("BENCH_CLANG", "clang-14")

started_procs = []  # Popen objects we started: ended by PID in cleanup()


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def env_int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def check(cmd, **kw):
    r = run(cmd, **kw)
    if r.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s%s" % (r.returncode, " ".join(cmd), r.stdout, r.stderr))
    return r


def shq(cmd):
    out = []
    for a in cmd:
        a = str(a)
        out.append(a if re.fullmatch(r"[A-Za-z0-9_./=,:+-]+", a) else "'" + a.replace("'", "'\\''") + "'")
    return " ".join(out)


def start(cmd, **kw):
    p = subprocess.Popen(cmd, **kw)
    started_procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    if p in started_procs:
        started_procs.remove(p)


def cleanup():
    for p in list(started_procs):
        stop(p, signal.SIGKILL)


def read_line(p, pattern, timeout):
    """Reads p.stdout until a line matches pattern (a regex); returns the match."""
    deadline = time.time() + timeout
    buf = ""
    fd = p.stdout.fileno()
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            chunk = os.read(fd, 4096).decode(errors="replace")
            if not chunk:
                break
            buf += chunk
            m = re.search(pattern, buf)
            if m:
                return m
        elif p.poll() is not None:
            break
    raise RuntimeError("no line matching %r from %s (got %r)" % (pattern, p.args, buf))


def pct(values, q):
    """Nearest-rank percentile (q in 0..100): p99 of 20 samples is their maximum."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(1, math.ceil(q / 100.0 * len(v)))
    return v[k - 1]


def fmt(x, digits=2):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, int):
        return str(x)
    return "%.*f" % (digits, x)


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def write_csv(name, header, rows):
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).stdout.strip() or "unknown"
    dirty = run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "src", "include"]).stdout.strip()
    clang = run([CLANG, "--version"]).stdout.splitlines()
    return {
        "nproc": os.cpu_count(),
        "model": model,
        "kernel": platform.release(),
        "clang": clang[0] if clang else CLANG,
        "commit": commit + (" (src/include modified in the working tree)" if dirty else ""),
    }


def machine_line(m):
    return ("Machine: %s CPUs (nproc), %s, Linux %s, %s; graft at %s. "
            "The machine was shared with other agents building and testing at the same time."
            % (m["nproc"], m["model"], m["kernel"], m["clang"], m["commit"]))


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------- cpu

def perf_works():
    if not shutil.which("perf"):
        return False
    r = run(["perf", "stat", "-x,", "-e", "instructions:u", "true"])
    return r.returncode == 0 and re.search(r"^\d+,", r.stderr, re.M) is not None


def parse_perf(path):
    out = {}
    with open(path) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) >= 3 and parts[0].strip().isdigit():
                out[parts[2].split(":")[0]] = int(parts[0])
    return out


def timed(cmd):
    """Runs cmd, returns (wall seconds, user+sys CPU seconds of it and its children, stdout)."""
    t0 = time.perf_counter()
    p = start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    started_procs.remove(p)
    if p.returncode != 0:
        raise RuntimeError("%s failed: %s" % (shq(cmd), err.decode(errors="replace")))
    return wall, out.decode()


def bench_cpu(tools, work, m):
    reps = env_int("CPU_REPS", 7)
    rounds = env_int("CPU_ROUNDS", 200)
    src = sorted(os.path.join(HERE, "cpu", f) for f in os.listdir(os.path.join(HERE, "cpu")) if f.endswith(".c"))
    d = os.path.join(work, "cpu")
    os.makedirs(d)
    variants = [
        ("plain", [CLANG, "-O2"]),
        ("strict", [tools["graft-cc"], "--graft-policy=strict", "-O2"]),
        ("fast", [tools["graft-cc"], "--graft-policy=fast", "-O2"]),
    ]
    builds = {}
    for name, cc in variants:
        out = os.path.join(d, "cpuwork-" + name)
        cmd = cc + ["-o", out] + src
        check(cmd)
        text = int(check(["size", out]).stdout.splitlines()[1].split()[0])
        builds[name] = {"bin": out, "cmd": cmd, "text": text}
    use_perf = perf_works()
    log("cpu: %d interleaved repetitions of %d rounds; perf counters: %s" % (reps, rounds, use_perf))
    rows = []
    sums = {}
    load0 = loadavg()
    budget = env_int("CPU_BUDGET_S", 150)
    t_start = time.time()
    done_reps = 0
    for rep in range(reps):
        if rep >= 3 and time.time() - t_start > budget:
            log("cpu: time budget of %d s used up after %d repetitions" % (budget, rep))
            break
        done_reps += 1
        for name, _ in variants:
            b = builds[name]
            stat = os.path.join(d, "perf-%s-%d.txt" % (name, rep))
            cmd = [b["bin"], str(rounds)]
            if use_perf:
                cmd = ["perf", "stat", "-x,", "-e", "instructions:u,cycles:u", "-o", stat, "--"] + cmd
            r0 = os.times()
            wall, out = timed(cmd)
            r1 = os.times()
            cpu = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
            sums[name] = out.strip().split()[-1]
            counters = parse_perf(stat) if use_perf else {}
            rows.append([rep, name, "%.4f" % wall, "%.4f" % cpu, counters.get("instructions", ""), counters.get("cycles", "")])
    load1 = loadavg()
    if len(set(sums.values())) != 1:
        raise RuntimeError("cpu: the variants print different checksums: %s" % sums)
    grind = {}
    if not use_perf and shutil.which("valgrind"):
        for name, _ in variants:  # deterministic, but slow: a few rounds only
            r = check(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", builds[name]["bin"], "5"])
            mm = re.search(r"Collected : (\d+)", r.stderr)
            grind[name] = int(mm.group(1)) if mm else None
    write_csv("cpu.csv", ["rep", "variant", "wall_s", "cpu_s", "instructions_u", "cycles_u"], rows)

    def col(name, i):
        return [float(r[i]) for r in rows if r[1] == name and r[i] != ""]

    base = {k: statistics.median(col("plain", i)) if col("plain", i) else None for k, i in (("wall", 2), ("cpu", 3), ("ins", 4), ("cyc", 5))}
    summary, table = [], []
    for name, _ in variants:
        w, c, ins, cyc = (statistics.median(col(name, i)) if col(name, i) else None for i in (2, 3, 4, 5))
        if grind:
            ins = grind.get(name)
            base["ins"] = grind.get("plain")
        ratio = lambda x, k: (x / base[k]) if (x is not None and base[k]) else None
        ws = col(name, 2)
        summary.append([name, "%.4f" % w, "%.4f" % min(ws), "%.4f" % max(ws), "%.4f" % c, ins or "", cyc or "",
                        "%.4f" % ratio(w, "wall"), "%.4f" % ratio(c, "cpu"),
                        "%.4f" % ratio(ins, "ins") if ins else "", "%.4f" % ratio(cyc, "cyc") if cyc else "",
                        builds[name]["text"]])
        table.append([name, fmt(w, 3), "%s-%s" % (fmt(min(ws), 3), fmt(max(ws), 3)), fmt(ratio(w, "wall"), 3),
                      fmt(ratio(c, "cpu"), 3), "%.3g" % ins if ins else "n/a", fmt(ratio(ins, "ins"), 3),
                      fmt(ratio(cyc, "cyc"), 3), builds[name]["text"], fmt(builds[name]["text"] / builds["plain"]["text"], 3)])
    write_csv("cpu_summary.csv", ["variant", "median_wall_s", "min_wall_s", "max_wall_s", "median_cpu_s", "instructions_u",
                                  "median_cycles_u", "wall_ratio", "cpu_ratio", "instructions_ratio", "cycles_ratio", "text_bytes"], summary)
    spread = max(((max(col(nm, 4)) - min(col(nm, 4))) / statistics.median(col(nm, 4)) for nm, _ in variants
                  if col(nm, 4)), default=None)
    counter = ("`perf stat -x, -e instructions:u,cycles:u -o FILE -- BIN %d` (user-mode counts; a build's instruction "
               "count varied by at most %.2g%% between its repetitions)" % (rounds, 100 * spread)) if use_perf else \
        ("`valgrind --tool=callgrind BIN 5` for instructions (perf counters unavailable)")
    md = [
        "Date: %s. %s" % (now(), machine_line(m)),
        "",
        "Command: `bench/run.sh BUILD_DIR` (section `cpu`). Builds (sources: `bench/cpu/*.c`, 7 translation units):",
        "",
    ]
    for name, _ in variants:
        md.append("* %s: `%s bench/cpu/*.c`" % (name, shq([os.path.basename(a) if a.startswith(work) else a
                                                          for a in builds[name]["cmd"][:-len(src)]])))
    md += [
        "",
        "Each run: %s; wall time around it. %d repetitions, interleaved plain, strict, fast, plain, ...; "
        "all three print the same checksum (`%s`). Load average (1/5/15 min) before: %s, after: %s. "
        "CPU time = user + system time of the run (from wait4), which unlike wall time does not count the time the "
        "program waited for a core." % (counter, done_reps, sums["plain"], load0, load1),
        "",
        md_table(["build", "median wall s", "min-max wall s", "wall / plain", "CPU time / plain", "instructions",
                  "instructions / plain", "cycles / plain", ".text bytes", ".text / plain"], table),
        "",
        "Raw: `bench/results/cpu.csv`, `bench/results/cpu_summary.csv`.",
    ]
    return "\n".join(md)


# ---------------------------------------------------------------------------- kv

def bench_kv(tools, work, m):
    rounds_by_pipe = {1: env_int("KV_ROUNDS", 3), 16: env_int("KV_ROUNDS_P16", 7)}
    rounds = max(rounds_by_pipe.values())
    n = env_int("KV_REQUESTS", 100000)
    budget = env_int("KV_BUDGET_S", 330)
    run_timeout = env_int("KV_RUN_TIMEOUT_S", 120)
    timeouts = []
    if not shutil.which("redis-benchmark"):
        return "redis-benchmark not found (apt-get install redis-tools): not measured."
    d = os.path.join(work, "kv")
    os.makedirs(d)
    variants = [("plain", CLANG), ("strict", tools["graft-cc"] + " --graft-policy=strict"),
                ("fast", tools["graft-cc"] + " --graft-policy=fast")]
    bins = {}
    for name, cc in variants:
        vd = os.path.join(d, name)
        shutil.copytree(os.path.join(ROOT, "examples", "kvstore", "v1"), vd,
                        ignore=shutil.ignore_patterns("*.o", "kvstore"))
        check(["make", "-s", "-C", vd, "CC=" + cc])
        bins[name] = os.path.join(vd, "kvstore")
    use_perf = perf_works()
    version = check(["redis-benchmark", "--version"]).stdout.strip()
    rows = []
    load0 = loadavg()
    client_base = ["taskset", "-c", "1", "redis-benchmark", "-p", "PORT", "-t", "set,get,incr,lpush", "-n", str(n),
                   "-c", "16", "-q", "--csv"]
    t_start = time.time()
    done = {1: 0, 16: 0}
    for rnd in range(rounds):
        if rnd >= 2 and time.time() - t_start > budget:
            log("kv: time budget of %d s used up after %d rounds" % (budget, rnd))
            break
        for pipe in (16, 1):
            if rnd >= rounds_by_pipe[pipe]:
                continue
            done[pipe] += 1
            for name, _ in variants:
                server = start(["taskset", "-c", "0", bins[name], "--port", "0", "--threads", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                try:
                    port = read_line(server, r"ready on port (\d+)", 10).group(1)
                    perf = None
                    stat = os.path.join(d, "perf-%s-%d-%d.txt" % (name, pipe, rnd))
                    if use_perf:
                        perf = start(["perf", "stat", "-x,", "-e", "instructions:u", "-p", str(server.pid), "-o", stat],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                        time.sleep(0.2)
                    cmd = [port if a == "PORT" else a for a in client_base] + (["-P", str(pipe)] if pipe > 1 else [])
                    t0 = time.perf_counter()
                    try:
                        r = check(cmd, timeout=run_timeout)
                    except subprocess.TimeoutExpired:
                        timeouts.append("round %d, %s, %s" % (rnd, "-P %d" % pipe if pipe > 1 else "no pipelining", name))
                        log("kv: round %d P%d %s: no result within %d s, skipped" % (rnd, pipe, name, run_timeout))
                        r = None
                    wall = time.perf_counter() - t0
                    ins = ""
                    if perf:
                        stop(perf, signal.SIGINT)
                        ins = parse_perf(stat).get("instructions", "")
                finally:
                    stop(server)
                if r is None:
                    continue
                lines = [l for l in csv.reader(r.stdout.splitlines()) if l]
                head = lines[0]
                for l in lines[1:]:
                    rec = dict(zip(head, l))
                    rows.append([rnd, pipe, name, rec["test"], rec["rps"], rec.get("p50_latency_ms", ""),
                                 rec.get("p99_latency_ms", ""), rec.get("max_latency_ms", ""), ins, "%.2f" % wall])
                log("kv: round %d P%d %s: %.1f s" % (rnd, pipe, name, wall))
    load1 = loadavg()
    write_csv("kv.csv", ["round", "pipeline", "variant", "test", "rps", "p50_ms", "p99_ms", "max_ms",
                         "server_instructions_u_whole_run", "run_s"], rows)
    tests = ["SET", "GET", "INCR", "LPUSH"]
    summary, md_rows, ins_rows = [], [], []

    def pick(pipe, name, test, i):
        return [float(r[i]) for r in rows if r[1] == pipe and r[2] == name and r[3] == test and r[i] != ""]

    def med(v):
        return statistics.median(v) if v else None

    for pipe in (1, 16):
        for test in tests:
            base_rps, base_p99 = med(pick(pipe, "plain", test, 4)), med(pick(pipe, "plain", test, 6))
            if not base_rps:
                continue
            cells = []
            for name, _ in variants:
                rps, p99 = med(pick(pipe, name, test, 4)), med(pick(pipe, name, test, 6))
                # ratio per round (plain and the variant of the same round)
                per_round = []
                for rnd in range(rounds_by_pipe[pipe]):
                    a = [float(r[4]) for r in rows if r[0] == rnd and r[1] == pipe and r[2] == name and r[3] == test]
                    b = [float(r[4]) for r in rows if r[0] == rnd and r[1] == pipe and r[2] == "plain" and r[3] == test]
                    if a and b:
                        per_round.append(a[0] / b[0])
                ratio = rps / base_rps if rps else None
                summary.append([pipe, test, name, fmt(rps, 0), fmt(ratio, 4), fmt(p99, 3),
                                fmt(p99 / base_p99, 4) if p99 and base_p99 else "",
                                " ".join("%.3f" % x for x in per_round)])
                cells.append((rps, ratio, p99, per_round))
            md_rows.append(["-P %d" % pipe if pipe > 1 else "none", test, fmt(cells[0][0], 0), fmt(cells[0][2], 3)] +
                           sum([["%s (%s)" % (fmt(c[1], 3), "-".join("%.2f" % x for x in (min(c[3]), max(c[3]))) if c[3] else "n/a"),
                                 fmt(c[2] / cells[0][2], 3) if c[2] and cells[0][2] else "n/a"] for c in cells[1:]], []))
        if use_perf:
            per = {}
            for name, _ in variants:
                v = [float(r[8]) / (4 * n) for r in rows if r[1] == pipe and r[2] == name and r[3] == "SET" and r[8] != ""]
                per[name] = statistics.median(v) if v else None
            if per.get("plain"):
                ins_rows.append(["-P %d" % pipe if pipe > 1 else "none"] +
                                sum([[fmt(per[nm], 0), fmt(per[nm] / per["plain"], 3)] for nm, _ in variants], []))
    write_csv("kv_summary.csv", ["pipeline", "test", "variant", "median_rps", "rps_ratio_to_plain", "median_p99_ms",
                                 "p99_ratio_to_plain", "per_round_rps_ratios"], summary)
    md = [
        "Date: %s. %s" % (now(), machine_line(m)),
        "",
        "Command: `bench/run.sh BUILD_DIR` (section `kv`). Server: `examples/kvstore/v1` copied three times, built with "
        "`make -C COPY CC=clang-14` / `CC='graft-cc --graft-policy=strict'` / `CC='graft-cc --graft-policy=fast'` "
        "(the Makefile's `CFLAGS = -O2 -g`), run as `taskset -c 0 kvstore --port 0 --threads 1` (one worker: the server "
        "has one core), a fresh server for every client run. Client (%s): `%s` and the same with `-P 16`. "
        "%d rounds without pipelining and %d with `-P 16`; in each round plain, strict, fast run one after the other "
        "(first with `-P 16`, then without). Load average before: %s, after: %s.%s"
        % (version, shq(client_base), done[1], done[16], load0, load1,
           (" Runs without a result within %d s (skipped): %s." % (run_timeout, "; ".join(timeouts))) if timeouts else ""),
        "",
        "Throughput ratio = median over rounds of requests/s, divided by plain's median; in brackets the lowest and "
        "highest per-round ratio (variant / plain of the same round). p99 is redis-benchmark's 99th percentile latency "
        "(median over rounds).",
        "",
        md_table(["pipelining", "test", "plain rps", "plain p99 ms", "strict rps / plain (range)", "strict p99 / plain",
                  "fast rps / plain (range)", "fast p99 / plain"], md_rows),
    ]
    if ins_rows:
        md += ["",
               "Server user-mode instructions per request (`perf stat -x, -e instructions:u -p SERVER` over the whole "
               "client run, divided by the %d requests; much less noisy than throughput, but it includes the event "
               "loop, whose cost per request depends on how requests were batched):" % (4 * n),
               "",
               md_table(["pipelining", "plain", "/ plain", "strict", "/ plain", "fast", "/ plain"], ins_rows)]
    md += ["", "Raw: `bench/results/kv.csv`, `bench/results/kv_summary.csv`."]
    return "\n".join(md)


# ------------------------------------------------------------------------- pause

def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def graft_json(cmd):
    try:
        r = run(cmd, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if r.returncode != 0:
        return None, (r.stderr.strip() or r.stdout.strip()).replace("\n", " ")
    return json.loads(r.stdout), None


def bench_pause(tools, work, m):
    reps = env_int("PAUSE_REPS", 20)
    threads_list = [int(x) for x in os.environ.get("PAUSE_THREADS", "1 4 16 64 256 1024").split()]
    nfun, changes = 256, (1, 10, 100)
    d = os.path.join(work, "pause")
    graft, gcc = tools["graft"], tools["graft-cc"]
    bins, patches = {}, {}
    for mm in (0,) + changes:
        vd = os.path.join(d, "v%d" % mm)
        os.makedirs(vd)
        check([sys.executable, os.path.join(HERE, "gen_target.py"), str(nfun), str(mm), os.path.join(vd, "target.c")])
        check([gcc, "-O2", "-pthread", "-o", "target", "target.c"], cwd=vd)
        bins[mm] = os.path.join(vd, "target")
    for mm in changes:
        patches[mm] = os.path.join(d, "p%d.graft" % mm)
        check([graft, "diff", bins[0], bins[mm], "-o", patches[mm]])
        info = json.loads(check([graft, "info", patches[mm], "--json"]).stdout)
        nf = len(info.get("functions", []))
        if nf != mm:
            log("pause: warning: the patch for %d changed functions replaces %d" % (mm, nf))
    rows, fails = [], []
    load0 = loadavg()

    def run_cell(t, sleep_us, mc, label):
        """One fresh target per (threads, functions) cell: REPS x (apply, revert)."""
        p = start([bins[0], str(t), str(sleep_us)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            read_line(p, r"ready (\d+)", 120)
            time.sleep(0.3)
            c0, w0 = proc_cpu_s(p.pid), time.time()
            got = []
            for rep in range(reps):
                a, err = graft_json([graft, "apply", str(p.pid), patches[mc], "--json"])
                if a is None:
                    fails.append([label, t, mc, rep, "apply", err])
                    continue
                rv, err = graft_json([graft, "revert", str(p.pid), "--json"])
                tries = 0
                while rv is None and tries < 3:
                    fails.append([label, t, mc, rep, "revert", err])
                    tries += 1
                    rv, err = graft_json([graft, "revert", str(p.pid), "--json"])
                got.append((rep, a, rv))
                if rv is None:
                    log("pause: %d threads: cannot revert (%s): cell abandoned" % (t, err))
                    break
            load = 100.0 * (proc_cpu_s(p.pid) - c0) / (time.time() - w0)
            for rep, a, rv in got:
                rows.append([label, t, sleep_us, mc, rep, "apply", a["threads"], a["functions"], a["attempts"],
                             a["pause_us"], a["prepare_us"], "%.3f" % a["total_ms"], "%.0f" % load])
                if rv:
                    rows.append([label, t, sleep_us, mc, rep, "revert", rv["threads"], a["functions"], "",
                                 rv["pause_us"], "", "%.3f" % rv["total_ms"], "%.0f" % load])
            log("pause: %s %d threads, %d functions: %d/%d applied, target CPU %.0f%%" % (label, t, mc, len(got), reps, load))
        finally:
            stop(p, signal.SIGKILL)

    budget = env_int("PAUSE_BUDGET_S", 200)
    t_start = time.time()
    for t in threads_list:
        for mc in changes:
            if time.time() - t_start > budget:
                log("pause: time budget of %d s used up: %d threads, %d functions not measured" % (budget, t, mc))
                continue
            run_cell(t, max(1000, t * 1000 // 16), mc, "grid")
    for t in (4, 64):
        run_cell(t, 200, 1, "peer-like")
    load1 = loadavg()
    write_csv("pause.csv", ["set", "threads", "sleep_us", "functions", "rep", "op", "threads_seen", "patch_functions",
                            "attempts", "pause_us", "prepare_us", "total_ms", "target_cpu_pct"], rows)
    write_csv("pause_failures.csv", ["set", "threads", "functions", "rep", "op", "error"], fails)

    def cell(label, t, mc, op):
        return [r for r in rows if r[0] == label and r[1] == t and r[3] == mc and r[5] == op]

    summary, apply_rows, revert_rows = [], [], []
    for label, ts, ms in (("grid", threads_list, changes), ("peer-like", (4, 64), (1,))):
        for t in ts:
            for mc in ms:
                a, rv = cell(label, t, mc, "apply"), cell(label, t, mc, "revert")
                if not a:
                    continue
                nfail = len([f for f in fails if f[0] == label and f[1] == t and f[2] == mc])
                pa = [float(r[9]) / 1000 for r in a]
                pr = [float(r[10]) / 1000 for r in a]
                ta = [float(r[11]) for r in a]
                pv = [float(r[9]) / 1000 for r in rv]
                tv = [float(r[11]) for r in rv]
                att = max(int(r[8]) for r in a)
                summary.append([label, t, a[0][2], mc, len(a), nfail, "%.3f" % pct(pa, 50), "%.3f" % pct(pa, 99),
                                "%.3f" % pct(pr, 50), "%.3f" % pct(pr, 99), "%.3f" % pct(ta, 50), "%.3f" % pct(ta, 99),
                                "%.3f" % pct(pv, 50), "%.3f" % pct(pv, 99), "%.3f" % pct(tv, 50), "%.3f" % pct(tv, 99),
                                att, a[0][12]])
                row = [t, "%g" % (a[0][2] / 1000.0), mc]
                apply_rows.append((label, row + ["%s / %s" % (fmt(pct(pa, 50)), fmt(pct(pa, 99))),
                                                 "%s / %s" % (fmt(pct(pr, 50)), fmt(pct(pr, 99))),
                                                 "%s / %s" % (fmt(pct(ta, 50)), fmt(pct(ta, 99))), att,
                                                 "%d/%d" % (len(a), len(a) + nfail), a[0][12]]))
                revert_rows.append((label, row + ["%s / %s" % (fmt(pct(pv, 50)), fmt(pct(pv, 99))),
                                                  "%s / %s" % (fmt(pct(tv, 50)), fmt(pct(tv, 99)))]))
    write_csv("pause_summary.csv", ["set", "threads", "sleep_us", "functions", "n", "failures", "apply_pause_ms_p50",
                                    "apply_pause_ms_p99", "apply_prepare_ms_p50", "apply_prepare_ms_p99",
                                    "apply_total_ms_p50", "apply_total_ms_p99", "revert_pause_ms_p50",
                                    "revert_pause_ms_p99", "revert_total_ms_p50", "revert_total_ms_p99",
                                    "apply_attempts_max", "target_cpu_pct"], summary)
    head_a = ["threads", "worker sleep ms", "functions", "pause ms p50 / p99", "prepare ms p50 / p99",
              "total ms p50 / p99", "max attempts", "applied", "target CPU %"]
    head_r = ["threads", "worker sleep ms", "functions", "pause ms p50 / p99", "total ms p50 / p99"]
    md = [
        "Date: %s. %s" % (now(), machine_line(m)),
        "",
        "Command: `bench/run.sh BUILD_DIR` (section `pause`). Target: `bench/gen_target.py %d M target.c` "
        "(%d functions `int fK(int x) { return x * (K+3) + 1; }`, each worker calls all of them, then `usleep`), built "
        "with `graft-cc -O2 -pthread` (default policy) as version 1 (M = 0) and as versions where the first M = 1, 10, 100 "
        "functions return `... + 2`; `graft diff v0/target vM/target -o pM.graft` (each patch replaces exactly M functions). "
        "One fresh target per cell (`target THREADS SLEEP_US`, 64 KiB stacks), on which %d times "
        "`graft apply PID pM.graft --json` then `graft revert PID --json`. "
        "pause = longest time all threads were stopped (`pause_us`), prepare = one thread stopped while the patch is "
        "mapped (`prepare_us`), total = whole command as measured by graft (`total_ms`, excluding process start-up). "
        "p99 is nearest-rank: with %d samples it is the largest. Target CPU = CPU time of the target during the cell / "
        "wall time (100 = one core). Load average before: %s, after: %s."
        % (nfun, nfun, reps, reps, load0, load1),
        "",
        "Worker sleep: max(1 ms, THREADS/16 ms), so the whole target makes at most 16,000 passes over its %d functions "
        "per second whatever its thread count, and does not saturate the two shared cores (at 1 ms with 256 threads it "
        "did, and then the pauses measured the scheduler, not graft)." % nfun,
        "",
        "**apply**",
        "",
        md_table(head_a, [r for l, r in apply_rows if l == "grid"]),
        "",
        "**revert** (the JSON of revert has no prepare_us: the unmapping after the commit is in total only)",
        "",
        md_table(head_r, [r for l, r in revert_rows if l == "grid"]),
        "",
        "**Peer-like cells**: workers sleep 200 us (DESIGN.md's peers were measured on a target whose workers call a "
        "changed function every 200 us), patch of 1 function. At 64 threads this saturates both cores of this machine.",
        "",
        md_table(head_a, [r for l, r in apply_rows if l == "peer-like"]),
        "",
        md_table(head_r, [r for l, r in revert_rows if l == "peer-like"]),
        "",
        "Failures: %d (`bench/results/pause_failures.csv`). Raw: `bench/results/pause.csv`, `bench/results/pause_summary.csv`."
        % len(fails),
    ]
    return "\n".join(md)


# --------------------------------------------------------------------------- doc

SKELETON = """# graft benchmarks

Regenerate with `make bench` (or `bench/run.sh build`). Text between the
`<!-- generated:... -->` markers is rewritten by `bench/run.sh`; the rest is
written by hand and refers to the run recorded in the generated parts.

## Steady-state overhead: CPU-bound program

<!-- generated:cpu begin -->
<!-- generated:cpu end -->

## Steady-state overhead: kvstore under redis-benchmark

<!-- generated:kv begin -->
<!-- generated:kv end -->

## Pause and total time of apply and revert

<!-- generated:pause begin -->
<!-- generated:pause end -->
"""


def splice(sections):
    os.makedirs(os.path.dirname(DOC), exist_ok=True)
    text = open(DOC).read() if os.path.exists(DOC) else SKELETON
    for name, body in sections.items():
        begin, end = "<!-- generated:%s begin -->" % name, "<!-- generated:%s end -->" % name
        if begin not in text:
            text += "\n## %s\n\n%s\n%s\n" % (name, begin, end)
        a = text.index(begin) + len(begin)
        b = text.index(end)
        text = text[:a] + "\n" + body.strip() + "\n" + text[b:]
    with open(DOC, "w") as f:
        f.write(text)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    build = os.path.abspath(sys.argv[1])
    which = sys.argv[2:] or ["cpu", "kv", "pause"]
    for t in ("bin/graft", "bin/graft-cc", "lib/graft-pass.so"):
        if not os.path.exists(os.path.join(build, t)):
            print("bench: %s not found: build first (cmake --build %s)" % (os.path.join(build, t), build), file=sys.stderr)
            return 1
    work = tempfile.mkdtemp(prefix="graft-bench.")
    # A private copy of the tools (graft-cc finds its plugin at ../lib/graft-pass.so), so that the whole run
    # uses one build even if BUILD_DIR is rebuilt meanwhile.
    for sub, names in (("bin", ("graft", "graft-cc")), ("lib", ("graft-pass.so",))):
        os.makedirs(os.path.join(work, "tools", sub))
        for name in names:
            shutil.copy2(os.path.join(build, sub, name), os.path.join(work, "tools", sub, name))
    tools = {t: os.path.join(work, "tools", "bin", t) for t in ("graft", "graft-cc")}
    os.environ["GRAFT_STORE"] = os.path.join(work, "store")  # our builds do not go into the user's store
    m = machine()
    m["commit"] += ", tools copied from %s at the start (graft built %s)" % (
        os.path.relpath(build, ROOT) if build.startswith(ROOT) else build,
        datetime.datetime.fromtimestamp(os.path.getmtime(os.path.join(build, "bin", "graft")),
                                        datetime.timezone.utc).strftime("%H:%M UTC"))
    write_csv("machine.csv", ["date_utc", "nproc", "cpu_model", "kernel", "clang", "graft_commit"],
              [[now(), m["nproc"], m["model"], m["kernel"], m["clang"], m["commit"]]])
    sections = {}
    try:
        for name, fn in (("cpu", bench_cpu), ("kv", bench_kv), ("pause", bench_pause)):
            if name in which:
                t0 = time.time()
                log("%s: start (load average %s)" % (name, loadavg()))
                sections[name] = fn(tools, work, m)
                log("%s: done in %.0f s" % (name, time.time() - t0))
                splice({name: sections[name]})
    finally:
        cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print("results in %s, document %s" % (RESULTS, DOC))
    return 0


if __name__ == "__main__":
    sys.exit(main())
