#!/usr/bin/env python3
"""Steady-state cost of update points as transfer points (graft-cc's barriers).

    bench/update_point_cost.py BUILD_DIR [BASE_PLUGIN]

BASE_PLUGIN: a graft-pass.so without the barriers (built from an earlier
commit), to compare against; without it only plain clang is compared.

1. Programs without update points (examples/kvstore/v1, examples/httpd/v1,
   bench/cpu): the barrier pass changes nothing, so graft-cc's .text must be
   byte for byte the one the base plugin gives.
2. examples/kvstore/v1 and examples/httpd/v1 with graft_update_point() at
   the top of the worker's event loop and of its loop over the events
   epoll_wait returned (copies; the examples are not changed), built with
   plain clang-14 -O2 (with and without the update points), graft-cc with
   the base plugin and graft-cc: server instructions per request under
   valgrind --tool=callgrind (perf counters are unavailable on the VM), from
   two runs against fresh servers (one worker thread) so that start-up
   cancels out: (Ir(2) - Ir(1)) / (requests(2) - requests(1)). kvstore:
   redis-benchmark -n N1 and -n N2 (-c 16, set,get,incr,lpush, no
   pipelining); httpd: wrk -t1 -c16 for 2 s and 8 s on a 5.4 kB page.
3. A compute loop with an update point (the worst case for the barriers: they
   keep SCEV from seeing the loop's induction variables): bench/update_point_loop.c,
   instructions per iteration the same way.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLANG = "clang-14"
N1, N2 = int(os.environ.get("UP_N1", "5000")), int(os.environ.get("UP_N2", "25000"))


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def text_of(binary):
    out = binary + ".text"
    run(["objcopy", "-O", "binary", "--only-section=.text", binary, out])
    with open(out, "rb") as f:
        return f.read()


def callgrind_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError("no totals in " + path)


def stripped(binary):
    # Valgrind 3.19 cannot read clang 14's DWARF 5; the code is the same without it.
    out = binary + ".nodebug"
    if not os.path.exists(out):
        run(["objcopy", "--strip-debug", binary, out])
    return out


def kv_instructions(binary, n, work, tag):
    binary = stripped(binary)
    out = os.path.join(work, "cg-%s-%d.out" % (tag, n))
    server = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, binary, "--port", "0",
                               "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.time() + 60
        port = None
        while time.time() < deadline:
            line = server.stdout.readline()
            m = re.search(r"ready on port (\d+)", line)
            if m:
                port = m.group(1)
                break
        if not port:
            raise RuntimeError(binary + ": no 'ready on port'")
        run(["redis-benchmark", "-p", port, "-t", "set,get,incr,lpush", "-n", str(n), "-c", "16", "-q"], timeout=600)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    return callgrind_total(out)


def loop_instructions(binary, n, work, tag):
    binary = stripped(binary)
    out = os.path.join(work, "cg-%s-%d.out" % (tag, n))
    run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, binary, str(n)], timeout=600)
    return callgrind_total(out)


def with_update_points(src_dir, name):
    # At the top of the worker's event loop and of its loop over the events.
    server = os.path.join(src_dir, "server.c")
    s = open(server).read()
    header = '#include "kvstore.h"' if name == "kvstore" else '#include "httpd.h"'
    assert header in s
    s = s.replace(header, '#include <graft/graft.h>\n\n' + header, 1)
    if name == "kvstore":
        outer = "    for (;;) {\n        int n = epoll_wait("
        inner = "        for (int i = 0; i < n; i++) {\n"
        at_outer = "    for (;;) {\n        graft_update_point();\n        int n = epoll_wait("
    else:
        outer = "ACQUIRE)) {\n        int n = epoll_wait("
        inner = "        for (int i = 0; i < n; i++) {\n"
        at_outer = "ACQUIRE)) {\n        graft_update_point();\n        int n = epoll_wait("
    assert outer in s and inner in s
    s = s.replace(outer, at_outer, 1)
    s = s.replace(inner, inner + "            graft_update_point();\n", 1)
    open(server, "w").write(s)


def httpd_instructions(binary, seconds, work, tag):
    binary = stripped(binary)
    out = os.path.join(work, "cg-%s-%d.out" % (tag, seconds))
    server = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, binary, "--port", "0",
                               "--threads", "1", "--root", os.path.join(work, "www")],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = None
        deadline = time.time() + 60
        while time.time() < deadline:
            m = re.search(r"ready on port (\d+)", server.stdout.readline())
            if m:
                port = m.group(1)
                break
        if not port:
            raise RuntimeError(binary + ": no 'ready on port'")
        r = run(["wrk", "-t1", "-c16", "-d%ds" % seconds, "http://127.0.0.1:%s/index.html" % port], timeout=600)
        requests = int(re.search(r"(\d+) requests in", r.stdout).group(1))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    return callgrind_total(out), requests


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: %s BUILD_DIR [BASE_PLUGIN]" % sys.argv[0])
    build = os.path.abspath(sys.argv[1])
    base_plugin = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
    graft_cc = os.path.join(build, "bin", "graft-cc")
    include = os.path.join(ROOT, "include")
    work = tempfile.mkdtemp(prefix="graft-upcost-")
    env = dict(os.environ, GRAFT_STORE=os.path.join(work, "store"))
    base_env = dict(env, GRAFT_PASS_PLUGIN=base_plugin) if base_plugin else None
    print("work directory:", work)

    # 1. Programs without update points: unchanged.
    if base_plugin:
        for name, sources in (("kvstore", "examples/kvstore/v1"), ("httpd", "examples/httpd/v1"), ("cpu", "bench/cpu")):
            texts = {}
            for tag, e in (("base", base_env), ("new", env)):
                d = os.path.join(work, "same-%s-%s" % (name, tag))
                shutil.copytree(os.path.join(ROOT, sources), d, ignore=shutil.ignore_patterns("*.o", name))
                if name == "cpu":
                    srcs = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".c"))
                    run([graft_cc, "-O2", "-g", "-o", os.path.join(d, name)] + srcs, env=e)
                else:
                    run(["make", "-s", "-C", d, "CC=" + graft_cc], env=e)
                texts[tag] = text_of(os.path.join(d, name))
            print("%-8s no update point: .text %d bytes, graft-cc with the barrier pass %s the base plugin's"
                  % (name, len(texts["new"]), "identical to" if texts["new"] == texts["base"] else "DIFFERENT from"))

    # 2. kvstore and httpd with update points.
    os.makedirs(os.path.join(work, "www"))
    with open(os.path.join(work, "www", "index.html"), "w") as f:
        f.write("<html><body>" + "graft " * 900 + "</body></html>\n")
    variants = [("plain", CLANG, False, env), ("plain+up", CLANG + " -I" + include, True, env)]
    if base_plugin:
        variants.append(("graft-base+up", graft_cc, True, base_env))
    variants.append(("graft+up", graft_cc, True, env))
    for name in ("kvstore", "httpd"):
        per_request = {}
        for tag, cc, up, e in variants:
            d = os.path.join(work, "%s-%s" % (name, tag))
            shutil.copytree(os.path.join(ROOT, "examples", name, "v1"), d, ignore=shutil.ignore_patterns("*.o", name))
            if up:
                with_update_points(d, name)
            run(["make", "-s", "-C", d, "CC=" + cc], env=e)
            binary = os.path.join(d, name)
            if name == "kvstore":
                a = kv_instructions(binary, N1, work, tag)
                b = kv_instructions(binary, N2, work, tag)
                ra, rb = 4 * N1, 4 * N2
            else:
                a, ra = httpd_instructions(binary, 2, work, tag)
                b, rb = httpd_instructions(binary, 8, work, tag)
            per_request[tag] = (b - a) / float(rb - ra)
            print("%-7s %-14s Ir=%d for %d requests, Ir=%d for %d -> %.1f instructions/request"
                  % (name, tag, a, ra, b, rb, per_request[tag]))
        for tag in per_request:
            line = "%-7s %-14s %.1f / plain %.4f" % (name, tag, per_request[tag], per_request[tag] / per_request["plain"])
            if "graft-base+up" in per_request:
                line += "  / graft-base+up %.4f" % (per_request[tag] / per_request["graft-base+up"])
            print(line)

    # 3. A compute loop with an update point.
    src = os.path.join(ROOT, "bench", "update_point_loop.c")
    loops = [("plain", [CLANG, "-I" + include], env)]
    if base_plugin:
        loops.append(("graft-base", [graft_cc], base_env))
    loops.append(("graft", [graft_cc], env))
    per_iteration = {}
    for tag, cc, e in loops:
        binary = os.path.join(work, "loop-" + tag)
        run(cc + ["-O2", "-g", src, "-o", binary], env=e)
        a = loop_instructions(binary, 1000000, work, "loop-" + tag)
        b = loop_instructions(binary, 5000000, work, "loop-" + tag)
        per_iteration[tag] = (b - a) / 4000000.0
    for tag in per_iteration:
        print("loop    %-14s %.3f instructions/iteration, / plain %.4f" % (tag, per_iteration[tag],
                                                                         per_iteration[tag] / per_iteration["plain"]))


if __name__ == "__main__":
    main()
