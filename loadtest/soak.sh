#!/usr/bin/env bash
# Bounded soak of splitgate on loopback: steady load while everything around it changes.
#
#   loadtest/soak.sh [PATH/TO/splitgate]       # default target/release/splitgate (built if missing)
#
# For SOAK_SECONDS (default 600 = 10 min; at most 900 = 15 min, refused above):
#   * a steady RATE (default 500 req/s) of POST /recommend, varied user ids, through a small TCP
#     forwarder (tools/forwarder.py; each new connection goes to the current splitgate):
#     oha if installed, else k6 (k6/soak.js) from .venv-loadtest (SOAK_TOOL=oha|k6 forces one);
#   * a config reload every second: the config file is rewritten (write + rename) with alternating
#     weights 90/10 and 80/20 of the two builtin models;
#   * a shadow model `flappy` (http backend, sample_percent = 100): tools/flappy.py, a Python
#     http.server on loopback that is started and stopped every 10 s;
#   * a rolling restart in the middle: a second splitgate starts, the forwarder sends every NEW
#     connection to it, then the first gets SIGTERM and drains (two processes cannot share the
#     port: splitgate does not set SO_REUSEPORT, hence the forwarder).
# Reports (tools/soak_report.py) requests sent vs answered, status codes and errors by kind
# (client and server side), config reloads applied/rejected, shadow outcomes, RSS of each process
# after warm-up and at its end (growth must stay under 10%), and p99 per minute (client side, with
# latency correction, and server side from the access log). Exits non-zero when an answer was lost
# or not 200 (503 `overloaded` from load shedding is allowed and listed), when RSS grew 10% or
# more, or when a splitgate died on its own. Results: loadtest/results/soak-<UTC time>/ (git-ignored).
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

# Helper programs (Python standard library) live in loadtest/tools/: forwarder.py, flappy.py,
# soak_bodies.py, soak_report.py, scrape_metrics.py, wait_listening.py; k6's load in k6/soak.js.
tools_dir=$LOADTEST_DIR/tools

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
  "$py" "$tools_dir/scrape_metrics.py" "$1" "$2" || true
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
      "$py" "$tools_dir/flappy.py" "$port_flappy" 2>> "$out/flappy.log" &
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
"$py" "$tools_dir/forwarder.py" "$port_fwd" "$out/backend" "$out/forwarder.json" &
pid_fwd=$!
"$py" "$tools_dir/wait_listening.py" "$port_fwd" || true # if it never listens, the load's errors say so

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
"$py" "$tools_dir/soak_bodies.py" "$out/bodies.txt"
url="http://127.0.0.1:$port_fwd/recommend"
date +%s.%N > "$out/load-start-epoch"
log "$tool: $rate req/s for ${soak}s via the forwarder :$port_fwd -> splitgate (reload 1/s, flappy shadow 10 s, rolling restart at +$((restart_at - start))s)"
if [ "$tool" = oha ]; then
  timeout $((soak + 120)) oha -z "${soak}s" -q "$rate" -c "$conns" -m POST -w --latency-correction --no-tui \
    -H "x-api-key: $key" -T application/json -Z "$out/bodies.txt" -t 10s \
    --output-format json -o "$out/oha.json" --db-url "$out/oha.db" "$url" > "$out/oha.log" 2>&1 &
else
  timeout $((soak + 120)) "$VENV/bin/k6" run --no-usage-report --quiet -e URL="$url" -e KEY="$key" \
    -e RATE="$rate" -e SOAK="$soak" -e CONNS="$conns" -e BODIES="$out/bodies.txt" \
    --summary-export "$out/k6-summary.json" --out csv="$out/k6.csv" "$LOADTEST_DIR/k6/soak.js" > "$out/k6.log" 2>&1 &
fi
pid_load=$!

# --- HTTP/2 clients in the mix -------------------------------------------------------------------
# h2load (Debian nghttp2-client) over h2c, prior knowledge, through the same forwarder: two new
# connections a second, each sending 10 requests (2 streams at a time) and closing. Connection
# churn on HTTP/2 is where idle/GOAWAY/drain bugs show. SOAK_H2=0 turns it off.
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
"$py" "$tools_dir/soak_report.py" "$out" "$tool" "$soak" "$rate" "$warmup" "$status_a" "$drain_ms" \
  "$alive_b" "$status_load" | tee "$out/report.txt"
status=${PIPESTATUS[0]}
set -e
gzip -f "$out"/a/access.log "$out"/b/access.log 2> /dev/null || true
exit "$status"
