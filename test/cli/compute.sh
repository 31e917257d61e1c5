#!/usr/bin/env bash
# The verification steps of a Nova installation, run with the real openstack CLI against a fresh
# all-in-one (fake compute driver): services, cells, catalog, images, flavors, keypairs, a server
# through its lifecycle, events, hypervisors, zones, quotas and limits, and the explained
# NoValidHost fault. Fails on the first step that does not behave as on OpenStack.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
stratus() { node "$here/bin/stratus.mjs" "$@"; }

for _ in $(seq 1 100); do openstack hypervisor list -f value -c ID 2>/dev/null | grep . && break; sleep 0.2; done >/dev/null
step compute service list;        openstack compute service list -f value -c Binary | sort | tr '\n' ' ' | grep 'nova-compute nova-conductor nova-scheduler' >/dev/null
step "compute service list --service nova-compute"
test "$(openstack compute service list --service nova-compute -f value -c State)" = up
step cell_v2 discover_hosts;      run stratus manage cell_v2 discover_hosts --verbose --config "$D/stratus.conf"
step cell_v2 list_cells;          stratus manage cell_v2 list_cells --config "$D/stratus.conf" | tee -a /dev/stderr | grep ' cell1 ' >/dev/null
step cell_v2 list_hosts;          stratus manage cell_v2 list_hosts --config "$D/stratus.conf" | grep cell1 >/dev/null
step catalog list;                types=" $(openstack catalog list -f value -c Type | tr '\n' ' ') "
for t in compute identity image placement ec2; do [[ $types == *" $t "* ]] || { echo "no $t in the catalog: $types"; exit 1; }; done
step image create;                head -c 1048576 /dev/zero > "$D/cirros.raw"
openstack image create --disk-format raw --container-format bare --file "$D/cirros.raw" --property architecture=x86_64 cirros -f value -c id >/dev/null
openstack image create --disk-format raw --container-format bare --file "$D/cirros.raw" --property hypervisor_type=xen xen-only -f value -c id >/dev/null
step image list;                  openstack image list -f value -c Name | grep -x cirros >/dev/null
step status upgrade-check;        run stratus status upgrade-check --config "$D/stratus.conf"
# The all-in-one's own config is complete: no OS_* variable is needed to reach placement.
step "status upgrade-check without OS_AUTH_URL"; env -u OS_AUTH_URL -u OS_PASSWORD node "$here/bin/stratus.mjs" status upgrade-check --config "$D/stratus.conf" | tee -a /dev/stderr | grep -A2 'Check: Placement API' | grep -q Success
# oslo's --config-file (before or after the subcommand) and --config-dir, as nova-manage runbooks pass them.
step "--config-file before the subcommand"; stratus --config-file "$D/stratus.conf" manage cell_v2 list_cells | grep ' cell1 ' >/dev/null
step "--config-file after the subcommand";  stratus manage cell_v2 list_cells --config-file="$D/stratus.conf" | grep ' cell1 ' >/dev/null
mkdir "$D/conf.d"; cp "$D/stratus.conf" "$D/conf.d/10-main.conf"
step "--config-dir";                        stratus manage cell_v2 list_hosts --config-dir "$D/conf.d" | grep cell1 >/dev/null
step flavor list;                 test "$(openstack flavor list -f value -c Name | grep -c '^m1\.')" = 5
step keypair create;              openstack keypair create k1 > "$D/k1.pem"; grep -q 'PRIVATE KEY' "$D/k1.pem"
step "server create --wait";      openstack server create --flavor m1.tiny --image cirros --key-name k1 --nic none --wait vm1 -f value -c status | grep -x ACTIVE >/dev/null
step server list;                 openstack server list -f value -c Name -c Status | grep -x 'vm1 ACTIVE' >/dev/null
step server show;                 openstack server show vm1 -f value -c OS-EXT-SRV-ATTR:hypervisor_hostname | grep . >/dev/null
wait_status() { for _ in $(seq 1 100); do [[ $(openstack server show "$1" -f value -c status) == "$2" ]] && return 0; sleep 0.1; done; echo "$1 never reached $2"; exit 1; }
step server stop;                 openstack server stop vm1; wait_status vm1 SHUTOFF
step server start;                openstack server start vm1; wait_status vm1 ACTIVE
step server reboot;               openstack server reboot vm1; wait_status vm1 ACTIVE
step console log show;            openstack console log show vm1 | grep 'FAKE CONSOLE OUTPUT' >/dev/null
step server event list;           test "$(openstack server event list vm1 -f value -c Action | tr '\n' ' ')" = "reboot start stop create "
step hypervisor list;             openstack hypervisor list -f value -c 'Hypervisor Type' | grep -x fake >/dev/null
step "availability zone list --compute"; openstack availability zone list --compute -f value -c 'Zone Name' | grep -x nova >/dev/null
step quota show;                  openstack quota show -f json | grep '"instances": 10' >/dev/null
step "limits show --absolute";    openstack limits show --absolute -f value | grep 'totalInstancesUsed 1' >/dev/null
step "server create on a xen-only image: ERROR with the explained fault"
openstack server create --flavor m1.tiny --image xen-only --nic none --property purpose=demo vmx -f value -c id >/dev/null
wait_status vmx ERROR
openstack server show vmx -f value -c fault | tee -a /dev/stderr | grep 'ImagePropertiesFilter rejected 1 of 1 hosts: hypervisor_type=xen not supported' >/dev/null
step "over quota: 403"
openstack quota set --instances 2 admin
expect_fail 403 openstack server create --flavor m1.tiny --image cirros --nic none --min 5 --max 5 toomany
step "server delete --wait";      openstack server delete --wait vm1 vmx
test -z "$(openstack server list -f value -c ID)"
echo "compute CLI scenario: all steps passed"
