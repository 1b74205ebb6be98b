#!/usr/bin/env bash
# Bounded soak of splitgate on loopback: steady load while everything around it changes.
#
#   loadtest/soak.sh [PATH/TO/splitgate]       # default target/release/splitgate (built if missing)
#
# For SOAK_SECONDS (default 600 = 10 min; at most 900 = 15 min, refused above):
#   * a steady RATE (default 500 req/s) of POST /recommend, varied user ids, through a small TCP
#     forwarder (Python, in this script; each new connection goes to the current splitgate):
#     oha if installed, else k6 from .venv-loadtest (SOAK_TOOL=oha|k6 forces one);
#   * a config reload every second: the config file is rewritten (write + rename) with alternating
#     weights 90/10 and 80/20 of the two builtin models;
#   * a shadow model `flappy` (http backend, sample_percent = 100): a Python http.server on
#     loopback that is started and stopped every 10 s;
#   * a rolling restart in the middle: a second splitgate starts, the forwarder sends every NEW
#     connection to it, then the first gets SIGTERM and drains (two processes cannot share the
#     port: splitgate does not set SO_REUSEPORT, hence the forwarder).
# Reports requests sent vs answered, status codes and errors by kind (client and server side),
# config reloads applied/rejected, shadow outcomes, RSS of each process after warm-up and at its
# end (growth must stay under 10%), and p99 per minute (client side, with latency correction, and
# server side from the access log). Exits non-zero when an answer was lost or not 200 (503
# `overloaded` from load shedding is allowed and listed), when RSS grew 10% or more, or when a
# splitgate died on its own. Results: loadtest/results/soak-<UTC time>/ (git-ignored).
#
# Environment: SOAK_SECONDS, RATE, CONNECTIONS (load-tool connections, default 16),
# WARMUP_SECONDS (RSS baseline, default 15), SOAK_TOOL, SPLITGATE_API_KEY, and
# SPLITGATE_DRAIN_GRACE_MS (passed to both splitgates). A second in which requests went
# unanswered is named in the report, so a loss at the rolling restart's SIGTERM is told apart.
#
# Everything runs on 127.0.0.1, every loop is bounded by the deadline, and every process this
# script starts is stopped by its PID on exit.
set -euo pipefail
# shellcheck source=loadtest/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

soak=${SOAK_SECONDS:-600}
rate=${RATE:-500}
conns=${CONNECTIONS:-16}
warmup=${WARMUP_SECONDS:-15}
key=${SPLITGATE_API_KEY:-splitgate-demo-key}
if ! [[ $soak =~ ^[0-9]+$ ]] || [ "$soak" -lt 30 ] || [ "$soak" -gt 900 ]; then
  echo "SOAK_SECONDS must be 30..900 (hard cap 15 min), got $soak" >&2
  exit 2
fi
if ! [[ $rate =~ ^[0-9]+$ ]] || [ "$rate" -lt 1 ] || [ "$rate" -gt 5000 ]; then
  echo "RATE must be 1..5000 requests/s, got $rate" >&2
  exit 2
fi

cd "$REPO_ROOT"
if [ $# -ge 1 ]; then
  binary=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
else
  binary=$REPO_ROOT/target/release/splitgate
  if [ ! -x "$binary" ]; then
    log "cargo build --release"
    cargo build --release --locked --bin splitgate
  fi
fi
[ -x "$binary" ] || { echo "not an executable: $binary" >&2; exit 2; }

tool=${SOAK_TOOL:-}
if [ -z "$tool" ]; then
  if command -v oha > /dev/null 2>&1; then tool=oha; else tool=k6; fi
fi
case $tool in oha | k6) ;; *) echo "SOAK_TOOL must be oha or k6" >&2; exit 2 ;; esac
ensure_venv # lib.sh's helpers run on its Python; k6 lives there too
py=$VENV/bin/python

out=$LOADTEST_DIR/results/soak-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out/a" "$out/b" "$out/config"
log "results in $out"

# --- processes this script owns (stopped by PID on every exit path) ---------------------------
pid_a="" pid_b="" pid_fwd="" pid_flapper="" pid_reloader="" pid_rss="" pid_load="" pid_h2=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local p
  for p in $pid_load $pid_h2 $pid_reloader $pid_flapper $pid_rss $pid_fwd; do
    kill -TERM "$p" 2> /dev/null || true
  done
  for p in $pid_a $pid_b; do
    SPLITGATE_PID=$p stop_splitgate 2> /dev/null || true
  done
  wait 2> /dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r port_fwd port_flappy < <(free_ports 2)

# --- helper programs (Python standard library) -------------------------------------------------
cat > "$out/forwarder.py" << 'PY'
"""TCP forwarder: each new client connection goes to the backend named in TARGET_FILE at accept
time, so a rolling restart moves new connections while old ones drain where they are."""
import asyncio, json, signal, sys

port, target_file, stats_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
stats = {"connections": {}, "backend_refused": 0}


def target():
    with open(target_file) as f:
        host, p = f.read().strip().rsplit(":", 1)
    return host, int(p)


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def handle(client_r, client_w):
    host, p = target()
    try:
        backend_r, backend_w = await asyncio.open_connection(host, p)
    except OSError:
        stats["backend_refused"] += 1
        client_w.close()
        return
    name = f"{host}:{p}"
    stats["connections"][name] = stats["connections"].get(name, 0) + 1
    await asyncio.gather(pipe(client_r, backend_w), pipe(backend_r, client_w))


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()
    with open(stats_file, "w") as f:
        json.dump(stats, f)


asyncio.run(main())
PY

cat > "$out/flappy.py" << 'PY'
"""The `flappy` shadow model: a plain http.server answering every POST with a fixed list."""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b'{"items":[{"item_id":"f1"},{"item_id":"f2"},{"item_id":"f3"}]}'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # splitgate gave up on the shadow call (its 200 ms timeout) and closed the connection.
        print(f"client {client_address} went away: {sys.exc_info()[1]!r}", file=sys.stderr)


Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
PY

# --- config: builtin models + the flappy shadow, weights alternating on every reload -----------
write_config() { # write_config CHAMPION_WEIGHT: write + rename, as editors and ConfigMaps do
  local champion=$1
  cat > "$out/config/splitgate.toml.tmp" << EOF
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[[auth.keys]]
name = "soak"
sha256 = "$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)"

[throttle]
rate_per_second = 1000000
burst = 1000000

[models.rec-v2-2]
version = "v2.2.0"
backend = "builtin"

[models.rec-v2-3]
version = "v2.3.0"
backend = "builtin"

[models.flappy]
version = "flappy-1"
backend = "http"
url = "http://127.0.0.1:$port_flappy/invocations"
timeout_ms = 200

[split]
salt = "soak"
[[split.variants]]
name = "champion"
model = "rec-v2-2"
weight = $champion
champion = true
[[split.variants]]
name = "challenger"
model = "rec-v2-3"
weight = $((100 - champion))

[[shadow]]
model = "flappy"
sample_percent = 100
timeout_ms = 200
EOF
  mv -f "$out/config/splitgate.toml.tmp" "$out/config/splitgate.toml"
}
write_config 90
"$binary" check --config "$out/config/splitgate.toml" >&2

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2> /dev/null || echo 0; }
scrape() { # scrape ADMIN_URL FILE
  "$py" -c 'import sys, urllib.request; open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=5).read())' "$1" "$2" || true
}

# --- start: the flapping shadow model, splitgate A, the forwarder pointing at A -----------------
start=$(date +%s)
deadline=$((start + soak))
restart_at=$((start + soak / 2 + 7)) # mid-run, away from a minute boundary
echo "$start" > "$out/start-epoch"

# Loops below sleep in the background and `wait`, so a TERM from cleanup ends them at once.
(
  flappy="" nap=""
  trap 'kill -TERM $flappy $nap 2> /dev/null; exit 0' TERM
  i=0
  while [ "$(date +%s)" -lt "$deadline" ] && [ "$i" -le $((soak / 10 + 2)) ]; do
    if [ -z "$flappy" ]; then
      "$py" "$out/flappy.py" "$port_flappy" 2>> "$out/flappy.log" &
      flappy=$!
      echo "+$(($(date +%s) - start))s up" >> "$out/flappy-events"
    else
      kill -TERM "$flappy" 2> /dev/null || true
      wait "$flappy" 2> /dev/null || true
      flappy=""
      echo "+$(($(date +%s) - start))s down" >> "$out/flappy-events"
    fi
    i=$((i + 1))
    sleep 10 &
    nap=$!
    wait "$nap" || true
  done
  [ -z "$flappy" ] || kill -TERM "$flappy" 2> /dev/null || true
) &
pid_flapper=$!

start_splitgate "$binary" "$out/config/splitgate.toml" "$out/a"
pid_a=$SPLITGATE_PID admin_a=$SPLITGATE_ADMIN_URL
echo "$pid_a" > "$out/a/pid"
echo "${SPLITGATE_URL#http://}" > "$out/backend"
"$py" "$out/forwarder.py" "$port_fwd" "$out/backend" "$out/forwarder.json" &
pid_fwd=$!
for _ in $(seq 50); do
  "$py" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$port_fwd" 2> /dev/null && break
  sleep 0.1
done

# --- background: a config rewrite every second, RSS every 5 s -----------------------------------
(
  nap=""
  trap 'kill -TERM $nap 2> /dev/null; exit 0' TERM
  i=0
  while [ "$(date +%s)" -lt "$deadline" ] && [ "$i" -le $((soak + 5)) ]; do
    sleep 1 &
    nap=$!
    wait "$nap" || true
    i=$((i + 1))
    if [ $((i % 2)) -eq 0 ]; then write_config 90; else write_config 80; fi
    echo "$i" > "$out/reloads-written"
  done
) &
pid_reloader=$!

(
  nap=""
  trap 'kill -TERM $nap 2> /dev/null; exit 0' TERM
  while [ "$(date +%s)" -lt $((deadline + 60)) ]; do
    now=$(($(date +%s) - start))
    for p in a b; do
      pid=$(cat "$out/$p/pid" 2> /dev/null || true)
      if [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null; then echo "$now,$p,$(rss_kb "$pid")" >> "$out/rss.csv"; fi
    done
    sleep 5 &
    nap=$!
    wait "$nap" || true
  done
) &
pid_rss=$!

# --- the load ------------------------------------------------------------------------------------
"$py" - "$out/bodies.txt" << 'PY'
import random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    for _ in range(20000):
        f.write('{"user_id":"u%d","context":{"page":"home"}}\n' % int(random.paretovariate(0.9) * 10))
PY
url="http://127.0.0.1:$port_fwd/recommend"
date +%s.%N > "$out/load-start-epoch"
log "$tool: $rate req/s for ${soak}s via the forwarder :$port_fwd -> splitgate (reload 1/s, flappy shadow 10 s, rolling restart at +$((restart_at - start))s)"
if [ "$tool" = oha ]; then
  timeout $((soak + 120)) oha -z "${soak}s" -q "$rate" -c "$conns" -m POST -w --latency-correction --no-tui \
    -H "x-api-key: $key" -T application/json -Z "$out/bodies.txt" -t 10s \
    --output-format json -o "$out/oha.json" --db-url "$out/oha.db" "$url" > "$out/oha.log" 2>&1 &
else
  cat > "$out/soak.js" << 'JS'
import http from "k6/http";
const bodies = open(__ENV.BODIES).split("\n").filter((l) => l.length > 0);
export const options = {
  discardResponseBodies: true,
  scenarios: { soak: { executor: "constant-arrival-rate", rate: Number(__ENV.RATE), timeUnit: "1s",
    duration: `${__ENV.SOAK}s`, preAllocatedVUs: Number(__ENV.CONNS) * 4, maxVUs: 400, gracefulStop: "15s" } },
  summaryTrendStats: ["avg", "p(50)", "p(99)", "max"],
};
export default function () {
  const body = bodies[Math.floor(Math.random() * bodies.length)];
  http.post(__ENV.URL, body, { headers: { "content-type": "application/json", "x-api-key": __ENV.KEY }, timeout: "10s" });
}
JS
  timeout $((soak + 120)) "$VENV/bin/k6" run --no-usage-report --quiet -e URL="$url" -e KEY="$key" \
    -e RATE="$rate" -e SOAK="$soak" -e CONNS="$conns" -e BODIES="$out/bodies.txt" \
    --summary-export "$out/k6-summary.json" --out csv="$out/k6.csv" "$out/soak.js" > "$out/k6.log" 2>&1 &
fi
pid_load=$!

# --- HTTP/2 clients in the mix -------------------------------------------------------------------
# h2load (Debian nghttp2-client) over h2c, prior knowledge, through the same forwarder: two new
# connections a second, each sending 10 requests (2 streams at a time) and closing. Connection
# churn on HTTP/2 is where idle/GOAWAY/drain bugs show. SOAK_H2=0 turns it off.
pid_h2=""
if [ "${SOAK_H2:-1}" = 1 ] && command -v h2load > /dev/null 2>&1; then
  h2_conns=$((soak * 2))
  printf '%s' '{"user_id":"h2-soak","context":{"page":"home"}}' > "$out/h2-body.json"
  timeout $((soak + 60)) h2load -n $((h2_conns * 10)) -c "$h2_conns" -r 2 --rate-period 1s -m 2 \
    -d "$out/h2-body.json" -H "x-api-key: $key" -H "content-type: application/json" "$url" \
    > "$out/h2load.log" 2>&1 &
  pid_h2=$!
  log "h2load: 2 HTTP/2 connections/s x 10 requests alongside"
fi

# --- rolling restart in the middle ---------------------------------------------------------------
wait_s=$((restart_at - $(date +%s)))
[ "$wait_s" -le 0 ] || sleep "$wait_s"
log "rolling restart: starting splitgate B"
scrape "$admin_a" "$out/a/metrics-before-sigterm.txt"
rss_kb "$pid_a" > "$out/a/rss-at-sigterm"
start_splitgate "$binary" "$out/config/splitgate.toml" "$out/b"
pid_b=$SPLITGATE_PID admin_b=$SPLITGATE_ADMIN_URL
echo "$pid_b" > "$out/b/pid"
echo "${SPLITGATE_URL#http://}" > "$out/backend.tmp" && mv -f "$out/backend.tmp" "$out/backend"
t0=$(date +%s%N)
date +%s.%N > "$out/sigterm-epoch"
kill -TERM "$pid_a"
status_a=0
for _ in $(seq 400); do kill -0 "$pid_a" 2> /dev/null || break; sleep 0.1; done
if kill -0 "$pid_a" 2> /dev/null; then
  log "splitgate A still running 40 s after SIGTERM; killing it"
  kill -KILL "$pid_a"
fi
wait "$pid_a" 2> /dev/null || status_a=$?
drain_ms=$((($(date +%s%N) - t0) / 1000000))
pid_a=""
log "splitgate A exited with $status_a after ${drain_ms} ms of drain"

# --- wait for the load to finish -----------------------------------------------------------------
status_load=0
wait "$pid_load" || status_load=$?
pid_load=""
if [ -n "$pid_h2" ]; then
  wait "$pid_h2" || echo "h2load exited with $?" >> "$out/h2load.log"
  pid_h2=""
fi
alive_b=yes
kill -0 "$pid_b" 2> /dev/null || alive_b=no
scrape "$admin_b" "$out/b/metrics-end.txt"
rss_kb "$pid_b" > "$out/b/rss-at-end"
kill -TERM "$pid_reloader" "$pid_flapper" "$pid_rss" 2> /dev/null || true
wait "$pid_reloader" "$pid_flapper" "$pid_rss" 2> /dev/null || true
pid_reloader="" pid_flapper="" pid_rss=""
SPLITGATE_PID=$pid_b stop_splitgate
pid_b=""
kill -TERM "$pid_fwd" 2> /dev/null || true
wait "$pid_fwd" 2> /dev/null || true
pid_fwd=""

# --- report --------------------------------------------------------------------------------------
set +e
"$py" - "$out" "$tool" "$soak" "$rate" "$warmup" "$status_a" "$drain_ms" "$alive_b" "$status_load" \
  << 'PY' | tee "$out/report.txt"
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
PY
status=${PIPESTATUS[0]}
set -e
gzip -f "$out"/a/access.log "$out"/b/access.log 2> /dev/null || true
exit "$status"
