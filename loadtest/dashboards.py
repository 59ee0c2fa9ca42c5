#!/usr/bin/env python3
"""The dashboards at scale: page times with 100,000 customers and a year of hourly
buckets, and ingest with dashboard traffic beside it.

Usage: python3 loadtest/dashboards.py [--quick]

On SQLite and on PostgreSQL (a fresh database each), with the release build:
  1. a creator with three meters and 10,000 customers made through the API (run.py's),
     then, with the daemon stopped, 90,000 more customers written to the database, three
     hours of usage in the current month for every customer, a year of hourly usage for
     500 of them, and the hourly rollups over all of them;
  2. the daemon restarted (time to ready noted), its owner, the platform owner and one
     heavy customer's portal signed in;
  3. each page fetched 30 times in a row on one connection: median, p95 and max ms;
  4. one durable event a request (wrk, 64 connections) alone, then with dashboard
     traffic beside it, in alternating rounds: (a) paced, 5 page loads a second (a team
     with dashboards open), and (b) flat out, one connection loading pages back to back.

Prerequisites: those of loadtest/run (cargo, wrk, psql and a PostgreSQL server at
STARYER_LOADTEST_PG). Writes loadtest/results/dashboards.json and .md (also printed).
"""

import http.client
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (run.py: the load test's building blocks)

CUSTOMERS = 100_000
HEAVY = 500
HOURS_A_YEAR = 8_760
PAGE_FETCHES = 30
ROUNDS = 2
PACED_PER_SECOND = 5
PASSWORD = "load test password"


def log(*args):
    run.log(*args)


def creator_id(slug_prefix="load-"):
    admin = run.Client(run.DAEMON_PORT, run.ADMIN)
    creators = admin.call("GET", "/v1/admin/creators")
    return [c for c in creators if c["slug"].startswith(slug_prefix)][-1]


def month_start(at):
    t = time.gmtime(at)
    return int(time.mktime((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, 0)) - time.timezone)


def seed_rows(creator, now):
    """The customers, buckets and rollups to add, as row tuples."""
    year_ago = now - HOURS_A_YEAR * 3_600
    this_month = month_start(now)
    hour_now = now - now % 3_600
    customers = [(creator, f"customer-{i}", "pro", year_ago + i * 300, None, None,
                  year_ago + i * 300, year_ago + i * 300)
                 for i in range(run.CUSTOMERS, CUSTOMERS)]
    buckets = []
    # Three hours this month for every customer (meters cycle), as if it used the API.
    for i in range(CUSTOMERS):
        for h in range(3):
            bucket = max(this_month, hour_now - (i % 200 + h) * 3_600)
            buckets.append((creator, f"customer-{i}", ("calls", "tokens", "seats")[h],
                            this_month, bucket, (i % 7 + 1) * 1_000_000))
    # A year of hours for the heavy ones, on `calls`, before this month.
    for i in range(HEAVY):
        for h in range(HOURS_A_YEAR):
            bucket = year_ago - year_ago % 3_600 + h * 3_600
            if bucket >= this_month:
                break
            buckets.append((creator, f"customer-{i}", "calls", month_start(bucket), bucket,
                            (h % 13 + 1) * 1_000_000))
    return customers, buckets


ROLLUPS = ("INSERT INTO usage_rollups (creator_id, meter_key, bucket_start, value) "
           "SELECT creator_id, meter_key, bucket_start, CAST(SUM(value) AS BIGINT) FROM usage_buckets "
           "GROUP BY creator_id, meter_key, bucket_start "
           "ON CONFLICT (creator_id, meter_key, bucket_start) DO UPDATE SET value = excluded.value")


def seed_sqlite(path, creator, now):
    customers, buckets = seed_rows(creator, now)
    db = sqlite3.connect(path)
    with db:
        db.executemany("INSERT INTO customers (creator_id, id, tier_key, assigned_at, email, "
                       "stripe_customer_id, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)",
                       customers)
        db.executemany("INSERT INTO usage_buckets (creator_id, customer_id, meter_key, period_start, "
                       "bucket_start, value) VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING", buckets)
        db.execute(ROLLUPS)
    db.execute("ANALYZE")
    db.close()
    return len(customers), len(buckets)


def seed_postgres(url, creator, now):
    customers, buckets = seed_rows(creator, now)

    def copy(table, columns, rows):
        text = "".join("\t".join("\\N" if v is None else str(v) for v in row) + "\n" for row in rows)
        subprocess.run(["psql", url, "-qc", f"COPY {table} ({columns}) FROM STDIN"],
                       input=text, text=True, check=True)

    copy("customers", "creator_id, id, tier_key, assigned_at, email, stripe_customer_id, "
         "created_at, updated_at", customers)
    # Through a staging table: the API's own hours may share keys with the seeded ones.
    text = "".join("\t".join(str(v) for v in row) + "\n" for row in buckets)
    subprocess.run(["psql", url, "-q", "-c", "CREATE TEMP TABLE b (LIKE usage_buckets)",
                    "-c", "COPY b FROM STDIN",
                    "-c", "INSERT INTO usage_buckets SELECT * FROM b ON CONFLICT DO NOTHING",
                    "-c", ROLLUPS, "-c", "ANALYZE"],
                   input=text, text=True, check=True)
    return len(customers), len(buckets)


class Browser:
    """One keep-alive connection with a cookie."""

    def __init__(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", run.DAEMON_PORT, timeout=60)
        self.cookie = ""

    def request(self, method, path, form=None):
        headers = {"Cookie": self.cookie}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            # The server closes idle keep-alive connections: reconnect once.
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", run.DAEMON_PORT, timeout=60)
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        payload = response.read()
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";")[0]
        return response.status, payload

    def timed(self, path):
        times = []
        for _ in range(PAGE_FETCHES):
            started = time.perf_counter()
            status, payload = self.request("GET", path)
            times.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"GET {path}: {status} {payload[:200]!r}")
        times.sort()
        return {"p50_ms": statistics.median(times), "p95_ms": times[int(len(times) * 0.95) - 1],
                "max_ms": times[-1], "bytes": len(payload)}


def sign_in(creator, secret):
    admin = run.Client(run.DAEMON_PORT, run.ADMIN)
    email = f"owner@{creator['slug']}.example"
    admin.call("POST", f"/v1/admin/creators/{creator['slug']}/users",
               {"email": email, "role": "owner", "password": PASSWORD})
    owner = Browser()
    status, _ = owner.request("POST", "/dashboard/sign-in", {"email": email, "password": PASSWORD})
    assert status == 303, status
    platform = Browser()
    status, _ = platform.request("POST", "/admin/sign-in", {"token": run.ADMIN})
    assert status == 303, status
    made = run.Client(run.DAEMON_PORT, secret).call(
        "POST", "/v1/customers/customer-7/sessions", {"scope": "portal"})
    portal = Browser()
    status, _ = portal.request("POST", "/portal/enter", {"token": made["token"]})
    assert status == 303, status
    return owner, platform, portal


def pages(secret, now):
    year_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 365 * 86_400))
    return [
        ("owner", "/dashboard"),
        ("owner", "/dashboard/customers"),
        ("owner", "/dashboard/customers?cursor=" + deep_cursor(secret)),
        ("owner", "/dashboard/customers?q=customer-9999"),
        ("owner", "/dashboard/customers?q=no-such-customer"),
        ("owner", "/dashboard/customers/customer-7"),
        ("owner", "/dashboard/tiers"),
        ("owner", "/dashboard/audit"),
        ("portal", "/portal"),
        ("platform", "/admin"),
        ("api", "/v1/customers?limit=100"),
        ("api", f"/v1/usage/series?meter=calls&granularity=day&from={year_ago}"),
        ("api", f"/v1/usage/series?meter=calls&customer_id=customer-7&from={year_ago}"),
    ]


def label(path):
    """A page's name in the results, the same on every run."""
    path = re.sub(r"cursor=[^&]+", "cursor=<page 500>", path)
    return re.sub(r"from=[^&]+", "from=<a year ago>", path)


def deep_cursor(secret):
    """The cursor of the 500th page of 100 (customers 50,000 in)."""
    client = run.Client(run.DAEMON_PORT, secret)
    cursor = None
    for _ in range(500):
        query = "/v1/customers?limit=100" + (f"&cursor={cursor}" if cursor else "")
        cursor = client.call("GET", query)["next_cursor"]
    return cursor


class ApiBrowser(Browser):
    def __init__(self, secret):
        super().__init__()
        self.secret = secret

    def request(self, method, path, form=None):
        headers = {"Authorization": f"Bearer {self.secret}"}
        try:
            self.conn.request(method, path, headers=headers)
            response = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", run.DAEMON_PORT, timeout=60)
            self.conn.request(method, path, headers=headers)
            response = self.conn.getresponse()
        return response.status, response.read()


def paced_pages(browser, paths, stop, per_second):
    """Page loads at a steady pace until `stop` is set."""
    i = 0
    while not stop.is_set():
        started = time.monotonic()
        browser.request("GET", paths[i % len(paths)])
        i += 1
        time.sleep(max(0.0, 1 / per_second - (time.monotonic() - started)))


def ingest_rounds(secret, owner):
    """One durable event a request: alone, then with dashboard traffic beside, alternating."""
    paths = ["/dashboard", "/dashboard/customers", "/dashboard/customers/customer-7",
             "/dashboard/tiers", "/dashboard/customers?q=customer-42"]
    results = {"alone": [], "paced": [], "flat_out": []}
    for _ in range(ROUNDS):
        results["alone"].append(ingest(secret))
        stop = threading.Event()
        pacer = threading.Thread(target=paced_pages, args=(owner, paths, stop, PACED_PER_SECOND))
        pacer.start()
        results["paced"].append(ingest(secret))
        stop.set()
        pacer.join()
        env_paths = ",".join(paths)
        beside = run.subprocess.Popen(
            ["wrk", "-t1", "-c1", f"-d{run.DURATION}s", "--timeout", "10s", "-s", run.LUA,
             f"http://127.0.0.1:{run.DAEMON_PORT}"],
            env=dict(os.environ, MODE="pages", PAGES=env_paths, COOKIE=owner.cookie),
            stdout=subprocess.PIPE, text=True)
        flat = ingest(secret)
        out, _ = beside.communicate()
        flat["pages_per_s"] = float(out.split("Requests/sec:")[1].split()[0])
        results["flat_out"].append(flat)
    return results


def ingest(secret):
    process = run.wrk_command(run.DAEMON_PORT, "event", secret, run.CONNECTIONS, run.DURATION,
                              customers=CUSTOMERS)
    return run.wrk_result("event", run.CONNECTIONS, process)


def measure(name, database_url, sqlite_path=None):
    data_dir = tempfile.mkdtemp(prefix=f"staryer-dash-{name}-")
    daemon, _ = run.start_daemon(data_dir, database_url)
    try:
        secret, _, _ = run.setup_creator()
        creator = creator_id()
    finally:
        run.stop(daemon)
    now = int(time.time())
    log(f"{name}: seeding {CUSTOMERS:,} customers and a year of hours for {HEAVY}…")
    started = time.monotonic()
    if sqlite_path:
        added = seed_sqlite(sqlite_path, creator["id"], now)
    else:
        added = seed_postgres(database_url, creator["id"], now)
    log(f"{name}: seeded {added[0]:,} customers and {added[1]:,} hours in "
        f"{time.monotonic() - started:.0f} s")
    daemon, ready_after = run.start_daemon(data_dir, database_url)
    try:
        owner, platform, portal = sign_in(creator, secret)
        browsers = {"owner": owner, "platform": platform, "portal": portal,
                    "api": ApiBrowser(secret)}
        timings = {}
        for who, path in pages(secret, now):
            timings[label(path)] = browsers[who].timed(path)
            log(f"{name}: {label(path)} {timings[label(path)]}")
        rounds = ingest_rounds(secret, owner)
    finally:
        run.stop(daemon)
    return {"ready_after_s": ready_after, "pages": timings, "ingest": rounds,
            "seeded": {"customers": CUSTOMERS, "hours": added[1]}}


def table(results):
    lines = ["| page | " + " | ".join(f"{db} p50 ms | {db} p95 ms" for db in results) + " |",
             "|---|" + "---:|---:|" * len(results)]
    first = next(iter(results.values()))
    for path in first["pages"]:
        cells = " | ".join(f"{r['pages'][path]['p50_ms']:.1f} | {r['pages'][path]['p95_ms']:.1f}"
                           for r in results.values())
        lines.append(f"| `{path}` | {cells} |")
    lines += ["", "| ingest, 1 event a request, 64 connections | " +
              " | ".join(f"{db} events/s | {db} ratio" for db in results) + " |",
              "|---|" + "---:|---:|" * len(results)]
    for kind, label in [("alone", "alone"), ("paced", f"with {PACED_PER_SECOND} page loads/s beside"),
                        ("flat_out", "with 1 connection of page loads beside, flat out")]:
        cells = []
        for r in results.values():
            mean = statistics.mean(x["rps"] for x in r["ingest"][kind])
            alone = statistics.mean(x["rps"] for x in r["ingest"]["alone"])
            cells.append(f"{mean:,.0f} | {mean / alone:.2f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for db, r in results.items():
        pages_s = [x["pages_per_s"] for x in r["ingest"]["flat_out"]]
        lines.append(f"\n{db}: ready {r['ready_after_s']:.1f} s after start with {CUSTOMERS:,} "
                     f"customers; flat-out page loads ran at {statistics.mean(pages_s):.0f}/s")
    return "\n".join(lines)


def main():
    run.build()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dash.db")
        results["sqlite"] = measure("sqlite", f"sqlite://{path}?mode=rwc", sqlite_path=path)
    name, database = run.fresh_pg_database()
    try:
        results["postgres"] = measure("postgres", database)
    finally:
        subprocess.run(["psql", run.PG_SERVER, "-qc", f"DROP DATABASE IF EXISTS {name}"])
    os.makedirs(run.RESULTS, exist_ok=True)
    with open(os.path.join(run.RESULTS, "dashboards.json"), "w") as out:
        json.dump({"machine": run.machine(), "results": results}, out, indent=2)
    text = table(results)
    with open(os.path.join(run.RESULTS, "dashboards.md"), "w") as out:
        out.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
