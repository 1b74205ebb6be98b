"""The report of loadtest/soak.sh: reads a soak's result directory, prints the report, and exits
1 when the soak failed (0 when it passed).

    python3 soak_report.py OUT TOOL SOAK RATE WARMUP STATUS_A DRAIN_MS ALIVE_B STATUS_LOAD

OUT is the result directory; TOOL is oha or k6; SOAK (seconds), RATE (requests/s) and WARMUP
(seconds before the RSS baseline) are the soak's settings; STATUS_A is splitgate A's exit status
after its SIGTERM and DRAIN_MS how long it took to exit; ALIVE_B is yes/no (splitgate B still
running at the end); STATUS_LOAD is the load tool's exit status.

Reads from OUT: start-epoch, load-start-epoch, sigterm-epoch; oha.json + oha.db or k6.csv (client
side); a/access.log and b/access.log (server side); a/metrics-before-sigterm.txt and
b/metrics-end.txt (reloads, shadow outcomes, upstream errors); reloads-written, flappy-events,
forwarder.json, rss.csv, a/rss-at-sigterm, b/rss-at-end, h2load.log. Failures: any unanswered or
non-200 answer (503 from load shedding is allowed and listed), a rejected reload, A not exiting 0,
B dying, RSS growth of 10% or more after warm-up, the load tool failing, any HTTP/2 request not
answered 200. The last line is `RESULT: PASS` or `RESULT: FAIL` followed by the failures.
Standard library only.
"""
import csv, json, math, os, re, sqlite3, sys
from collections import Counter, defaultdict

out, tool, soak, rate, warmup, status_a, drain_ms, alive_b, status_load = sys.argv[1:]
soak, rate, warmup = int(soak), int(rate), int(warmup)
start = int(open(f"{out}/start-epoch").read())
load_start = float(open(f"{out}/load-start-epoch").read())
restart_at = float(open(f"{out}/sigterm-epoch").read()) - load_start  # SIGTERM to A, into the load
failures = []


def p99(values):
    values = sorted(values)
    return values[max(0, math.ceil(0.99 * len(values)) - 1)] if values else float("nan")


# Client side.
statuses, errors, per_minute = Counter(), Counter(), defaultdict(list)
if tool == "oha":
    report = json.load(open(f"{out}/oha.json"))
    statuses.update({int(k): v for k, v in report["statusCodeDistribution"].items()})
    errors.update(report["errorDistribution"])
    db = sqlite3.connect(f"{out}/oha.db")
    per_second = Counter()
    for begun, duration in db.execute("select start_latency_correction, duration from oha"):
        per_minute[int(begun // 60)].append(duration * 1000)
        per_second[int(begun)] += 1
    # oha paces starts at exactly `rate` per second: a second with fewer answers is where the
    # unanswered requests were sent.
    # Pacing jitter moves a start across a second boundary now and then (499 next to 501): cancel
    # such neighbours before reading a deficit as lost requests.
    deficit = {s: rate - per_second.get(s, 0) for s in range(soak)}
    for s in range(soak - 1):
        for a, b in ((s, s + 1), (s + 1, s)):
            moved = min(max(deficit[a], 0), max(-deficit[b], 0))
            deficit[a] -= moved
            deficit[b] += moved
    gaps = {s: d for s, d in deficit.items() if d > 0}
else:
    t0, gaps = None, {}  # gaps: second of the load -> requests without an answer
    with open(f"{out}/k6.csv") as f:
        for row in csv.DictReader(f):
            if row["metric_name"] != "http_reqs":
                continue
            t = float(row["timestamp"])
            t0 = t if t0 is None else t0
            status = int(row.get("status") or 0)
            if status:
                statuses[status] += 1
            else:
                errors[row.get("error") or row.get("error_code") or "no response"] += 1
                gaps[int(t - load_start)] = gaps.get(int(t - load_start), 0) + 1
    with open(f"{out}/k6.csv") as f:
        for row in csv.DictReader(f):
            if row["metric_name"] == "http_req_duration" and int(row.get("status") or 0):
                per_minute[int((float(row["timestamp"]) - t0) // 60)].append(float(row["metric_value"]))
answered = sum(statuses.values())
sent = answered + sum(errors.values())

# Server side: both processes' access logs.
server_status, server_errors, server_minute = Counter(), Counter(), defaultdict(list)
first_ms = None
for p in ("a", "b"):
    path = f"{out}/{p}/access.log"
    if not os.path.exists(path):
        continue
    for line in open(path):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("routeKey") != "POST /recommend":
            continue
        server_status[e["status"]] += 1
        if e.get("error"):
            server_errors[e["error"]] += 1
        first_ms = e["requestTimeEpoch"] if first_ms is None else min(first_ms, e["requestTimeEpoch"])
        server_minute[e["requestTimeEpoch"]].append(e["latencyMs"])
by_minute_server = defaultdict(list)
for t, values in server_minute.items():
    by_minute_server[(t - first_ms) // 60000].extend(values)


def metrics(path):
    series = {}
    if os.path.exists(path):
        for line in open(path):
            m = re.match(r"^(splitgate_\w+(?:\{[^}]*\})?) (\S+)$", line.strip())
            if m:
                series[m.group(1)] = float(m.group(2))
    return series


ma, mb = metrics(f"{out}/a/metrics-before-sigterm.txt"), metrics(f"{out}/b/metrics-end.txt")

print(f"\n=== splitgate soak: {tool}, {rate} req/s target, {soak} s, rolling restart at +{restart_at:.1f} s ===")
print(f"requests sent {sent}, answered {answered}, lost {sent - answered}")
print(f"client status codes: {dict(sorted(statuses.items()))}")
print(f"client errors by kind: {dict(errors) or 'none'}")
print(f"server answers (access logs A+B): {sum(server_status.values())} {dict(sorted(server_status.items()))}")
print(f"server errors by code: {dict(server_errors) or 'none'}")
not_ok = {s: n for s, n in statuses.items() if s != 200}
shed = not_ok.pop(503, 0)
if shed:
    print(f"503 answers (load shedding / draining, allowed): {shed}")
if errors:
    failures.append(f"{sum(errors.values())} request(s) got no answer: {dict(errors)}")
    where = ", ".join(f"{n} at +{s} s" for s, n in gaps.items())
    near = all(abs(s - restart_at) <= 2 for s in gaps)
    print(f"unanswered requests were sent at: {where or 'unknown'}"
          + (" (within 2 s of the rolling restart's SIGTERM)" if gaps and near else ""))
if not_ok:
    failures.append(f"non-200 answers: {not_ok}")

for name, m in (("A (until SIGTERM)", ma), ("B (until the end)", mb)):
    applied = m.get('splitgate_config_reloads_total{result="applied"}', 0)
    rejected = m.get('splitgate_config_reloads_total{result="rejected"}', 0)
    shadow = {k.split("{", 1)[1].rstrip("}"): int(v) for k, v in m.items() if k.startswith("splitgate_shadow_requests_total{")}
    upstream = {k.split("{", 1)[1].rstrip("}"): int(v) for k, v in m.items() if k.startswith("splitgate_upstream_errors_total{") and v}
    print(f"splitgate {name}: reloads applied {int(applied)}, rejected {int(rejected)}; shadow {shadow}; upstream errors {upstream or 'none'}")
    if rejected:
        failures.append(f"splitgate {name}: {int(rejected)} reload(s) rejected")
try:
    written = open(f"{out}/reloads-written").read().strip()
except OSError:
    written = "?"
print(f"config rewrites: {written}; flappy events: {open(f'{out}/flappy-events').read().split(chr(10))[:-1] if os.path.exists(f'{out}/flappy-events') else []}")
print(f"splitgate A: SIGTERM -> exit status {status_a} after {drain_ms} ms; B alive at the end: {alive_b}")
if status_a != "0":
    failures.append(f"splitgate A exited with {status_a} after SIGTERM")
if alive_b != "yes":
    failures.append("splitgate B died during the run")
try:
    print(f"forwarder: {open(f'{out}/forwarder.json').read()}")
except OSError:
    pass

rss = defaultdict(list)
with open(f"{out}/rss.csv") as f:
    for t, p, kb in csv.reader(f):
        rss[p].append((int(t), int(kb)))
ends = {"a": f"{out}/a/rss-at-sigterm", "b": f"{out}/b/rss-at-end"}
starts = {"a": 0, "b": int(restart_at + load_start - start)}
for p in ("a", "b"):
    samples = rss.get(p, [])
    warm = [kb for t, kb in samples if t >= starts[p] + warmup]
    end = int(open(ends[p]).read().strip() or 0) if os.path.exists(ends[p]) else 0
    if not warm or not end:
        print(f"RSS {p.upper()}: not enough samples ({samples})")
        continue
    growth = (end - warm[0]) / warm[0] * 100
    print(f"RSS {p.upper()}: {samples[0][1] / 1024:.1f} MiB at start, {warm[0] / 1024:.1f} MiB after {warmup} s warm-up, "
          f"{end / 1024:.1f} MiB at its end ({growth:+.1f}%), peak {max(kb for _, kb in samples) / 1024:.1f} MiB")
    if growth >= 10:
        failures.append(f"RSS of {p.upper()} grew {growth:.1f}% (limit 10%)")

print("p99 per minute (ms): minute, client (oha/k6, latency-corrected), server (access log), requests")
for minute in sorted(set(per_minute) | set(by_minute_server)):
    c, s = per_minute.get(minute, []), by_minute_server.get(minute, [])
    print(f"  {minute:>3}  {p99(c):8.2f}  {p99(s):8.3f}  {len(c)}")
if status_load != "0":
    failures.append(f"the load tool exited with {status_load}")
h2log = f"{out}/h2load.log"
if os.path.exists(h2log):
    text = open(h2log).read()
    req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if not req or not codes:
        failures.append("h2load printed no summary (see h2load.log)")
    else:
        total, started, done, ok, failed, errored, timed_out = map(int, req.groups())
        c2, c3, c4, c5 = map(int, codes.groups())
        print(f"HTTP/2 (h2load): {total} requests, {done} done, {ok} succeeded, {failed} failed, "
              f"{errored} errored, {timed_out} timed out; status 2xx {c2}, 4xx {c4}, 5xx {c5}")
        if failed or errored or timed_out or c4 or c5 or done != total:
            failures.append(f"HTTP/2 clients: {total - c2} of {total} requests not answered 200")
print("RESULT: " + ("PASS" if not failures else "FAIL\n  " + "\n  ".join(failures)))
sys.exit(1 if failures else 0)
