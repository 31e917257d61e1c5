#!/usr/bin/env bash
# Real guests with the real openstack CLI: the issue's "What must work" sequence on a fresh
# all-in-one with the QEMU driver and the minimal image (stratus image build --kind minimal;
# STRATUS_MINIMAL_IMAGE=FILE reuses one). What the guest's init logs on its serial console
# (openstack console log show) is the proof that the config drive, the metadata service, the
# key, user_data and the grown root disk reached the guest.
set -euo pipefail
command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 is not installed"; exit 1; }
export DRIVER=qemu START_WAIT_TENTHS=900
export OS_QEMU__GUEST_CACHE_DIR=${STRATUS_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stratus}
source "$(dirname "$0")/lib.sh"
stratus() { node "$here/bin/stratus.mjs" "$@"; }
# Guests outlive the all-in-one (they are detached, as meant): stop this run's before lib.sh's cleanup.
trap 'for f in "$D"/instances/*/qemu.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null; done; cleanup' EXIT
# The banner comes once the compute agent is up (its accelerator probe boots a tiny guest).
for _ in $(seq 1 900); do grep -q "all-in-one ready" "$D/up.log" && break; sleep 0.1; done
grep -q "compute driver: qemu" "$D/up.log" || { tail -20 "$D/up.log"; exit 1; }
grep "compute driver" "$D/up.log"

# console_has <server> <regex>: waits up to 120 s for the server's console log to match.
console_has() {
  for _ in $(seq 1 240); do openstack console log show "$1" 2>/dev/null | grep -Eq "$2" && return 0; sleep 0.5; done
  echo "console of $1 never showed /$2/:"; openstack console log show "$1" | grep stratus-init; exit 1
}
status_is() { for _ in $(seq 1 240); do [[ $(openstack server show "$1" -f value -c status) == "$2" ]] && return 0; sleep 0.5; done; echo "$1 never reached $2"; openstack server show "$1"; exit 1; }
# Ids resolved once (every CLI call costs a second or more on a loaded machine), kept in files
# because the callers run in $(…) subshells, and needed while the all-in-one is down.
id_of() { [[ -s $D/id.$1 ]] || openstack server show "$1" -f value -c id > "$D/id.$1"; cat "$D/id.$1"; }
# Boots so far, counted in the whole serial log (the API shows its last 100 KiB, as Nova's libvirt driver).
boots() { cat "$D/instances/$(id_of "$1")"/console.log* 2>/dev/null | grep -ac 'stratus-init: up in' || true; }
# boots_reach <server> <n>: waits up to 150 s for the n-th boot of the guest to finish. A power
# action returns once qemu runs, and the guest boots after that (20 s under TCG on a loaded
# machine): every action that restarts the guest is followed by this wait, otherwise the next
# one lands in the firmware of the last and two boots show as one (a hard reset during GRUB).
boots_reach() { for _ in $(seq 1 300); do (( $(boots "$1") >= $2 )) && return 0; sleep 0.5; done; echo "$1 did not reach boot $2 ($(boots "$1") so far)"; exit 1; }
# qemu_of <server>: the pid of its qemu process, empty when there is none.
qemu_of() { local f="$D/instances/$(id_of "$1")/qemu.pid"; [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f" || true; }

step "image build --kind minimal"
img=${STRATUS_MINIMAL_IMAGE:-}
if [[ -z $img || ! -f $img ]]; then img="$D/guest.qcow2"; run stratus image build --kind minimal --output "$img" --cache-dir "$OS_QEMU__GUEST_CACHE_DIR"; fi
step "image create guest";  openstack image create --disk-format qcow2 --container-format bare --file "$img" --property hypervisor_type=qemu guest -f value -c id >/dev/null
ssh-keygen -q -t ed25519 -N '' -C k1@stratus -f "$D/k1"
openstack keypair create --public-key "$D/k1.pub" k1 >/dev/null
# user_data leaves a marker on the root disk at the first boot and reports it at the next ones:
# a snapshot or a shelved image carries the disk of the guest it was made from.
printf '#!/bin/sh\necho "hello from user_data on $(hostname)"\nif [ -f /root/marker ]; then echo "marker: kept from $(cat /root/marker)"; else hostname > /root/marker; sync; echo "marker: new"; fi\n' > "$D/hello.sh"

step "server create vm1 (config drive, no NIC)"
t0=$SECONDS
run openstack server create --flavor m1.small --image guest --key-name k1 --user-data "$D/hello.sh" --config-drive true --nic none --wait vm1 -f value -c id
echo "    ACTIVE after $((SECONDS - t0)) s"
console_has vm1 'stratus-init: up in'
log=$(openstack console log show vm1)
for want in 'stratus-init: datasource config-2' 'stratus-init: hostname vm1' 'stratus-init: ssh key installed \(k1\)' 'hello from user_data on vm1' 'stratus-init: user_data exit 0' 'stratus-init: root 20G'; do
  grep -Eq "$want" <<<"$log" || { echo "console of vm1 lacks /$want/"; grep stratus-init <<<"$log"; exit 1; }
done
grep -q "$(cut -d' ' -f2 "$D/k1.pub")" <<<"$log"
# Checks compare captured output: `cmd | grep -q` under pipefail fails with 141 whenever grep
# exits before cmd has written everything (it did on the backup's properties).
[[ $(openstack console log show --lines 3 vm1 | wc -l) == 3 ]]

step "stop / start";        run openstack server stop vm1; status_is vm1 SHUTOFF; run openstack server start vm1; status_is vm1 ACTIVE; boots_reach vm1 2
step "reboot (soft)";       run openstack server reboot --wait vm1; status_is vm1 ACTIVE; boots_reach vm1 3
step "reboot --hard";       run openstack server reboot --hard --wait vm1; status_is vm1 ACTIVE
# Pause and suspend do not need a booted guest: they run while the hard reboot's boot goes on.
step "pause / unpause";     run openstack server pause vm1; status_is vm1 PAUSED; run openstack server unpause vm1; status_is vm1 ACTIVE
step "suspend / resume";    run openstack server suspend vm1; status_is vm1 SUSPENDED; run openstack server resume vm1; status_is vm1 ACTIVE
boots_reach vm1 4
step "rescue / unrescue";   run openstack server rescue vm1; status_is vm1 RESCUE; boots_reach vm1 5
run openstack server unrescue vm1; status_is vm1 ACTIVE; boots_reach vm1 6

step "server image create snap (running guest) → vm2 boots from it"
run openstack server image create --name snap --wait vm1 -f value -c id
[[ $(openstack image show snap -f json -c properties) == *'"image_type": "snapshot"'* ]]
run openstack server create --flavor m1.small --image snap --key-name k1 --user-data "$D/hello.sh" --config-drive true --nic none vm2 -f value -c id
step "server create vm3 (--nic auto: the metadata service)"
run openstack server create --flavor m1.small --image guest --key-name k1 --user-data "$D/hello.sh" --nic auto vm3 -f value -c id
status_is vm2 ACTIVE; status_is vm3 ACTIVE
console_has vm2 'stratus-init: up in'
log=$(openstack console log show vm2)
for want in 'stratus-init: datasource config-2' 'stratus-init: hostname vm2' 'stratus-init: root 20G' 'marker: kept from vm1'; do
  grep -Eq "$want" <<<"$log" || { echo "console of vm2 lacks /$want/"; grep stratus-init <<<"$log"; exit 1; }
done
console_has vm3 'stratus-init: up in'
log=$(openstack console log show vm3)
for want in 'stratus-init: ip 169.254.0.15' 'stratus-init: datasource metadata-service' 'stratus-init: hostname vm3' 'stratus-init: ssh key installed \(k1\)' 'hello from user_data on vm3' 'marker: new'; do
  grep -Eq "$want" <<<"$log" || { echo "console of vm3 lacks /$want/"; grep stratus-init <<<"$log"; exit 1; }
done
[[ $(openstack server show vm3 -f value -c addresses) == *169.254.0.15* ]]

step "server backup create: image_type=backup, the rotation keeps the newest"
run openstack server backup create --name bk1 --type daily --rotate 1 --wait vm1 -f value -c id
run openstack server backup create --name bk2 --type daily --rotate 1 --wait vm1 -f value -c id
[[ $(openstack image show bk2 -f json -c properties) == *'"backup_type": "daily"'* ]]
# The rotation runs on the host after the upload.
for _ in $(seq 1 60); do [[ $(openstack image list --property image_type=backup -f value -c Name) == bk2 ]] && break; sleep 0.5; done
[[ $(openstack image list --property image_type=backup -f value -c Name) == bk2 ]] || { echo "backups after the rotation: $(openstack image list --property image_type=backup -f value -c Name)"; exit 1; }

step "qemu killed under the agent → SHUTOFF through the power sync"
kill -9 "$(qemu_of vm3)"; status_is vm3 SHUTOFF
run openstack server start vm3; status_is vm3 ACTIVE; boots_reach vm3 2

step "shelve (snapshot into vm3-shelved, offloaded at once) / unshelve (boots from it, then deletes it)"
run openstack server shelve vm3; status_is vm3 SHELVED_OFFLOADED
[[ -z $(qemu_of vm3) && ! -d $D/instances/$(id_of vm3) ]] || { echo "vm3's guest is still on the host after the offload"; exit 1; }
[[ $(openstack image show vm3-shelved -f value -c status) == active ]]
run openstack server unshelve vm3; status_is vm3 ACTIVE
console_has vm3 'marker: kept from vm3'
for _ in $(seq 1 20); do openstack image show vm3-shelved >/dev/null 2>&1 || break; sleep 0.5; done
if openstack image show vm3-shelved >/dev/null 2>&1; then echo "the shelved image is still there after the unshelve"; exit 1; fi

step "agent restarted while guests run → adopted, ACTIVE, still controllable"
before=$(qemu_of vm1) ; before2=$(qemu_of vm2); [[ -n $before && -n $before2 ]] || { echo "vm1/vm2 have no qemu before the restart"; exit 1; }
kill "$STRATUS_PID"; wait "$STRATUS_PID" 2>/dev/null || true
[[ -n $(qemu_of vm1) && $(qemu_of vm1) == "$before" && $(qemu_of vm2) == "$before2" ]] || { echo "guests did not outlive the agent"; exit 1; }
node "$here/bin/stratus.mjs" up --data-dir "$D" --port "$PORT" --driver qemu > "$D/up2.log" 2>&1 &
STRATUS_PID=$!
for _ in $(seq 1 900); do grep -q "all-in-one ready" "$D/up2.log" && break; sleep 0.1; done
grep -q "all-in-one ready" "$D/up2.log" || { tail -20 "$D/up2.log"; exit 1; }
grep -q 'adopted running guest' "$D/up2.log" || { echo "no guest adopted:"; tail -20 "$D/up2.log"; exit 1; }
for s in vm1 vm2 vm3; do status_is $s ACTIVE; done
[[ $(qemu_of vm1) == "$before" ]] || { echo "vm1's qemu changed across the restart"; exit 1; }
run openstack server stop vm2; status_is vm2 SHUTOFF
[[ -z $(qemu_of vm2) ]] || { echo "vm2's qemu still runs after stop"; exit 1; }
run openstack server reboot --hard --wait vm1; boots_reach vm1 7

step "delete leaves nothing behind"
run openstack server delete --wait vm1 vm2 vm3
left=$(find "$D/instances" -mindepth 1 -maxdepth 1 -name '*-*-*-*-*' | wc -l)
[[ $left == 0 ]] || { echo "instance directories left: $(ls "$D/instances")"; exit 1; }
# No qemu of this run's instances (their paths are under $D) may be left.
if pgrep -f "qemu-system.*$D/instances" >/dev/null; then echo "qemu processes left: $(pgrep -af "qemu-system.*$D/instances")"; exit 1; fi
echo "qemu.sh: OK in $SECONDS s"
