#!/usr/bin/env bash
# CPU per request of an interleaving arm against a plain variant, in the same run (issue #20).
#
#   loadtest/interleave_cost.sh [--rounds N] [--secs S] [--conns C]
#
# One splitgate process (SPLITGATE_BIN, default target/release/splitgate; one worker, alone on
# CPU 1) serves both setups from one config: `plain` (model rec-a, one upstream call) and `arm`
# (interleave = [rec-a, rec-b]: two upstream calls, the merge, the team code). Requests pick the
# setup with the x-splitgate-variant override, so both run in the same process and state. The two
# model servers (loadtest/peers/upstream, ~400-byte answers of 8 items, built in release if
# UPSTREAM_BIN is not given) and wrk share CPU 0. Rounds alternate plain, arm, plain, arm… so
# drift hits both alike; each run is `wrk -t1 -cC -dS` (closed loop), and CPU-µs per request is
# the proxy's utime+stime over the run (from /proc) divided by the requests wrk completed.
# Prints each run, then the medians and the ratio arm / plain. Everything on 127.0.0.1; every
# process started here is stopped on exit. Needs wrk, taskset, curl, python3.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
BIN=${SPLITGATE_BIN:-$TARGET/release/splitgate}
ROUNDS=3 SECS=3 CONNS=16
KEY=interleave-cost-key
KEY_SHA=c1693ed7858a4ba754e0cfb9391b8fdb68c5d87be9a8ea9767b717302dd32401

while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=${2:?}; shift ;;
    --secs) SECS=${2:?}; shift ;;
    --conns) CONNS=${2:?}; shift ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
case $ROUNDS in [1-9]) ;; *) echo "--rounds must be 1..9" >&2; exit 2 ;; esac
case $SECS in [1-9] | [1-5][0-9]) ;; *) echo "--secs must be 1..59" >&2; exit 2 ;; esac

log() { printf '[interleave-cost %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
for tool in wrk taskset curl python3; do
  command -v "$tool" > /dev/null || { log "ERROR: $tool is missing"; exit 1; }
done
[ -x "$BIN" ] || { log "ERROR: no splitgate binary at $BIN (cargo build --release, or set SPLITGATE_BIN)"; exit 1; }
UPSTREAM=${UPSTREAM_BIN:-$TARGET/bench-upstream/release/splitgate-bench-upstream}
if [ ! -x "$UPSTREAM" ]; then
  log "building loadtest/peers/upstream (release)"
  CARGO_TARGET_DIR=$TARGET/bench-upstream cargo build --release --locked \
    --manifest-path "$HERE/peers/upstream/Cargo.toml" >&2
fi

RUN=$(mktemp -d)
STARTED=()
cleanup() {
  for pid in "${STARTED[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
  sleep 0.3
  for pid in "${STARTED[@]}"; do kill -KILL "$pid" 2> /dev/null || true; done
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r P_A P_B P_PROXY P_ADMIN < <(python3 "$HERE/tools/free_ports.py" 4)
for spec in "$P_A rec-a" "$P_B rec-b"; do
  read -r port name <<< "$spec"
  taskset -c 0 "$UPSTREAM" --listen "127.0.0.1:$port" --name "$name" 2>> "$RUN/upstreams.log" &
  STARTED+=($!)
  python3 "$HERE/tools/wait_listening.py" "$port" || { log "ERROR: upstream $name did not start"; exit 1; }
done

cat > "$RUN/splitgate.toml" << TOML
[server]
listen = "127.0.0.1:$P_PROXY"
admin_listen = "127.0.0.1:$P_ADMIN"
workers = 1
access_log = true

[[auth.keys]]
name = "bench"
sha256 = "$KEY_SHA"
allow_override = true

[models.rec-a]
version = "a1"
backend = "http"
url = "http://127.0.0.1:$P_A/invocations"

[models.rec-b]
version = "b1"
backend = "http"
url = "http://127.0.0.1:$P_B/invocations"

[split]
salt = "interleave-cost"

[[split.variants]]
name = "plain"
model = "rec-a"
weight = 100
champion = true

[[split.variants]]
name = "arm"
interleave = ["rec-a", "rec-b"]
weight = 0
k = 8
TOML
"$BIN" check --config "$RUN/splitgate.toml" > /dev/null
taskset -c 1 "$BIN" serve --config "$RUN/splitgate.toml" > /dev/null 2> "$RUN/splitgate.log" &
PROXY=$!
STARTED+=("$PROXY")
python3 "$HERE/tools/wait_listening.py" "$P_PROXY" || { log "ERROR: splitgate did not start"; tail "$RUN/splitgate.log" >&2; exit 1; }

# 1,000 users cycled, each request built once in init(); the variant comes from the environment.
cat > "$RUN/post.lua" << 'LUA'
local n = 1000
local reqs = {}
init = function(args)
  local variant = os.getenv("VARIANT")
  for i = 1, n do
    local uid = "u" .. ((i * 7919) % 100003)
    local body = '{"user_id":"' .. uid .. '","context":{"page":"home"}}'
    reqs[i] = wrk.format("POST", "/recommend",
      {["Host"] = "127.0.0.1", ["X-API-Key"] = os.getenv("KEY"), ["X-Splitgate-Variant"] = variant,
       ["Content-Type"] = "application/json"}, body)
  end
end
local i = 0
request = function()
  i = i % n + 1
  return reqs[i]
end
LUA

# Both setups answer as they should before anything is measured.
for v in plain arm; do
  h=$(curl -s -o /dev/null -D - -H "x-api-key: $KEY" -H "x-splitgate-variant: $v" -H 'content-type: application/json' \
    -d '{"user_id":"probe"}' "http://127.0.0.1:$P_PROXY/recommend")
  grep -qi "x-splitgate-variant: $v" <<< "$h" || { log "ERROR: setup $v not served: $h"; exit 1; }
  if [ "$v" = arm ]; then
    grep -qi 'x-splitgate-interleave: merged' <<< "$h" || { log "ERROR: the arm did not merge: $h"; exit 1; }
  fi
done

CLK=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$PROXY/stat"; }
run() { # VARIANT SECS -> prints "requests ticks"
  local t0 t1 out reqs
  t0=$(ticks)
  out=$(VARIANT=$1 KEY=$KEY taskset -c 0 timeout $(($2 + 30)) wrk -t1 -c"$CONNS" -d"$2s" -s "$RUN/post.lua" \
    "http://127.0.0.1:$P_PROXY/recommend")
  t1=$(ticks)
  reqs=$(awk '/requests in/ {print $1}' <<< "$out")
  if grep -q 'Non-2xx' <<< "$out"; then log "ERROR: $1 had non-2xx answers: $out"; exit 1; fi
  echo "$reqs $((t1 - t0))"
}
for v in plain arm; do run "$v" 1 > /dev/null; done # warm up
results=()
for round in $(seq "$ROUNDS"); do
  for v in plain arm; do
    read -r reqs dt < <(run "$v" "$SECS")
    us=$(python3 -c "print(f'{$dt / $CLK * 1e6 / max($reqs, 1):.1f}')")
    log "round $round $v: $reqs requests in ${SECS}s, $us CPU-us/request"
    results+=("$v $us $reqs")
  done
done
printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
rows = [l.split() for l in sys.stdin if l.strip()]
def median(v, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == v)
plain, arm = median("plain", 1), median("arm", 1)
n_plain, n_arm = median("plain", 2), median("arm", 2)
print(f"plain variant (1 model call):       {plain:.1f} CPU-us/request (median), {n_plain:.0f} requests per run")
print(f"interleaving arm (2 calls + merge): {arm:.1f} CPU-us/request (median), {n_arm:.0f} requests per run")
print(f"ratio arm / plain: {arm / plain:.2f}x")
'
