#!/usr/bin/env bash
# Moving a real guest with the real openstack CLI on `stratus up --compute-hosts 2 --driver qemu`:
# the minimal guest (config drive) is resized (confirm, then revert), cold-migrated, live-migrated
# (block migration: no shared storage) and evacuated. What the guest prints on its serial console
# (openstack console log show) is the proof: its user_data leaves a marker on the root disk at
# the first boot and reports it at the next ones (the disk came along), and prints its uptime
# every second (a live-migrated guest goes on counting: it never rebooted). Skips only when QEMU
# is not installed (CI has it); STRATUS_MINIMAL_IMAGE=FILE reuses a built minimal image.
set -euo pipefail
command -v qemu-system-x86_64 >/dev/null || { echo "moves-qemu.sh: SKIPPED, qemu-system-x86_64 is not installed"; exit 0; }
export DRIVER=qemu START_WAIT_TENTHS=900 UP_ARGS="--compute-hosts 2"
export OS_QEMU__GUEST_CACHE_DIR=${STRATUS_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stratus}
source "$(dirname "$0")/lib.sh"
export OS_COMPUTE_API_VERSION=2.80
# Guests outlive the all-in-one (detached, as meant): this run's are stopped before lib.sh's cleanup.
trap 'for f in "$D"/instances/*/*/qemu.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null; done; cleanup' EXIT
up_ready() { for _ in $(seq 1 900); do grep -q "all-in-one ready" "$1" && return 0; sleep 0.1; done; tail -20 "$1"; exit 1; }
up_ready "$D/up.log"
grep -q 'compute hosts: 2 (compute1, compute2)' "$D/up.log" && grep -q "compute driver: qemu" "$D/up.log" || { tail -20 "$D/up.log"; exit 1; }
grep "compute driver" "$D/up.log"
nova_login

# console_of <id>: the guest's serial console as the API gives it (its last 100 KiB).
console_of() { curl -sf -X POST -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' -d '{"os-getConsoleOutput": {}}' "$NOVA/servers/$1/action" | python3 -c 'import json,sys; print(json.load(sys.stdin)["output"])'; }
# The console from the guest's last boot on (each boot starts with "stratus-init: kernel").
last_boot() { console_of "$1" | awk '/stratus-init: kernel/ { b = "" } { b = b $0 "\n" } END { printf "%s", b }'; }
# console_has <id> <perl regex over the whole last boot> [seconds]
console_has() {
  local out
  # Not `last_boot | grep -q`: grep leaving early fails the pipeline (pipefail, SIGPIPE).
  for _ in $(seq 1 $((${3:-120} * 2))); do out=$(last_boot "$1" 2>/dev/null) && grep -Pzq "$2" <<<"$out" && return 0; sleep 0.5; done
  echo "the last boot of $1 never showed /$2/:"; last_boot "$1" | grep -v '^tick' | tail -20; exit 1
}
# Boots so far, in the guest's whole serial log on its host (the API shows only its last 100 KiB,
# from which early boots scroll out).
boots() { cat "$(gdir "$1")"/console.log* 2>/dev/null | grep -ac 'stratus-init: kernel' || true; }
# boot_after <id> <n>: waits for the guest's boot number n+1.
boot_after() { for _ in $(seq 1 240); do (( $(boots "$1") > $2 )) && return 0; sleep 0.5; done; echo "$1 did not boot again (boot $2 was the last)"; exit 1; }
last_tick() { console_of "$1" | grep -Eo 'tick [0-9.]+' | tail -1 | cut -d' ' -f2; }
gdir() { echo "$D/instances/$(host_of "$1")/$1"; }

step "image create guest (the minimal image)"
img=${STRATUS_MINIMAL_IMAGE:-}
if [[ -z $img || ! -f $img ]]; then img="$D/guest.qcow2"; run node "$here/bin/stratus.mjs" image build --kind minimal --output "$img" --cache-dir "$OS_QEMU__GUEST_CACHE_DIR"; fi
openstack image create --disk-format qcow2 --container-format bare --file "$img" --property hypervisor_type=qemu guest -f value -c id >/dev/null
# Small flavors: guest RAM is what a live migration copies.
openstack flavor create --ram 256 --disk 1 --vcpus 1 mv.1 -f value -c id >/dev/null
openstack flavor create --ram 320 --disk 2 --vcpus 1 mv.2 -f value -c id >/dev/null
openstack flavor create --ram 320 --disk 3 --vcpus 1 mv.3 -f value -c id >/dev/null
cat > "$D/ud.sh" <<'UD'
#!/bin/sh
if [ -f /root/marker ]; then echo "marker: kept $(cat /root/marker)"; else echo "m$$-$(cut -d' ' -f1 /proc/uptime)" > /root/marker; sync; echo "marker: new $(cat /root/marker)"; fi
(while true; do echo "tick $(cut -d' ' -f1 /proc/uptime)"; sleep 1; done) &
UD

step "server create vm1 (config drive, no NIC)"
run openstack server create --flavor mv.1 --image guest --config-drive true --user-data "$D/ud.sh" --nic none --wait vm1 -f value -c id
VM=$(openstack server show vm1 -f value -c id)
console_has "$VM" 'stratus-init: datasource config-2'
console_has "$VM" 'marker: new'
marker=$(console_of "$VM" | sed -n 's/^marker: new //p' | tail -1)
echo "    on $(host_of "$VM"), marker $marker"

step "server resize --flavor mv.2 → VERIFY_RESIZE → confirm"
h=$(host_of "$VM"); n=$(boots "$VM")
run openstack server resize --flavor mv.2 vm1; wait_status "$VM" VERIFY_RESIZE 1200
wait_migration "$VM" resize finished
boot_after "$VM" "$n"
# The resized guest boots from its own disk grown to 2 GiB, with its config drive.
console_has "$VM" "stratus-init: root 2G[\s\S]*stratus-init: datasource config-2[\s\S]*marker: kept $marker"
run openstack server resize confirm vm1; wait_status "$VM" ACTIVE; wait_migration "$VM" resize confirmed
[[ ! -d $D/instances/$h/${VM}_resize ]] || { echo "the kept disks on $h survived the confirm"; exit 1; }
echo "    $h → $(host_of "$VM")"
expect_fail 400 openstack server resize --flavor mv.1 vm1   # a smaller root disk

step "server resize --flavor mv.3, then revert (back on the old host, old flavor, old disk)"
h=$(host_of "$VM"); n=$(boots "$VM")
run openstack server resize --flavor mv.3 vm1; wait_status "$VM" VERIFY_RESIZE 1200
run openstack server resize revert vm1; wait_status "$VM" ACTIVE 600; wait_migration "$VM" resize reverted
[[ $(host_of "$VM") == "$h" && $(server_field "$VM" 'd["flavor"]["original_name"]') == mv.2 ]] || { echo "revert did not put vm1 back on $h with mv.2"; exit 1; }
boot_after "$VM" "$n"
console_has "$VM" "stratus-init: root 2G[\s\S]*marker: kept $marker"

step "server migrate (cold) → confirm"
h=$(host_of "$VM"); n=$(boots "$VM")
run openstack server migrate vm1; wait_status "$VM" VERIFY_RESIZE 1200
[[ $(host_of "$VM") == "$(other_host "$h")" ]] || { echo "cold migration stayed on $h"; exit 1; }
run openstack server resize confirm vm1; wait_status "$VM" ACTIVE; wait_migration "$VM" migration confirmed
boot_after "$VM" "$n"
console_has "$VM" "stratus-init: datasource config-2[\s\S]*marker: kept $marker"
# The config drive came along byte for byte (Nova copies it; a rebuilt one would differ).
cd_sum=$(sha256sum "$(gdir "$VM")/disk.config" | cut -d' ' -f1)

step "server migrate --live-migration (block migration): the guest runs on, it never reboots"
h=$(host_of "$VM"); n=$(boots "$VM")
console_has "$VM" 'tick [0-9.]+'
t_before=$(last_tick "$VM")
run openstack server migrate --live-migration vm1
wait_migration "$VM" live-migration completed 1800; wait_status "$VM" ACTIVE
[[ $(host_of "$VM") == "$(other_host "$h")" ]] || { echo "live migration stayed on $h"; exit 1; }
sleep 3
t_after=$(last_tick "$VM")
echo "    $h → $(host_of "$VM"): uptime $t_before s before, $t_after s after; boots $n → $(boots "$VM")"
python3 -c 'import sys; sys.exit(0 if float(sys.argv[2]) > float(sys.argv[1]) else 1)' "$t_before" "$t_after" || { echo "the guest's uptime did not go on"; exit 1; }
[[ $(boots "$VM") == "$n" ]] || { echo "the guest rebooted during the live migration"; exit 1; }
[[ $(sha256sum "$(gdir "$VM")/disk.config" | cut -d' ' -f1) == "$cd_sum" ]] || { echo "the config drive on $(host_of "$VM") is not the instance's"; exit 1; }
[[ ! -d $D/instances/$h/$VM ]] || { echo "the source's copy of the guest is still on $h"; exit 1; }
openstack server migration list --server vm1 -f value -c Type -c Status | sort | uniq -c

step "server evacuate: the host's guest killed (fenced), its service forced down"
src=$(host_of "$VM")
kill -9 "$(cat "$(gdir "$VM")/qemu.pid")"
run openstack compute service set --down "$src" nova-compute
# python3-openstackclient 6.0 reads the server from evacuate's return value, a tuple, and fails
# ("'TupleWithMeta' object has no attribute …") after Nova accepted the evacuation.
out=$(openstack server evacuate vm1 2>&1) || grep -q TupleWithMeta <<<"$out" || { echo "$out"; exit 1; }
wait_status "$VM" ACTIVE 1200; wait_migration "$VM" evacuation done
[[ $(host_of "$VM") == "$(other_host "$src")" ]] || { echo "evacuate left vm1 on $src"; exit 1; }
# Rebuilt from its image on the other host: a new root disk, the config drive again.
console_has "$VM" "stratus-init: datasource config-2[\s\S]*marker: new"
step "the all-in-one restarted: the evacuated host cleans up its leftovers (Nova's _destroy_evacuated_instances)"
[[ -d $D/instances/$src/$VM ]] || { echo "nothing was left on $src to clean up"; exit 1; }
kill "$STRATUS_PID"; wait "$STRATUS_PID" 2>/dev/null || true
node "$here/bin/stratus.mjs" up --data-dir "$D" --port "$PORT" --driver qemu --compute-hosts 2 > "$D/up2.log" 2>&1 &
STRATUS_PID=$!
up_ready "$D/up2.log"
wait_migration "$VM" evacuation completed
[[ ! -d $D/instances/$src/$VM ]] || { echo "$src kept the evacuated guest's directory"; exit 1; }
run openstack compute service set --up "$src" nova-compute
wait_status "$VM" ACTIVE

step "delete leaves nothing behind"
run openstack server delete --wait vm1
left=$(find "$D"/instances/compute* -mindepth 1 -maxdepth 1 -name '*-*-*-*-*' | wc -l)
[[ $left == 0 ]] || { echo "instance directories left: $(ls "$D"/instances/compute*)"; exit 1; }
if pgrep -f "qemu-system.*$D/instances" >/dev/null; then echo "qemu processes left: $(pgrep -af "qemu-system.*$D/instances")"; exit 1; fi
echo "moves-qemu.sh: OK in $SECONDS s (resize confirm/revert, cold and live migration, evacuate on real guests)"
