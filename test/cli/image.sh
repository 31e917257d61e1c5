#!/usr/bin/env bash
# The user-facing Image service commands, run with the real clients (openstack from
# python3-openstackclient, glance from python3-glanceclient) against a fresh all-in-one: upload of
# a qcow2 (virtual size, checksum), properties, list, download, tags, protection, sharing with
# another project (pending → accepted, invisible to a third project), the glance CLI's create /
# update / list / download, interoperable import (glance-direct and web-download from a loopback
# HTTP server, plus its URI filtering), the tasks API (glance task-create/show/list), and bad input (unknown disk format, upload to an active
# image, a qcow2 with a backing file). Fails on the first step that does not behave as on OpenStack.
set -euo pipefail
# web-download from the loopback server below: Glance's [import_filtering_opts] must allow its
# host and port (Stratus also refuses loopback addresses unless the host is listed explicitly).
HTTP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export OS_IMPORT_FILTERING_OPTS__ALLOWED_HOSTS=127.0.0.1
export OS_IMPORT_FILTERING_OPTS__ALLOWED_PORTS=$HTTP_PORT
source "$(dirname "$0")/lib.sh"

# js EXPR: evaluates a Python expression over the JSON document on stdin (bound to d).
js() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# check WHAT GOT WANT: fails the scenario unless GOT equals WANT.
check() { [[ $2 == "$3" ]] || { echo "$1: got '$2', expected '$3'"; exit 1; }; }
# fails COMMAND...: the command must fail; its output (stdout and stderr) is left in $out. Its
# stdin is closed: glanceclient takes a stdin that is not a terminal for image data.
fails() { if out=$("$@" 2>&1 <&-); then echo "expected a failure, command succeeded: $*"; echo "$out"; exit 1; fi; }
# gfield FIELD: a value from glanceclient's Property/Value table on stdin.
gfield() { awk -F'|' -v k="$1" '{f=$2; gsub(/^ +| +$/, "", f)} f == k {v=$3; gsub(/^ +| +$/, "", v); print v; exit}'; }
md5() { md5sum "$1" | cut -d' ' -f1; }
wait_active() { # wait_active <image>: polls up to ~30 s
  local s
  for _ in $(seq 1 60); do
    s=$(openstack image show "$1" -f value -c status)
    [[ $s == active ]] && return 0
    sleep 0.5
  done
  echo "image $1 never became active (status $s)"; exit 1
}
as_bob() { env OS_USERNAME=bob OS_PASSWORD=secret1 OS_PROJECT_NAME=other "$@"; }
as_carol() { env OS_USERNAME=carol OS_PASSWORD=secret2 OS_PROJECT_NAME=third "$@"; }

step "test images: a 64 MiB qcow2, 1 MiB of raw, a qcow2 backed by /etc/passwd"
qemu-img create -f qcow2 "$D/img.qcow2" 64M >/dev/null
head -c 1048576 /dev/urandom > "$D/img.raw"
qemu-img create -f qcow2 -b /etc/passwd -F raw "$D/evil.qcow2" >/dev/null
check "qemu-img virtual-size" "$(qemu-img info --output=json "$D/img.qcow2" | js 'd["virtual-size"]')" 67108864

step "image create --file (qcow2, with properties)"
# openstacksdk returns the image as created, before the upload: the output says queued, as it
# does against Glance. The upload itself has finished when the command returns.
openstack image create --disk-format qcow2 --container-format bare --file "$D/img.qcow2" \
  --property architecture=x86_64 --property hypervisor_type=qemu --property vm_mode=hvm cirros -f json > "$D/create.json"
check "create output name" "$(js 'd["name"]' < "$D/create.json")" cirros
openstack image show cirros -f json > "$D/show.json"
check status "$(js 'd["status"]' < "$D/show.json")" active
check virtual_size "$(js 'd["virtual_size"]' < "$D/show.json")" 67108864
check size "$(js 'd["size"]' < "$D/show.json")" "$(stat -c %s "$D/img.qcow2")"
check checksum "$(js 'd["checksum"]' < "$D/show.json")" "$(md5 "$D/img.qcow2")"
check properties "$(js '" ".join(d["properties"][k] for k in ("architecture","hypervisor_type","vm_mode"))' < "$D/show.json")" "x86_64 qemu hvm"
check os_hash_algo "$(js 'd["properties"]["os_hash_algo"]' < "$D/show.json")" sha512
check os_hash_value "$(js 'd["properties"]["os_hash_value"]' < "$D/show.json")" "$(sha512sum "$D/img.qcow2" | cut -d' ' -f1)"
CIRROS=$(js 'd["id"]' < "$D/show.json")

step "image set --property; image show"
openstack image set --property os_type=linux --property auto_disk_config=true cirros
props=$(openstack image show cirros -f json -c properties)
check "os_type, auto_disk_config" "$(js '(d["properties"]["os_type"], d["properties"]["auto_disk_config"])' <<<"$props")" "('linux', 'true')"
check "earlier properties kept" "$(js 'd["properties"]["vm_mode"]' <<<"$props")" hvm

step "image list --long"
openstack image list --long -f json > "$D/list.json"
check "cirros in the long list" "$(js '[(i["Name"], i["Status"], i["Checksum"], i["Disk Format"]) for i in d if i["ID"] == "'"$CIRROS"'"]' < "$D/list.json")" \
  "[('cirros', 'active', '$(md5 "$D/img.qcow2")', 'qcow2')]"

step "image save"
openstack image save --file "$D/out" cirros
cmp "$D/out" "$D/img.qcow2"
check "md5 of the download" "$(md5 "$D/out")" "$(js 'd["checksum"]' < "$D/show.json")"

step "image set --tag"
openstack image set --tag t1 cirros
check tags "$(openstack image show cirros -f json -c tags | js 'd["tags"]')" "['t1']"

step "image set --protected; image delete refused (403)"
openstack image set --protected cirros
fails openstack image delete cirros
grep -q "403 Forbidden" <<<"$out" && grep -q "Image $CIRROS is protected and cannot be deleted" <<<"$out" \
  && grep -q "Failed to delete 1 of 1 images" <<<"$out" || { echo "unexpected output: $out"; exit 1; }
check "still there, protected" "$(openstack image show cirros -f value -c protected -c status | tr '\n' ' ')" "True active "
openstack image set --unprotected cirros
check protected "$(openstack image show cirros -f value -c protected)" False

step "sharing: project other, user bob (member)"
OTHER=$(openstack project create other -f value -c id)
openstack user create --project other --password secret1 bob -f value -c id >/dev/null
openstack role add --project other --user bob member
openstack project create third -f value -c id >/dev/null
openstack user create --project third --password secret2 carol -f value -c id >/dev/null
openstack role add --project third --user carol member
check visibility "$(js 'd["visibility"]' < "$D/show.json")" shared  # Glance's default since Rocky

step "image add project; image member list shows pending"
check "member status" "$(openstack image add project cirros other -f value -c status)" pending
check "member list" "$(openstack image member list cirros -f value)" "$CIRROS $OTHER pending"
check "bob's list before accepting" "$(as_bob openstack image list -f value -c Name)" ""

step "image set --accept (as bob); bob lists the image"
as_bob openstack image set --accept "$CIRROS"
check "member list" "$(openstack image member list cirros -f value)" "$CIRROS $OTHER accepted"
check "bob's list" "$(as_bob openstack image list -f value -c ID -c Name)" "$CIRROS cirros"
check "bob's show" "$(as_bob openstack image show "$CIRROS" -f value -c checksum)" "$(md5 "$D/img.qcow2")"

step "a project that is not a member neither lists nor shows it"
check "carol's list" "$(as_carol openstack image list -f value -c ID)" ""
fails as_carol openstack image show "$CIRROS"
check "carol's show" "$out" "No Image found for $CIRROS"

step "glance image-create --file (raw, with a property)"
glance image-create --name n --disk-format raw --container-format bare --property hypervisor_type=kvm --file "$D/img.raw" > "$D/n.txt"
check status "$(gfield status < "$D/n.txt")" active
check checksum "$(gfield checksum < "$D/n.txt")" "$(md5 "$D/img.raw")"
check hypervisor_type "$(gfield hypervisor_type < "$D/n.txt")" kvm
N=$(gfield id < "$D/n.txt")

step "glance image-update --property"
glance image-update --property vm_mode=hvm "$N" <&- > "$D/n2.txt"
check vm_mode "$(gfield vm_mode < "$D/n2.txt")" hvm
check "hypervisor_type kept" "$(gfield hypervisor_type < "$D/n2.txt")" kvm

step "glance image-list"
check "n listed" "$(glance image-list <&- | gfield "$N")" n

step "glance image-download"
glance image-download "$N" --file "$D/out2" <&-
cmp "$D/out2" "$D/img.raw"

step "image create --import (glance-direct)"
openstack image create --import --disk-format raw --container-format bare --file "$D/img.raw" imp -f value -c id >/dev/null
wait_active imp
check checksum "$(openstack image show imp -f value -c checksum)" "$(md5 "$D/img.raw")"
openstack image save --file "$D/out3" imp
cmp "$D/out3" "$D/img.raw"

step "web-download from a loopback HTTP server"
python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$D" > "$D/http.log" 2>&1 &
HTTP_PID=$!
trap 'kill $HTTP_PID 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/img.raw" && break; sleep 0.1; done
# <&-: glanceclient takes a stdin that is not a terminal for image data, and refuses that here.
glance image-create-via-import --disk-format raw --container-format bare --name web --import-method web-download \
  --uri "http://127.0.0.1:$HTTP_PORT/img.raw" <&- > "$D/web.txt"
check "status on return" "$(gfield status < "$D/web.txt")" importing
wait_active web
check checksum "$(openstack image show web -f value -c checksum)" "$(md5 "$D/img.raw")"
grep -q '"GET /img.raw HTTP/1.1" 200' "$D/http.log"

step "web-download refused by [import_filtering_opts]: a port and a host not allowed (400)"
fails glance image-create-via-import --disk-format raw --container-format bare --name web2 --import-method web-download \
  --uri "http://127.0.0.1:$((HTTP_PORT == 65535 ? HTTP_PORT - 1 : HTTP_PORT + 1))/img.raw"
grep -q "HTTP 400 Bad Request: URI for web-download does not pass filtering" <<<"$out" || { echo "unexpected output: $out"; exit 1; }
fails glance image-create-via-import --disk-format raw --container-format bare --name web3 --import-method web-download \
  --uri "http://localhost:$HTTP_PORT/img.raw"
grep -q "HTTP 400 Bad Request: URI for web-download does not pass filtering: http://localhost:$HTTP_PORT/img.raw" <<<"$out" || { echo "unexpected output: $out"; exit 1; }
check "web2 and web3 stay queued" "$(openstack image list -f value -c Name -c Status | grep -E '^web[23] ' | sort | tr '\n' ' ')" "web2 queued web3 queued "

step "tasks API: glance task-create (import), task-show until success, task-list; a member is refused"
glance task-create --type import --input "{\"import_from\": \"http://127.0.0.1:$HTTP_PORT/img.raw\", \"import_from_format\": \"raw\", \"image_properties\": {\"name\": \"from-task\", \"disk_format\": \"raw\", \"container_format\": \"bare\"}}" <&- > "$D/task.txt"
TASK=$(gfield id < "$D/task.txt")
check "task type" "$(gfield type < "$D/task.txt")" import
for _ in $(seq 1 60); do
  glance task-show "$TASK" <&- > "$D/task2.txt"
  [[ $(gfield status < "$D/task2.txt") == success ]] && break
  sleep 0.5
done
check "task status" "$(gfield status < "$D/task2.txt")" success
TASK_IMAGE=$(gfield result < "$D/task2.txt" | js 'd["image_id"]')
check "task image" "$(openstack image show "$TASK_IMAGE" -f value -c name -c status | tr '\n' ' ')" "from-task active "
check "task image checksum" "$(openstack image show "$TASK_IMAGE" -f value -c checksum)" "$(md5 "$D/img.raw")"
glance task-list --status success --type import --sort-key id --sort-dir asc --page-size 1 <&- | grep -q "$TASK" || { echo "task $TASK not in task-list"; exit 1; }
fails as_bob glance task-list
grep -q "HTTP 403 Forbidden" <<<"$out" || { echo "unexpected output: $out"; exit 1; }
fails glance task-create --type import --input '{"import_from": "file:///etc/passwd", "import_from_format": "raw", "image_properties": {}}'
grep -q "HTTP 400 Bad Request: File based imports are not allowed" <<<"$out" || { echo "unexpected output: $out"; exit 1; }

step "image create --disk-format bogus refused"
fails openstack image create --disk-format bogus --container-format bare --file "$D/img.raw" bad
grep -q "invalid choice: 'bogus'" <<<"$out" || { echo "unexpected output: $out"; exit 1; }  # refused by the client

step "glance image-upload to an active image: 409"
fails glance image-upload --file "$D/img.raw" "$N"
grep -q "HTTP 409 Conflict: Image status transition from active to saving is not allowed" <<<"$out" || { echo "unexpected output: $out"; exit 1; }
glance image-show "$N" <&- > "$D/n3.txt"
check "still active, data unchanged" "$(gfield status < "$D/n3.txt") $(gfield checksum < "$D/n3.txt")" "active $(md5 "$D/img.raw")"

step "a qcow2 with a backing file is refused (400) and the image stays queued"
E=$(glance image-create --name evil --disk-format qcow2 --container-format bare <&- | gfield id)
fails glance image-upload --file "$D/evil.qcow2" "$E"
grep -q 'HTTP 400 Bad Request: .*backing file ("/etc/passwd")' <<<"$out" || { echo "unexpected output: $out"; exit 1; }
check "evil status" "$(openstack image show "$E" -f json | js '(d["status"], d.get("size"), d.get("checksum"))')" "('queued', None, None)"

step "image delete"
openstack image delete cirros "$E"
fails openstack image show "$CIRROS"
check "cirros gone" "$out" "No Image found for $CIRROS"
echo "image CLI scenario: all steps passed"
