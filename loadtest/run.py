#!/usr/bin/env python3
"""Staryer's load test: one command, bounded in time, loopback only.

Usage: loadtest/run [--quick]      (or: python3 loadtest/run.py [--quick])
       loadtest/run --help

Builds in release, then in one run measures:
  1. the floor: loadtest/floor.rs (bare actix-web, same JSON, fixed answer, same workers);
  2. POST /v1/check;  3. POST /v1/events, one event (durable);
  4. POST /v1/events, batches of 100, without and with idempotency keys;
  5. GET /v1/embed/{key}, a pricing table under a running experiment (1,000 returning
     visitors), against the floor's GET of a fixed body of the same size; and one event a
     request again with 8 connections of those GETs beside it (ingest's share kept);
  6. ingest with every integration on (notices by email, a webhook endpoint, PostHog,
     all answered by the floor's catch-all) against the same with them off, over 1,000
     customers capped at 10 with overage, so that every customer crosses its thresholds
     and the outbox is busy during the run (two rounds, off and on alternating);
on SQLite and on PostgreSQL, with a creator of 10,000 customers and three meters, driven
by wrk from a second process. Then peak RSS, memory per live counter with 1,000,000
counters, and start-to-ready time with 1,000,000 counters in the database.

Options:
  --quick      a shorter pass: 3 s per wrk run and 100,000 counters (about three
               minutes instead of about ten)
  -h, --help   print this text and exit

Prerequisites:
  - cargo: the daemon and loadtest/floor.rs are built with `cargo build --release`;
  - wrk: loadtest/run installs it with `apt-get install wrk` when it is missing (as
    root); run.py itself stops when wrk is missing;
  - psql, and a PostgreSQL server reachable at STARYER_LOADTEST_PG whose user may
    CREATE DATABASE (each run makes its databases and drops them at the end);
  - free ports 18181 and 18182 on 127.0.0.1: everything runs over loopback only.

Environment:
  STARYER_LOADTEST_PG  PostgreSQL server URL
                       (default postgres://postgres@127.0.0.1:5432/postgres)
  DURATION             seconds per wrk run (default 10; 3 with --quick)

Writes loadtest/results/latest.json, loadtest/results/latest.md (the table, also printed)
and loadtest/results/chart.svg (throughput and p99 against connections). BENCHMARKS.md
holds the numbers of a full run.
"""

import http.client
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
RESULTS = os.path.join(ROOT, "loadtest", "results")
LUA = os.path.join(ROOT, "loadtest", "staryer.lua")
PG_SERVER = os.environ.get("STARYER_LOADTEST_PG", "postgres://postgres@127.0.0.1:5432/postgres")


def parse_arguments(arguments):
    """`--quick` or nothing; `-h`/`--help` prints the usage and exits 0; anything else
    prints it to stderr and exits 2. Runs before anything is built or started."""
    if any(arg in ("-h", "--help") for arg in arguments):
        print(__doc__.strip())
        sys.exit(0)
    unknown = [arg for arg in arguments if arg != "--quick"]
    if unknown:
        print(f"loadtest/run: unknown argument {unknown[0]!r}\n\n{__doc__.strip()}", file=sys.stderr)
        sys.exit(2)
    return "--quick" in arguments


QUICK = parse_arguments(sys.argv[1:])
DURATION = int(os.environ.get("DURATION", "3" if QUICK else "10"))
CONNECTIONS = 64
SWEEP = [1, 4, 16, 64, 256]
CUSTOMERS = 10_000
MILLION = 100_000 if QUICK else 1_000_000
WORKERS = 2
ADMIN = "adm_loadtest"
DAEMON_PORT, FLOOR_PORT = 18181, 18182


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def build():
    log("building in release…")
    subprocess.run(["cargo", "build", "--release", "--bin", "staryer", "--example", "floor"],
                   cwd=ROOT, check=True)


class Client:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1."""

    def __init__(self, port, token):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.token = token

    def call(self, method, path, body=None, expect=(200, 201)):
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        data = None if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            # The server closes idle keep-alive connections: reconnect once.
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
        payload = response.read()
        if response.status not in expect:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
        return json.loads(payload) if payload else None


def wait_ready(port, timeout=120):
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError("the daemon never became ready")


def start_daemon(data_dir, database_url, settings=None):
    env = dict(os.environ, STARYER__DATA_DIR=data_dir, STARYER__DATABASE__URL=database_url,
               STARYER__SERVER__BIND=f"127.0.0.1:{DAEMON_PORT}", STARYER__ADMIN__TOKEN=ADMIN,
               STARYER__SERVER__WORKERS=str(WORKERS), RUST_LOG="warn", **(settings or {}))
    process = subprocess.Popen([os.path.join(TARGET, "release/staryer")], env=env)
    ready_after = wait_ready(DAEMON_PORT)
    return process, ready_after


def stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def setup_creator():
    admin = Client(DAEMON_PORT, ADMIN)
    created = admin.call("POST", "/v1/admin/creators", {"slug": f"load-{int(time.time())}"})
    creator = Client(DAEMON_PORT, created["secret_key"])
    for key, aggregation in [("calls", "count"), ("tokens", "sum"), ("seats", "max")]:
        creator.call("POST", "/v1/meters", {"key": key, "aggregation": aggregation, "reset": "month"})
    big = {"limit": 1_000_000_000_000, "on_exceed": "block"}
    creator.call("POST", "/v1/tiers", {
        "key": "pro", "name": "Pro", "default": True,
        "price": {"amount": 2900, "currency": "usd", "interval": "month"},
        "caps": {"calls": big, "tokens": big, "seats": big}})
    for i in range(CUSTOMERS):
        creator.call("PUT", f"/v1/customers/customer-{i}", {"tier": "pro"})
    # A pricing table with two versions under a running experiment (the widget's load).
    table_config = {"tiers": ["pro"], "texts": {"title": "Plans"},
                    "success_url": "https://load.example/thanks",
                    "cancel_url": "https://load.example/pricing"}
    creator.call("POST", "/v1/embeds", {"key": "pricing", "kind": "pricing_table",
                                         "config": table_config})
    creator.call("POST", "/v1/embeds/pricing/versions",
                 {"config": dict(table_config, texts={"title": "Ship faster"})})
    creator.call("POST", "/v1/experiments", {"key": "headline", "embed": "pricing", "variants": [
        {"key": "control", "version": 1, "weight": 0.5},
        {"key": "ship", "version": 2, "weight": 0.5}]})
    creator.call("POST", "/v1/experiments/headline/start")
    return created["secret_key"], created["publishable_key"], creator


WRK_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def wrk_command(port, mode, key, connections, duration, publishable="none", customers=None):
    """The wrk process of one run, started."""
    threads = min(2, connections)
    env = dict(os.environ, MODE=mode, STARYER_KEY=key, STARYER_PK=publishable,
               CUSTOMERS=str(customers or CUSTOMERS), RUN=f"{time.time_ns()}")
    return subprocess.Popen(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
         "--latency", "-s", LUA, f"http://127.0.0.1:{port}"],
        env=env, stdout=subprocess.PIPE, text=True)


def wrk(port, mode, key, connections=CONNECTIONS, duration=DURATION, publishable="none",
        customers=None):
    return wrk_result(mode, connections,
                      wrk_command(port, mode, key, connections, duration, publishable, customers))


def wrk_result(mode, connections, process):
    out, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk {mode} failed")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    latency = {}
    for pct, value, unit in WRK_LATENCY.findall(out):
        latency[pct] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    events = rps * (100 if mode.startswith("batch") else 1)
    return {"mode": mode, "connections": connections, "rps": rps, "events_per_s": events,
            "p50_ms": latency.get("50"), "p99_ms": latency.get("99"),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else None}


MODES = ["check", "event", "batch", "batch_keys", "embed"]
# Connections of widget GETs beside ingest: a site's steady widget traffic, not a flood.
BESIDE_CONNECTIONS = 8


def measure_floor():
    log("floor…")
    floor = subprocess.Popen([os.path.join(TARGET, "release/examples/floor"),
                              f"127.0.0.1:{FLOOR_PORT}", str(WORKERS)])
    time.sleep(0.5)
    try:
        runs = {mode: wrk(FLOOR_PORT, mode, "none") for mode in ["check", "event", "batch", "embed"]}
        runs["batch_keys"] = wrk(FLOOR_PORT, "batch_keys", "none")
        sweep = [wrk(FLOOR_PORT, "check", "none", c, max(2, DURATION // 2)) for c in SWEEP]
    finally:
        stop(floor)
    return runs, sweep


def load_counters(creator, count):
    """Adds `count` live counters: new customers × 3 meters, in batches of 999 events."""
    meters = ["calls", "tokens", "seats"]
    customers = count // 3
    per_batch = 333
    for start in range(0, customers, per_batch):
        events = [{"customer_id": f"mem-{i}", "meter": m, "value": 1}
                  for i in range(start, min(start + per_batch, customers)) for m in meters]
        creator.call("POST", "/v1/events", json.dumps({"events": events}))


def measure_database(name, fresh_database):
    """The load runs on one fresh database; memory and restart on a second one, so that
    neither the runs' allocator slack nor their idempotency keys blur the per-counter
    figure. `fresh_database()` answers a new database URL ("" for SQLite in the data dir)."""
    log(f"{name}…")
    result = {"database": name}
    data_dir = tempfile.mkdtemp(prefix="staryer-load-")
    daemon, _ = start_daemon(data_dir, fresh_database())
    try:
        key, publishable, _ = setup_creator()
        result["runs"] = {mode: wrk(DAEMON_PORT, mode, key, publishable=publishable)
                          for mode in MODES}
        # Ingest with widget traffic beside it, in the same seconds.
        beside = wrk_command(DAEMON_PORT, "embed", key, BESIDE_CONNECTIONS, DURATION, publishable)
        ingest = wrk(DAEMON_PORT, "event", key)
        result["event_beside_embed"] = ingest
        result["embed_beside_event"] = wrk_result("embed", BESIDE_CONNECTIONS, beside)
        if name == "sqlite":
            result["sweep"] = [wrk(DAEMON_PORT, "check", key, c, max(2, DURATION // 2)) for c in SWEEP]
        result["peak_rss_mib"] = rss_kib(daemon.pid, "VmHWM") / 1024
    finally:
        stop(daemon)
        shutil.rmtree(data_dir, ignore_errors=True)

    data_dir = tempfile.mkdtemp(prefix="staryer-mem-")
    database_url = fresh_database()
    daemon, _ = start_daemon(data_dir, database_url)
    try:
        _, _, creator = setup_creator()
        admin = Client(DAEMON_PORT, ADMIN)
        live_before = admin.call("GET", "/v1/admin/stats")["live_counters"]
        rss_before = rss_kib(daemon.pid)
        log(f"{name}: loading {MILLION} counters…")
        started = time.monotonic()
        load_counters(creator, MILLION)
        result["load_seconds"] = time.monotonic() - started
        live_after = admin.call("GET", "/v1/admin/stats")["live_counters"]
        result["live_counters"] = live_after
        result["bytes_per_counter"] = (rss_kib(daemon.pid) - rss_before) * 1024 / max(1, live_after - live_before)
        result["rss_with_counters_mib"] = rss_kib(daemon.pid) / 1024
    finally:
        stop(daemon)
    daemon, ready_after = start_daemon(data_dir, database_url)
    result["restart_to_ready_s"] = ready_after
    stop(daemon)
    shutil.rmtree(data_dir, ignore_errors=True)
    return result


# Customers of the integrations runs: few enough that each crosses its thresholds.
NOTIFIED_CUSTOMERS = 1_000
SERVICES_PORT = 18183


def integration_settings(on):
    """Every integration on, pointed at the floor's catch-all; or nothing."""
    if not on:
        return {}
    services = f"http://127.0.0.1:{SERVICES_PORT}"
    return {"STARYER__RESEND__API_KEY": "re_load", "STARYER__RESEND__BASE_URL": services,
            "STARYER__POSTHOG__API_KEY": "phc_load", "STARYER__POSTHOG__HOST": services,
            "STARYER__WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true"}


def setup_notified_creator(on):
    """A creator whose customers each cross warn_at and start overage within a run, with a
    notice address and (integrations on) a webhook endpoint for every event type."""
    admin = Client(DAEMON_PORT, ADMIN)
    created = admin.call("POST", "/v1/admin/creators", {"slug": f"notified-{time.time_ns()}"})
    creator = Client(DAEMON_PORT, created["secret_key"])
    small = {"limit": 10, "on_exceed": "overage"}
    for key, aggregation in [("calls", "count"), ("tokens", "sum"), ("seats", "max")]:
        creator.call("POST", "/v1/meters", {"key": key, "aggregation": aggregation, "reset": "month"})
    creator.call("POST", "/v1/tiers", {
        "key": "metered", "name": "Metered", "default": True,
        "price": {"amount": 900, "currency": "usd", "interval": "month"},
        "caps": {"calls": small, "tokens": small, "seats": small}})
    for i in range(NOTIFIED_CUSTOMERS):
        creator.call("PUT", f"/v1/customers/customer-{i}",
                     {"tier": "metered", "email": f"customer-{i}@load.example"})
    creator.call("PUT", "/v1/notices", {"notice_email": "ops@load.example"})
    if on:
        creator.call("POST", "/v1/webhook_endpoints", {
            "url": f"http://127.0.0.1:{SERVICES_PORT}/hook",
            "events": ["usage.warning", "usage.limit_reached", "usage.overage_started"]})
    return created["secret_key"]


def outbox_sent(port):
    """Messages the daemon's outbox has delivered so far, all integrations."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    return sum(float(v) for v in re.findall(r"^staryer_outbox_sent_total\{[^}]*\} ([\d.e+]+)$", text, re.M))


def measure_integrations(name, fresh_database):
    """One event a request and batches of 100, with every integration off and on, two
    rounds alternating; each run on a fresh daemon and database."""
    log(f"{name}: integrations off and on…")
    services = subprocess.Popen([os.path.join(TARGET, "release/examples/floor"),
                                 f"127.0.0.1:{SERVICES_PORT}", "1"])
    runs = {"off": {"event": [], "batch": []}, "on": {"event": [], "batch": []}}
    delivered = 0.0
    try:
        for _ in range(2):
            for state in ["off", "on"]:
                data_dir = tempfile.mkdtemp(prefix="staryer-integrations-")
                daemon, _ = start_daemon(data_dir, fresh_database(), integration_settings(state == "on"))
                try:
                    key = setup_notified_creator(state == "on")
                    for mode in ["event", "batch"]:
                        runs[state][mode].append(
                            wrk(DAEMON_PORT, mode, key, customers=NOTIFIED_CUSTOMERS))
                    if state == "on":
                        delivered += outbox_sent(DAEMON_PORT)
                finally:
                    stop(daemon)
                    shutil.rmtree(data_dir, ignore_errors=True)
    finally:
        stop(services)
    mean = lambda rs: sum(r["rps"] for r in rs) / len(rs)
    return {"runs": runs, "delivered_during_on_runs": delivered,
            "ratio": {mode: mean(runs["on"][mode]) / mean(runs["off"][mode])
                      for mode in ["event", "batch"]}}


def fresh_pg_database():
    name = f"staryer_load_{time.time_ns()}"
    subprocess.run(["psql", PG_SERVER, "-qc", f"CREATE DATABASE {name}"], check=True)
    return name, PG_SERVER.rsplit("/", 1)[0] + "/" + name


def machine():
    cores = os.cpu_count()
    with open("/proc/meminfo") as meminfo:
        mem_kib = int(meminfo.readline().split()[1])
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cores": cores, "memory_gib": round(mem_kib / 1024 / 1024, 1), "cpu": model,
            "kernel": platform.release()}


def table(floor, databases):
    names = {"check": "POST /v1/check", "event": "POST /v1/events, 1 event, durable",
             "batch": "POST /v1/events, 100 events, no keys",
             "batch_keys": "POST /v1/events, 100 events, idempotency keys",
             "embed": "GET /v1/embed/{key}, experiment running"}
    lines = ["| run | requests/s | events/s | p50 ms | p99 ms | ratio to floor | non-2xx |",
             "|---|---:|---:|---:|---:|---:|---:|"]

    def row(label, run, base):
        ratio = f"{run['rps'] / base['rps']:.2f}" if base else "1.00"
        lines.append(f"| {label} | {run['rps']:,.0f} | {run['events_per_s']:,.0f} | "
                     f"{run['p50_ms']:.3f} | {run['p99_ms']:.3f} | {ratio} | {run['non_2xx']} |")

    for mode in ["check", "event", "batch"]:
        row(f"floor: {names[mode].replace(', durable', '')}", floor[mode], None)
    row("floor: GET of a fixed widget answer", floor["embed"], None)
    for db in databases:
        for mode in MODES:
            row(f"{db['database']}: {names[mode]}", db["runs"][mode],
                floor["batch" if mode.startswith("batch") else mode])
        # The ratio here is to the same daemon's ingest alone.
        row(f"{db['database']}: {names['event']}, {BESIDE_CONNECTIONS} connections of widget "
            "GETs beside (ratio: to ingest alone)", db["event_beside_embed"], db["runs"]["event"])
    lines.append("")
    lines.append("| database | integrations | 1 event a request, requests/s | 100 a request, events/s | "
                 "ratio on/off (1 event; 100) | messages delivered during the runs |")
    lines.append("|---|---|---:|---:|---:|---:|")
    for db in databases:
        integrations = db["integrations"]
        for state in ["off", "on"]:
            runs = integrations["runs"][state]
            event = " / ".join(f"{r['rps']:,.0f}" for r in runs["event"])
            batch = " / ".join(f"{r['events_per_s']:,.0f}" for r in runs["batch"])
            ratio = (f"{integrations['ratio']['event']:.2f}; {integrations['ratio']['batch']:.2f}"
                     if state == "on" else "")
            sent = f"{integrations['delivered_during_on_runs']:,.0f}" if state == "on" else "0"
            lines.append(f"| {db['database']} | {state} | {event} | {batch} | {ratio} | {sent} |")
    lines.append("")
    lines.append("| database | live counters | bytes per counter | RSS with them, MiB | peak RSS in the load runs, MiB | restart to ready s | load of counters s |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for db in databases:
        lines.append(f"| {db['database']} | {db['live_counters']:,} | {db['bytes_per_counter']:.0f} | "
                     f"{db['rss_with_counters_mib']:.0f} | {db['peak_rss_mib']:.0f} | "
                     f"{db['restart_to_ready_s']:.2f} | {db['load_seconds']:.1f} |")
    return "\n".join(lines)


def chart(floor_sweep, daemon_sweep, path):
    """Two panels: requests/s and p99 against connections (log scale), floor vs daemon."""
    width, height, pad = 900, 380, 60
    panel = (width - 3 * pad) / 2
    xs = SWEEP

    def x_of(c, left):
        import math
        return left + (math.log(c) - math.log(xs[0])) / (math.log(xs[-1]) - math.log(xs[0])) * panel

    def polyline(points, color):
        return f'<polyline fill="none" stroke="{color}" stroke-width="2" points="' + \
            " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>' + "".join(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in points)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>']
    for index, (field, title) in enumerate([("rps", "POST /v1/check requests/s"),
                                            ("p99_ms", "POST /v1/check p99 latency (ms)")]):
        left = pad + index * (panel + pad)
        top, bottom = 40, height - 70
        top_value = max(r[field] for r in floor_sweep + daemon_sweep) * 1.1
        y_of = lambda v: bottom - v / top_value * (bottom - top)
        parts.append(f'<text x="{left}" y="25" font-weight="bold">{title}</text>')
        parts.append(f'<line x1="{left}" y1="{bottom}" x2="{left + panel}" y2="{bottom}" stroke="black"/>')
        parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="black"/>')
        for c in xs:
            parts.append(f'<text x="{x_of(c, left):.1f}" y="{bottom + 16}" text-anchor="middle">{c}</text>')
        parts.append(f'<text x="{left + panel / 2}" y="{bottom + 34}" text-anchor="middle">connections</text>')
        for step in range(5):
            value = top_value * step / 4
            label = f"{value:,.0f}" if field == "rps" else f"{value:.2f}"
            parts.append(f'<text x="{left - 6}" y="{y_of(value) + 4:.1f}" text-anchor="end">{label}</text>')
        for sweep, color in [(floor_sweep, "#888"), (daemon_sweep, "#d33")]:
            parts.append(polyline([(x_of(r["connections"], left), y_of(r[field])) for r in sweep], color))
    parts.append(f'<text x="{pad}" y="{height - 8}" fill="#888">grey: floor (bare actix-web)</text>')
    parts.append(f'<text x="{pad + 220}" y="{height - 8}" fill="#d33">red: staryer on SQLite</text>')
    parts.append("</svg>")
    with open(path, "w") as out:
        out.write("\n".join(parts))


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: run loadtest/run, which installs it")
    build()
    os.makedirs(RESULTS, exist_ok=True)
    floor, floor_sweep = measure_floor()
    databases = [measure_database("sqlite", lambda: "")]
    databases[0]["integrations"] = measure_integrations("sqlite", lambda: "")
    made = []

    def fresh_pg():
        name, url = fresh_pg_database()
        made.append(name)
        return url

    try:
        databases.append(measure_database("postgres", fresh_pg))
        databases[1]["integrations"] = measure_integrations("postgres", fresh_pg)
    finally:
        for name in made:
            subprocess.run(["psql", PG_SERVER, "-qc", f"DROP DATABASE IF EXISTS {name}"])
    results = {"machine": machine(), "duration_s": DURATION, "connections": CONNECTIONS,
               "workers": WORKERS, "quick": QUICK, "floor": floor, "floor_sweep": floor_sweep,
               "databases": databases, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with open(os.path.join(RESULTS, "latest.json"), "w") as out:
        json.dump(results, out, indent=2)
    chart(floor_sweep, databases[0]["sweep"], os.path.join(RESULTS, "chart.svg"))
    text = table(floor, databases)
    m = results["machine"]
    with open(os.path.join(RESULTS, "latest.md"), "w") as out:
        out.write(f"Run {results['when']} on {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, "
                  f"wrk -t2 -c{CONNECTIONS} -d{DURATION}s, {WORKERS} workers each\n\n{text}\n")
    print(text)


if __name__ == "__main__":
    main()
