#!/usr/bin/env bash
# Syntax checks of the load-test programs (`make loadtest-lint`, part of `make test`):
#   * python3 -m py_compile on every loadtest/**/*.py (byte-compiled into a temp dir, so no
#     __pycache__ is left in the tree);
#   * node --check on every loadtest/**/*.js, parsed as an ES module (k6 scripts `import`), when
#     node is installed ("skipped: no node" otherwise);
#   * bash -n on every loadtest/**/*.sh, and shellcheck on them when it is installed (.ci/run
#     installs it; "skipped: no shellcheck" otherwise).
# Runs nothing and sends no traffic; results/ (run output) is not checked.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

files() { find loadtest -path loadtest/results -prune -o -type f -name "$1" -print | sort; }
mapfile -t py < <(files '*.py')
mapfile -t js < <(files '*.js')
mapfile -t sh < <(files '*.sh')
status=0
fail() { echo "loadtest-lint: FAIL $*" >&2; status=1; }

cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
for f in "${py[@]}"; do
  PYTHONPYCACHEPREFIX=$cache python3 -m py_compile "$f" || fail "$f (python3 -m py_compile)"
done
echo "loadtest-lint: python3 -m py_compile: ${#py[@]} file(s)"

if command -v node > /dev/null 2>&1; then
  # stdin + --input-type=module: `node --check file.js` may parse a .js file as CommonJS,
  # where `import` is itself a syntax error.
  for f in "${js[@]}"; do
    node --input-type=module --check < "$f" || fail "$f (node --check, ES module)"
  done
  echo "loadtest-lint: node --check: ${#js[@]} file(s)"
else
  echo "loadtest-lint: node --check: skipped: no node"
fi

for f in "${sh[@]}"; do
  bash -n "$f" || fail "$f (bash -n)"
done
echo "loadtest-lint: bash -n: ${#sh[@]} file(s)"
if command -v shellcheck > /dev/null 2>&1; then
  shellcheck -x "${sh[@]}" || fail "shellcheck"
  echo "loadtest-lint: shellcheck: ${#sh[@]} file(s)"
else
  echo "loadtest-lint: shellcheck: skipped: no shellcheck"
fi
exit "$status"
