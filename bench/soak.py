#!/usr/bin/env python3
"""The soak of `gpu-admit serve` (see soak.sh): steady mixed load, faults on a schedule, a row a minute.

    soak.py WORK PORT SERVER_PID SECONDS RATE

WORK holds what soak.sh set up: certs/ (the serving certificate the server reloads, and the CA
that signed it), config.yaml (the config the server reloads), kube/ (the API server from
../shared/tools/kube-apiserver/start.sh) and requests/ (AdmissionReview bodies as ROUTE--NAME.json).

Load: CONNECTIONS keep-alive TLS connections share RATE reviews/s, open loop: each connection
sends on a fixed schedule, and a review's latency runs from its scheduled time, so a stall shows
as latency rather than as a lower send rate. A connection the server closes (keep-alive limits)
is reopened, with a fresh handshake against the certificate served at that moment.

An error is a review that fails in transport, has a status other than 200, or whose answer
differs from the first answer to the same body on the same route (the answers do not depend on
time: the cluster in the API server does not change, and each body keeps its uid).

Faults, at fixed fractions of SECONDS: 10 certificate replacements (the 5th a broken file, the
6th repairs it), the config replaced by invalid YAML and restored, and the API server killed and
started again. Each is checked: the new certificate is served within CHECK_SECONDS, a broken one
is not (the previous one stays), the reload counters move, the watch comes back.
Prints a row per minute and a summary; exit 1 if any review erred or any check failed.
"""
import asyncio
import hashlib
import json
import os
import pathlib
import signal
import ssl
import subprocess
import sys
import time
import urllib.request

work = pathlib.Path(sys.argv[1])
port, server_pid, seconds, rate = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
CONNECTIONS = 16
CHECK_SECONDS = 10.0
repo = pathlib.Path(__file__).resolve().parent.parent

requests = []  # (route, name, http request bytes)
for path in sorted((work / "requests").glob("*.json")):
    route, name = path.stem.split("--", 1)
    body = path.read_bytes()
    head = (f"POST /{route}?timeout=10s HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nAccept: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    requests.append((route, name, head + body))

ctx = ssl.create_default_context(cafile=str(work / "certs" / "ca.crt"))
ctx.check_hostname = False
baseline = {}           # request index -> first answer body
first_difference = {}   # request index -> the first different answer, for the report
stats = {"reviews": 0, "errors": 0, "latencies": [], "connects": 0, "served_certs": set()}
errors_by_kind = {}
events = []             # (elapsed seconds, text)
checks_failed = []
started = time.monotonic()


def note(text):
    events.append((time.monotonic() - started, text))
    print(f"# {time.monotonic() - started:7.1f}s {text}", flush=True)


def error(kind):
    stats["errors"] += 1
    errors_by_kind[kind] = errors_by_kind.get(kind, 0) + 1


async def open_connection():
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    stats["served_certs"].add(hashlib.sha256(der).hexdigest())
    stats["connects"] += 1
    return reader, writer


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length, close = 0, False
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.lower() == "content-length":
            length = int(value)
        elif key.lower() == "connection" and value.strip().lower() == "close":
            close = True
    return status, await reader.readexactly(length), close


async def connection_loop(index, deadline):
    period = CONNECTIONS / rate
    next_send = time.monotonic() + index * period / CONNECTIONS
    sent = 0
    conn = None
    while next_send < deadline:
        delay = next_send - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        which = (index + sent * CONNECTIONS) % len(requests)
        sent += 1
        scheduled, next_send = next_send, next_send + period
        try:
            if conn is None:
                conn = await asyncio.wait_for(open_connection(), 10)
            reader, writer = conn
            writer.write(requests[which][2])
            status, body, close = await asyncio.wait_for(read_response(reader), 15)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ssl.SSLError, ValueError) as e:
            error(type(e).__name__)
            if conn:
                conn[1].close()
            conn = None
            continue
        stats["latencies"].append(time.monotonic() - scheduled)
        stats["reviews"] += 1
        if status != 200:
            error(f"http {status}")
        else:
            answer = body.replace(b" ", b"")
            if which not in baseline:
                baseline[which] = answer
            elif baseline[which] != answer:
                error("answer changed")
                first_difference.setdefault(which, body[:2000].decode(errors="replace"))
        if close:
            conn[1].close()
            conn = None
    if conn:
        conn[1].close()


def rss_mib():
    for line in open(f"/proc/{server_pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def scrape_metrics():
    reader, writer = await open_connection()
    writer.write(f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
    status, body, _ = await read_response(reader)
    writer.close()
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def metric(values, prefix):
    """Sum of every series whose name (with labels) starts with prefix."""
    return sum(v for k, v in values.items() if k.startswith(prefix))


def cert_fingerprint(path):
    try:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(path.read_text())).hexdigest()
    except (ValueError, OSError):
        return None


async def served_fingerprint():
    reader, writer = await open_connection()
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return hashlib.sha256(der).hexdigest()


async def wait_for(what, condition, limit=CHECK_SECONDS):
    """Polls condition() (a coroutine) until true or `limit` seconds pass; records a failed check."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if await condition():
            note(f"  ok: {what} after {time.monotonic() - t0:.1f}s")
            return True
        await asyncio.sleep(0.25)
    checks_failed.append(what)
    note(f"  FAILED: {what} within {limit}s")
    return False


def replace_file(path, text):
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


async def swap_certificate(number, broken):
    crt = work / "certs" / "tls.crt"
    before = await served_fingerprint()
    reloads = await scrape_metrics()
    if broken:
        note(f"certificate {number}: replaced by a broken file")
        replace_file(crt, "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")

        async def failure_counted():
            return metric(await scrape_metrics(), 'gpuadmit_cert_reloads_total{result="failed"') > \
                metric(reloads, 'gpuadmit_cert_reloads_total{result="failed"')
        await wait_for("broken certificate counted as a failed reload", failure_counted)
        if await served_fingerprint() != before:
            checks_failed.append("broken certificate: the previous one must stay")
            note("  FAILED: the served certificate changed")
        return
    note(f"certificate {number}: rotated (certs/make-dev-certs.sh)")
    await asyncio.to_thread(subprocess.run, [str(repo / "certs/make-dev-certs.sh"), str(work / "certs")],
                            check=True, capture_output=True)
    expected = cert_fingerprint(crt)

    async def served():
        return await served_fingerprint() == expected
    await wait_for(f"certificate {number} served", served)


async def break_config():
    config = work / "config.yaml"
    good = config.read_text()
    before = await scrape_metrics()
    note("config: replaced by invalid YAML")
    replace_file(config, "policies: [gpu-tolerations\n  - broken: {\n")

    async def failed():
        return metric(await scrape_metrics(), 'gpuadmit_config_reloads_total{result="failed"') > \
            metric(before, 'gpuadmit_config_reloads_total{result="failed"')
    await wait_for("invalid config counted as a failed reload", failed)
    await asyncio.sleep(min(30.0, seconds / 40))
    note("config: restored")
    replace_file(config, good)

    async def reloaded():
        return metric(await scrape_metrics(), 'gpuadmit_config_reloads_total{result="ok"') > \
            metric(before, 'gpuadmit_config_reloads_total{result="ok"')
    await wait_for("restored config reloaded", reloaded)


async def restart_apiserver():
    kube = work / "kube"
    pid = int((kube / "apiserver.pid").read_text())
    argv = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    before = await scrape_metrics()
    note(f"API server: killed (pid {pid})")
    os.kill(pid, signal.SIGKILL)
    while pathlib.Path(f"/proc/{pid}").exists():
        await asyncio.sleep(0.1)
    await asyncio.sleep(10)
    log = open(kube / "apiserver.log", "ab")
    proc = subprocess.Popen([a.decode() for a in argv], stdout=log, stderr=log, start_new_session=True)
    (kube / "apiserver.pid").write_text(f"{proc.pid}\n")
    note(f"API server: started again (pid {proc.pid})")

    # The watch is live again when an object created after the restart reaches the model.
    env = dict(line.strip().split("=", 1) for line in open(kube / "env"))
    api_ctx = ssl.create_default_context(cafile=str(kube / "pki" / "apiserver.crt"))

    def create_namespace():
        body = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "soak-after-restart"}}).encode()
        req = urllib.request.Request(f"https://127.0.0.1:{env['APIPORT']}/api/v1/namespaces", body, method="POST",
                                     headers={"Authorization": "Bearer admin-token", "Content-Type": "application/json"})
        for _ in range(120):
            try:
                return urllib.request.urlopen(req, context=api_ctx, timeout=5).read()
            except OSError:
                time.sleep(0.5)  # not serving yet
        raise RuntimeError("the API server did not come back")
    await asyncio.to_thread(create_namespace)
    note("API server: serving again; created namespace soak-after-restart")

    async def rewatched():
        return metric(await scrape_metrics(), 'gpuadmit_watch_objects{kind="namespace"}') > \
            metric(before, 'gpuadmit_watch_objects{kind="namespace"}')
    await wait_for("the watch delivered a namespace created after the restart", rewatched, limit=90.0)


async def faults():
    schedule = [(seconds * i / 11, lambda i=i: swap_certificate(i, broken=(i == 5))) for i in range(1, 11)]
    schedule.append((seconds * 0.42, break_config))
    schedule.append((seconds * 0.63, restart_apiserver))
    for at, fault in sorted(schedule, key=lambda s: s[0]):
        delay = started + at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await fault()


async def report(deadline):
    minute = 0
    print(f"{'minute':>6} {'reviews':>8} {'errors':>6} {'p50_ms':>7} {'p99_ms':>7} {'max_ms':>7} {'rss_mib':>8}", flush=True)
    last_errors = 0
    while True:
        end = started + 60 * (minute + 1)
        await asyncio.sleep(max(0.0, min(end, deadline) - time.monotonic()))
        lat, stats["latencies"] = stats["latencies"], []
        minute += 1
        print(f"{minute:>6} {len(lat):>8} {stats['errors'] - last_errors:>6} {percentile(lat, .5) * 1e3:>7.2f} "
              f"{percentile(lat, .99) * 1e3:>7.2f} {max(lat, default=float('nan')) * 1e3:>7.2f} {rss_mib():>8.1f}",
              flush=True)
        last_errors = stats["errors"]
        if end >= deadline:
            return


async def main():
    deadline = started + seconds
    kinds = {}
    for route, name, _ in requests:
        kinds[route] = kinds.get(route, 0) + 1
    print(f"# {len(requests)} bodies ({', '.join(f'{n} {r}' for r, n in sorted(kinds.items()))}), "
          f"{rate:.0f} reviews/s on {CONNECTIONS} connections for {seconds:.0f} s", flush=True)
    loops = [asyncio.create_task(connection_loop(i, deadline)) for i in range(CONNECTIONS)]
    await asyncio.gather(report(deadline), faults(), *loops)
    values = await scrape_metrics()
    allowed = sum(1 for b in baseline.values() if b'"allowed":true' in b)
    patched = sum(1 for b in baseline.values() if b'"patch":' in b)
    print(f"# answers: {len(baseline)} distinct bodies answered, {allowed} allowed ({patched} with a patch), "
          f"{len(baseline) - allowed} denied")
    print(f"# reviews {stats['reviews']}, errors {stats['errors']} {errors_by_kind or ''}, "
          f"connections opened {stats['connects']}, distinct certificates served {len(stats['served_certs'])}")
    for which, body in first_difference.items():
        print(f"# answer changed for {requests[which][0]} {requests[which][1]}: {body}")
    print("# server counters: " + ", ".join(f"{k} {v:g}" for k, v in sorted(values.items()) if any(
        k.startswith(p) for p in ("gpuadmit_cert_reloads_total", "gpuadmit_config_reloads_total",
                                  "gpuadmit_watch_restarts_total", "gpuadmit_watch_relists_total",
                                  "gpuadmit_watch_failures_total", "gpuadmit_connections_closed_total",
                                  "gpuadmit_tls_handshake_failures_total", "gpuadmit_cluster_degraded"))))
    if checks_failed:
        print("# failed checks: " + "; ".join(checks_failed))
    return 1 if stats["errors"] or checks_failed else 0


sys.exit(asyncio.run(main()))
