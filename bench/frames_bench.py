#!/usr/bin/env python3
"""Pause per moved frame (issue 10): graft apply on tests/programs/loopbody,
three workers in a never-returning loop around read(), side by side in one run:

  none     v1 -> v1 with only version() changed: no frame moves (the baseline)
  idle     v1 -> v2, workers blocked inside read(): each return slot is pointed
           at the patch's frame rebuild (frames_continued)
  busy     v1 -> v2 while a client wakes the workers without pause: workers
           just back from read() are rebuilt by graft at the commit
           (frames_transferred), the others as idle ones

  bench/frames_bench.py BUILD_DIR [ROUNDS]   (about a minute for 15 rounds)

Prints, per case, the median and max pause_us and the frames moved, and the
median extra pause per moved frame against `none`; interleaved rounds, so
load drift hits every case alike.
"""
import json, os, statistics, subprocess, sys, tempfile, threading

build = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else sys.exit(__doc__)
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 15
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
bin_dir = os.path.join(build, "bin")
work = tempfile.mkdtemp(prefix="graft-frames-")
env = dict(os.environ, GRAFT_STORE=os.path.join(work, "store"))


def build_version(name, source_text):
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "main.c"), "w") as f:
        f.write(source_text)
    out = os.path.join(d, "prog")
    subprocess.run([os.path.join(bin_dir, "graft-cc"), "-O2", "-pthread", "main.c", "-o", out], cwd=d, env=env,
                   check=True)
    return out


def diff(a, b, name):
    patch = os.path.join(work, name + ".graft")
    subprocess.run([os.path.join(bin_dir, "graft"), "diff", a, b, "-o", patch], env=env, check=True,
                   capture_output=True)
    return patch


programs = os.path.join(root, "tests", "programs", "loopbody")
v1_text = open(os.path.join(programs, "v1", "main.c")).read()
v1 = build_version("v1", v1_text)
v1b = build_version("v1b", v1_text.replace("static int version(void) { return 1; }",
                                           "static int version(void) { return 7; }"))
v2 = build_version("v2", open(os.path.join(programs, "v2", "main.c")).read())
patches = {"none": diff(v1, v1b, "none"), "idle": diff(v1, v2, "idle"), "busy": diff(v1, v2, "busy")}


def one(case):
    p = subprocess.Popen([v1], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    try:
        assert p.stdout.readline().startswith("ready")
        lock, stop = threading.Lock(), threading.Event()

        def ask(line):
            with lock:
                p.stdin.write(line + "\n")
                return p.stdout.readline().strip()

        ask("wake")
        waker = None
        if case == "busy":
            waker = threading.Thread(target=lambda: [ask("wake") for _ in iter(lambda: stop.is_set(), True)])
            waker.start()
        r = subprocess.run([os.path.join(bin_dir, "graft"), "apply", str(p.pid), patches[case], "--json",
                            "--timeout", "5000"], env=env, capture_output=True, text=True)
        stop.set()
        if waker:
            waker.join()
        report = json.loads(r.stdout)
        if not report.get("ok", r.returncode == 0):
            raise SystemExit(f"{case}: apply refused: {r.stdout.strip()}")
        assert ask("v") == ("7" if case == "none" else "2")
        return report["pause_us"], report.get("frames_continued", 0) + report.get("frames_transferred", 0)
    finally:
        p.kill()
        p.wait()


results = {c: [] for c in patches}
for _ in range(rounds):
    for case in patches:
        results[case].append(one(case))
base = statistics.median(p for p, _ in results["none"])
print(f"{'case':6} {'median pause_us':>16} {'max':>8} {'frames moved (median)':>22} {'extra us/frame':>15}")
for case, rs in results.items():
    pauses = [p for p, _ in rs]
    frames = statistics.median(f for _, f in rs)
    extra = (statistics.median(pauses) - base) / frames if frames else 0
    print(f"{case:6} {statistics.median(pauses):16.0f} {max(pauses):8d} {frames:22.0f} {extra:15.0f}")
