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

nova_login
VM=$(openstack server show vm1 -f value -c id)
flavor_of() { server_field "$VM" 'd["flavor"]["original_name"]'; }

h0=$(host_of "$VM")
step "server resize --flavor m1.small (all-in-one: allow_resize_to_same_host = true)"
run openstack server resize --flavor m1.small vm1; wait_status "$VM" VERIFY_RESIZE
test "$(flavor_of)" = m1.small
step server resize confirm; run openstack server resize confirm vm1; wait_status "$VM" ACTIVE
wait_migration "$VM" resize confirmed
test "$(flavor_of)" = m1.small

step "server resize --flavor m1.medium, then revert"
run openstack server resize --flavor m1.medium vm1; wait_status "$VM" VERIFY_RESIZE
run openstack server resize revert vm1; wait_status "$VM" ACTIVE
wait_migration "$VM" resize reverted
test "$(flavor_of)" = m1.small

h1=$(host_of "$VM")
step "server migrate (cold, the scheduler picks the other host)"
run openstack server migrate vm1; wait_status "$VM" VERIFY_RESIZE
test "$(host_of "$VM")" = "$(other_host "$h1")"
run openstack server resize confirm vm1; wait_status "$VM" ACTIVE
step "server migrate --host (2.56)"
h2=$(host_of "$VM")
run openstack server migrate --host "$(other_host "$h2")" vm1; wait_status "$VM" VERIFY_RESIZE
test "$(host_of "$VM")" = "$(other_host "$h2")"
run openstack server resize confirm vm1; wait_status "$VM" ACTIVE
wait_migration "$VM" migration confirmed

step "server migrate --live-migration (block migration auto)"
h3=$(host_of "$VM")
run openstack server migrate --live-migration vm1; wait_migration "$VM" live-migration completed; wait_status "$VM" ACTIVE
test "$(host_of "$VM")" = "$(other_host "$h3")"
step "server migrate --live-migration --host"
h4=$(host_of "$VM")
run openstack server migrate --live-migration --host "$(other_host "$h4")" vm1
wait_migration "$VM" live-migration completed; wait_status "$VM" ACTIVE
test "$(host_of "$VM")" = "$(other_host "$h4")"
step "console log show: one boot, carried across every move (the fake guest's lines per move)"
log=$(openstack console log show vm1); echo "$log" >&2
test "$(grep -c 'FAKE CONSOLE OUTPUT' <<<"$log")" = 1
test "$(grep -c '^resize: m1.small' <<<"$log")" = 1
test "$(grep -c '^migrate$' <<<"$log")" = 2
test "$(grep -c '^live-migrated$' <<<"$log")" = 2
# Printed, then counted (not `tee /dev/stderr`: reopening stderr truncates a log file it is redirected to).
step "server migration list"; list=$(openstack server migration list -f value -c 'Source Compute' -c 'Dest Compute' -c Type -c Status); echo "$list" >&2
test "$(grep -c . <<<"$list")" = 6

step "bad input is refused as Nova does"
expect_fail 400 openstack server resize --flavor m1.small vm1
expect_fail 400 openstack server migrate --host "$(host_of "$VM")" vm1
expect_fail 400 openstack server evacuate vm1
expect_fail 409 openstack server resize confirm vm1

step "server evacuate after compute service set --down"
src=$(host_of "$VM")
run openstack compute service set --down "$src" nova-compute
# python3-openstackclient 6.0 reads the server from evacuate's return value, a tuple, and fails
# with "'TupleWithMeta' object has no attribute 'id'" after Nova accepted the evacuation.
out=$(openstack server evacuate vm1 2>&1) || grep -q TupleWithMeta <<<"$out" || { echo "$out"; exit 1; }
wait_status "$VM" ACTIVE
test "$(host_of "$VM")" = "$(other_host "$src")"
wait_migration "$VM" evacuation done
run openstack compute service set --up "$src" nova-compute
echo "moves: OK (resize confirm/revert, cold and live migration with and without --host, the console log across them, migration list, evacuate)"
