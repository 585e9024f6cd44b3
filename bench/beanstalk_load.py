#!/usr/bin/env python3
"""A small beanstalkd client for scripts/trial.sh (docs/REAL_WORLD.md).

  beanstalk_load.py load PORT SECONDS [CLIENTS]   put / reserve / delete in a loop
  beanstalk_load.py cmd PORT 'stats-tube default' one command, its reply on stdout

load: each client puts a job with a numbered body into its own tube, reserves
it, checks that the body came back unchanged and deletes it; a reply that is
not the expected one, or a dropped connection, counts as a failure (the
client reconnects). The last line is 'requests=N failed=M', which trial.sh
reads. Exit status 0 when nothing failed.
"""
import socket
import sys
import threading
import time


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed")
            self.buf += data
        head, self.buf = self.buf.split(b"\r\n", 1)
        return head.decode()

    def body(self, n):
        while len(self.buf) < n + 2:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed")
            self.buf += data
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def send(self, text, data=None):
        out = text.encode() + b"\r\n"
        if data is not None:
            out += data + b"\r\n"
        self.sock.sendall(out)


def client(port, deadline, index, counts, lock):
    requests = failed = 0
    seq = 0
    conn = None
    while time.monotonic() < deadline:
        try:
            if conn is None:
                conn = Conn(port)
                conn.send(f"use trial{index}")
                conn.line()
                conn.send(f"watch trial{index}")
                conn.line()
            seq += 1
            body = f"job {index}.{seq}".encode()
            conn.send(f"put 0 0 60 {len(body)}", body)
            reply = conn.line()
            requests += 1
            if not reply.startswith("INSERTED "):
                failed += 1
                continue
            conn.send("reserve-with-timeout 5")
            reply = conn.line()
            requests += 1
            if not reply.startswith("RESERVED "):
                failed += 1
                continue
            _, job, size = reply.split()
            if conn.body(int(size)) != body:
                failed += 1
            conn.send(f"delete {job}")
            requests += 1
            if conn.line() != "DELETED":
                failed += 1
        except (OSError, ConnectionError, ValueError):
            failed += 1
            conn = None
            time.sleep(0.05)
    with lock:
        counts[0] += requests
        counts[1] += failed


def load(port, seconds, clients):
    deadline = time.monotonic() + seconds
    counts, lock = [0, 0], threading.Lock()
    threads = [threading.Thread(target=client, args=(port, deadline, i, counts, lock)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"requests={counts[0]} failed={counts[1]}")
    return 0 if counts[1] == 0 else 1


def command(port, text):
    conn = Conn(port)
    conn.send(text)
    reply = conn.line()
    print(reply)
    parts = reply.split()
    if parts[0] in ("OK", "RESERVED", "FOUND"):
        print(conn.body(int(parts[-1])).decode(errors="replace"))
    return 0


def main(argv):
    if len(argv) >= 4 and argv[1] == "load":
        return load(int(argv[2]), float(argv[3]), int(argv[4]) if len(argv) > 4 else 8)
    if len(argv) == 4 and argv[1] == "cmd":
        return command(int(argv[2]), argv[3])
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
