#!/usr/bin/env python3
"""One attack on `gpu-admit serve` while a probe measures good reviews (see hostile_load.sh).

    hostile_load.py PORT CA_FILE REQUEST_FILE ATTACK SECONDS

The probe opens a fresh TLS connection every 50 ms (as an API server does after a reset), posts
the AdmissionReview and times handshake + answer. Prints one line: attack, reviews, failures,
p50 ms, p99 ms, max ms. Everything is bounded by SECONDS and by the counts below; 127.0.0.1 only.
"""
import socket
import ssl
import sys
import threading
import time

HOST = "127.0.0.1"
port, ca, request_file, attack, seconds = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
body = open(request_file, "rb").read()
stop = threading.Event()
attack_ctx = ssl.create_default_context()
attack_ctx.check_hostname = False
attack_ctx.verify_mode = ssl.CERT_NONE
probe_ctx = ssl.create_default_context(cafile=ca)
probe_ctx.check_hostname = False


def tcp():
    s = socket.create_connection((HOST, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def tls():
    return attack_ctx.wrap_socket(tcp())


def quietly(fn):
    """fn()'s result (True for None, as sendall gives), or None when it raised OSError."""
    try:
        result = fn()
        return True if result is None else result
    except OSError:
        return None


def hold(make, first_bytes, count, trickle=None):
    """Keeps `count` connections open, each sent `first_bytes` and then `trickle` every second;
    reopens those the server closes."""
    conns = []
    while not stop.is_set():
        while len(conns) < count and not stop.is_set():
            c = quietly(make)
            if c is None:
                time.sleep(0.05)
                break
            if first_bytes and quietly(lambda: c.sendall(first_bytes)) is None:
                c.close()
                continue
            conns.append(c)
        if trickle:
            alive = []
            for c in conns:
                (alive.append(c) if quietly(lambda: c.sendall(trickle)) is not None else c.close())
            conns = alive
        else:
            alive = []
            for c in conns:
                c.setblocking(False)
                try:
                    gone = c.recv(1) == b""
                except (BlockingIOError, ssl.SSLWantReadError):
                    gone = False
                except OSError:
                    gone = True
                c.setblocking(True)
                (c.close() if gone else alive.append(c))
            conns = alive
        stop.wait(1.0)
    for c in conns:
        c.close()


def loop(send):
    """Sends one hostile request per new connection, as fast as the server answers."""
    while not stop.is_set():
        c = quietly(tls)
        if c is None:
            time.sleep(0.05)
            continue
        try:
            send(c)
            c.settimeout(5)
            while c.recv(65536):
                pass
        except OSError:
            pass
        finally:
            c.close()


head = b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
attacks = {
    "none": [],
    "slowloris-headers": [lambda: hold(tls, b"POST /mutate HTTP/1.1\r\nHost: x\r\n", 100, b"X-a: b\r\n")],
    "slow-body": [lambda: hold(tls, head + b"Content-Length: 100000\r\n\r\n{", 100, b" ")],
    "idle-tls-flood": [lambda: hold(tls, b"", 120)],
    "half-handshakes": [lambda: hold(tcp, b"\x16\x03\x01\x02\x00\x01", 120)],
    "oversized-headers": [lambda: loop(lambda c: c.sendall(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"))] * 2,
    "many-headers": [lambda: loop(lambda c: c.sendall(b"GET /healthz HTTP/1.1\r\n" + b"X-h: v\r\n" * 5000 + b"\r\n"))] * 2,
    "pipelining": [lambda: loop(lambda c: c.sendall((head + b"Content-Length: %d\r\n\r\n" % len(body) + body) * 20
                                                    + b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"))] * 2,
    "chunked-flood": [lambda: loop(lambda c: [c.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")]
                                   + [c.sendall(b"4000\r\n" + b" " * 0x4000 + b"\r\n") for _ in range(400)])] * 2,
}
threads = [threading.Thread(target=fn, daemon=True) for fn in attacks[attack]]
for t in threads:
    t.start()
time.sleep(min(3.0, seconds / 3))  # the attack builds up

request = head + b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body
latencies, failures = [], 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    start = time.monotonic()
    try:
        with probe_ctx.wrap_socket(socket.create_connection((HOST, port), timeout=30)) as c:
            c.sendall(request)
            answer = b""
            while chunk := c.recv(65536):
                answer += chunk
        if answer.startswith(b"HTTP/1.1 200"):
            latencies.append((time.monotonic() - start) * 1000)
        else:
            failures += 1
    except OSError:
        failures += 1
    time.sleep(0.05)
stop.set()
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")
print(f"{attack} {len(latencies)} {failures} {pick(0.5):.1f} {pick(0.99):.1f} {max(latencies, default=float('nan')):.1f}")
