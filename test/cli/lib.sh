# Sourced by the real-client scenarios: starts a fresh all-in-one on a free port with a
# temporary data dir, sources its admin-openrc, and stops it on exit.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
D=$(mktemp -d /tmp/stratus-cli-XXXXXX)
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
# The fake driver unless a scenario asks for another (CI has qemu installed; test/cli/qemu.sh sets DRIVER=qemu).
# shellcheck disable=SC2086 # UP_ARGS: extra `stratus up` flags of a scenario (word-split on purpose)
node "$here/bin/stratus.mjs" up --data-dir "$D" --port "$PORT" --driver "${DRIVER:-fake}" ${UP_ARGS:-} > "$D/up.log" 2>&1 &
STRATUS_PID=$!
cleanup() { kill "$STRATUS_PID" 2>/dev/null || true; wait "$STRATUS_PID" 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT
for _ in $(seq 1 "${START_WAIT_TENTHS:-200}"); do [[ -f $D/admin-openrc ]] && curl -sf "http://127.0.0.1:$PORT/healthcheck" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/healthcheck" >/dev/null || { echo "all-in-one did not start:"; cat "$D/up.log"; exit 1; }
# shellcheck disable=SC1091
source "$D/admin-openrc"
step() { echo "--- $*"; }
run() { echo "\$ $*"; "$@"; }
expect_fail() { # expect_fail <http-status> <command...>
  local want=$1; shift
  local out
  if out=$("$@" 2>&1); then echo "expected HTTP $want, command succeeded: $*"; exit 1; fi
  grep -q "HTTP $want" <<<"$out" || { echo "expected HTTP $want from: $*"; echo "$out"; exit 1; }
  echo "    refused as expected (HTTP $want)"
}
