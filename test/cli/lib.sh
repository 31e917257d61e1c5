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
# Waits on servers and migrations for the move scenarios (moves.sh, moves-qemu.sh). They read the
# API with curl and one token: an `openstack` call per poll costs seconds on a loaded machine.
# nova_login first; ids, not names.
nova_login() { TOKEN=$(openstack token issue -f value -c id); NOVA="http://127.0.0.1:$PORT/compute/v2.1"; }
nova_get() { curl -sf -H "X-Auth-Token: $TOKEN" -H "OpenStack-API-Version: compute 2.80" "$NOVA$1"; }
# server_field <id> <python expression over d, the server>
server_field() { nova_get "/servers/$1" | python3 -c 'import json,sys; d=json.load(sys.stdin)["server"]; print(eval(sys.argv[1]))' "$2"; }
host_of() { server_field "$1" 'd["OS-EXT-SRV-ATTR:host"]'; }
# wait_status <id> <status> [tenths]: the status with no task in flight.
wait_status() {
  for _ in $(seq 1 "${3:-200}"); do [[ $(server_field "$1" 'd["status"] if d["OS-EXT-STS:task_state"] is None else "busy"') == "$2" ]] && return 0; sleep 0.1; done
  echo "server $1 never reached $2:"; nova_get "/servers/$1"; echo; exit 1
}
# wait_migration <id> <type> <status> [tenths]: the server's newest migration.
wait_migration() {
  for _ in $(seq 1 "${4:-200}"); do
    nova_get "/os-migrations?instance_uuid=$1&limit=1" | python3 -c 'import json,sys; m=json.load(sys.stdin)["migrations"]; sys.exit(0 if m and (m[0]["migration_type"], m[0]["status"]) == (sys.argv[1], sys.argv[2]) else 1)' "$2" "$3" && return 0
    sleep 0.1
  done; echo "no $2 migration of $1 reached $3:"; openstack server migration list --server "$1"; exit 1
}
other_host() { [[ $1 == compute1 ]] && echo compute2 || echo compute1; }
