#!/usr/bin/env bash
# Moving servers with the real openstack CLI on `stratus up --compute-hosts 2 --driver fake`:
# resize → VERIFY_RESIZE → confirm, resize → revert, cold migration (to a named host and not),
# live migration (with and without --host), the migration list, and evacuate after the source's
# compute service is forced down. Fails on the first step that does not behave as on OpenStack.
set -euo pipefail
UP_ARGS="--compute-hosts 2"
source "$(dirname "$0")/lib.sh"
export OS_COMPUTE_API_VERSION=2.80

for _ in $(seq 1 100); do grep -q 'compute hosts:' "$D/up.log" && break; sleep 0.1; done
grep -q 'compute hosts: 2 (compute1, compute2)' "$D/up.log" || { echo "banner does not name the two hosts:"; cat "$D/up.log"; exit 1; }
for _ in $(seq 1 100); do [[ $(openstack hypervisor list -f value -c 'Hypervisor Hostname' 2>/dev/null | wc -l) == 2 ]] && break; sleep 0.2; done
step hypervisor list; test "$(openstack hypervisor list -f value -c 'Hypervisor Hostname' | sort | tr '\n' ' ')" = "compute1 compute2 "
head -c 65536 /dev/zero > "$D/cirros.raw"
openstack image create --disk-format raw --container-format bare --file "$D/cirros.raw" cirros -f value -c id >/dev/null
openstack server create --flavor m1.tiny --image cirros --nic none --wait vm1 -f value -c id >/dev/null

# The waits read the API with curl and one token: an `openstack` call per poll costs seconds here.
TOKEN=$(openstack token issue -f value -c id)
NOVA="http://127.0.0.1:$PORT/compute/v2.1"
VM=$(openstack server show vm1 -f value -c id)
nova_get() { curl -sf -H "X-Auth-Token: $TOKEN" -H "OpenStack-API-Version: compute 2.80" "$NOVA$1"; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin)["server"]; print(eval(sys.argv[1]))' "$1"; }
host_of() { nova_get "/servers/$VM" | field 'd["OS-EXT-SRV-ATTR:host"]'; }
flavor_of() { nova_get "/servers/$VM" | field 'd["flavor"]["original_name"]'; }
wait_status() { for _ in $(seq 1 200); do [[ $(nova_get "/servers/$VM" | field 'd["status"] if d["OS-EXT-STS:task_state"] is None else "busy"') == "$2" ]] && return 0; sleep 0.1; done; echo "$1 never reached $2"; exit 1; }
wait_migration() { # wait_migration <server> <type> <status>: the server's newest migration
  for _ in $(seq 1 200); do
    nova_get "/os-migrations?instance_uuid=$VM&limit=1" | python3 -c 'import json,sys; m=json.load(sys.stdin)["migrations"]; sys.exit(0 if m and (m[0]["migration_type"], m[0]["status"]) == (sys.argv[1], sys.argv[2]) else 1)' "$2" "$3" && return 0
    sleep 0.1
  done; echo "no $2 migration of $1 reached $3:"; openstack server migration list --server "$1"; exit 1
}

h0=$(host_of vm1)
step "server resize --flavor m1.small (all-in-one: allow_resize_to_same_host = true)"
run openstack server resize --flavor m1.small vm1; wait_status vm1 VERIFY_RESIZE
test "$(flavor_of vm1)" = m1.small
step server resize confirm; run openstack server resize confirm vm1; wait_status vm1 ACTIVE
wait_migration vm1 resize confirmed
test "$(flavor_of vm1)" = m1.small

step "server resize --flavor m1.medium, then revert"
run openstack server resize --flavor m1.medium vm1; wait_status vm1 VERIFY_RESIZE
run openstack server resize revert vm1; wait_status vm1 ACTIVE
wait_migration vm1 resize reverted
test "$(flavor_of vm1)" = m1.small

h1=$(host_of vm1); other() { [[ $1 == compute1 ]] && echo compute2 || echo compute1; }
step "server migrate (cold, the scheduler picks the other host)"
run openstack server migrate vm1; wait_status vm1 VERIFY_RESIZE
test "$(host_of vm1)" = "$(other "$h1")"
run openstack server resize confirm vm1; wait_status vm1 ACTIVE
step "server migrate --host (2.56)"
h2=$(host_of vm1)
run openstack server migrate --host "$(other "$h2")" vm1; wait_status vm1 VERIFY_RESIZE
test "$(host_of vm1)" = "$(other "$h2")"
run openstack server resize confirm vm1; wait_status vm1 ACTIVE
wait_migration vm1 migration confirmed

step "server migrate --live-migration (block migration auto)"
h3=$(host_of vm1)
run openstack server migrate --live-migration vm1; wait_migration vm1 live-migration completed; wait_status vm1 ACTIVE
test "$(host_of vm1)" = "$(other "$h3")"
step "server migrate --live-migration --host"
h4=$(host_of vm1)
run openstack server migrate --live-migration --host "$(other "$h4")" vm1
wait_migration vm1 live-migration completed; wait_status vm1 ACTIVE
test "$(host_of vm1)" = "$(other "$h4")"
step "server migration list"; openstack server migration list -f value -c 'Source Compute' -c 'Dest Compute' -c Type -c Status | tee /dev/stderr | grep -c . | grep -qx 6

step "bad input is refused as Nova does"
expect_fail 400 openstack server resize --flavor m1.small vm1
expect_fail 400 openstack server migrate --host "$(host_of vm1)" vm1
expect_fail 400 openstack server evacuate vm1
expect_fail 409 openstack server resize confirm vm1

step "server evacuate after compute service set --down"
src=$(host_of vm1)
run openstack compute service set --down "$src" nova-compute
# python3-openstackclient 6.0 reads the server from evacuate's return value, a tuple, and fails
# with "'TupleWithMeta' object has no attribute 'id'" after Nova accepted the evacuation.
out=$(openstack server evacuate vm1 2>&1) || grep -q TupleWithMeta <<<"$out" || { echo "$out"; exit 1; }
wait_status vm1 ACTIVE
test "$(host_of vm1)" = "$(other "$src")"
wait_migration vm1 evacuation done
run openstack compute service set --up "$src" nova-compute
echo "moves: OK (resize confirm/revert, cold and live migration with and without --host, migration list, evacuate)"
