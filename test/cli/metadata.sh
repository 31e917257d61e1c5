#!/usr/bin/env bash
# What a guest reads, checked with the real openstack CLI on the booting side: servers created
# with --config-drive, --user-data, --key-name, --property and --nic none|auto on a fresh
# all-in-one (fake driver), then read through each server's own metadata relay (the process QEMU
# starts per guest connection) as cloud-init reads them; the signature refusals; the password a
# guest posts, as `nova get-password` shows it.
set -euo pipefail
[[ ${DEBUG-} ]] && set -x
source "$(dirname "$0")/lib.sh"
secret=$(sed -n 's/^metadata_proxy_shared_secret *= *//p' "$D/stratus.conf")
sig() { printf %s "$1" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1; }
# get <server-uuid> <path> [method body]: one guest request through that server's relay.
get() {
  local body=${4-}
  { printf '%s %s HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n' "${3:-GET}" "$2"
    [[ -n $body ]] && printf 'Content-Length: %s\r\n' "${#body}"
    printf '\r\n%s' "$body"; } |
    node "$here/bin/stratus-metadata-relay.mjs" "http://127.0.0.1:$PORT/metadata" "$1" "$(sig "$1")" > "$D/resp"
  sed -n '1s/\r$//p' "$D/resp" > "$D/status"
  sed '1,/^\r$/d' "$D/resp"
}
status() { cut -d' ' -f2 "$D/status"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

for _ in $(seq 1 100); do openstack hypervisor list -f value -c ID 2>/dev/null | grep . && break; sleep 0.2; done >/dev/null
head -c 65536 /dev/zero > "$D/disk.raw"
openstack image create --disk-format raw --container-format bare --file "$D/disk.raw" guest -f value -c id >/dev/null
ssh-keygen -q -t ed25519 -N '' -C k1@cli -f "$D/k1" 2>/dev/null || python3 -c "print('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm0Jf6rZ0hS3J3u4n0b1mTq3oQ9m6iQm0b3YbVqkQ2D k1@cli')" > "$D/k1.pub"
openstack keypair create --public-key "$D/k1.pub" k1 >/dev/null
printf '#!/bin/sh\necho hello from user_data\n' > "$D/hello.sh"

step "server create --config-drive true --user-data --key-name --property --nic none"
openstack server create --flavor m1.tiny --image guest --key-name k1 --user-data "$D/hello.sh" --property role=web --config-drive true --nic none --wait vm1 >/dev/null
vm1=$(openstack server show vm1 -f value -c id)
test "$(openstack server show vm1 -f value -c config_drive)" = True
step "server create --nic auto"
openstack server create --flavor m1.tiny --image guest --key-name k1 --nic auto --wait vm3 >/dev/null
vm3=$(openstack server show vm3 -f value -c id)

step "/openstack lists 2018-08-27 (what cloud-init 22.4 picks)"; get "$vm1" /openstack | grep -x 2018-08-27 >/dev/null
step "meta_data.json is vm1's";   get "$vm1" /openstack/2018-08-27/meta_data.json > "$D/md.json"
test "$(json 'd["uuid"], d["name"], d["hostname"], d["meta"]["role"]' < "$D/md.json")" = "$vm1 vm1 vm1.novalocal web"
test "$(json 'd["public_keys"]["k1"]' < "$D/md.json")" = "$(cat "$D/k1.pub")"
step "user_data";                 get "$vm1" /openstack/2018-08-27/user_data | cmp - "$D/hello.sh"
step "vendor_data*.json";         test "$(get "$vm1" /openstack/2018-08-27/vendor_data.json)" = '{}'; test "$(get "$vm1" /openstack/2018-08-27/vendor_data2.json)" = '{"static": {}}'
step "network_data.json (--nic none)"; test "$(get "$vm1" /openstack/2018-08-27/network_data.json)" = '{}'
step "EC2 tree";                  test "$(get "$vm1" /latest/meta-data/public-keys/)" = 0=k1
test "$(get "$vm1" /latest/meta-data/public-keys/0/openssh-key)" = "$(cat "$D/k1.pub")"
test "$(get "$vm1" /latest/meta-data/placement/availability-zone)" = nova
test "$(get "$vm1" /latest/meta-data/local-hostname)" = vm1.novalocal
test "$(get "$vm1" /latest/meta-data/instance-type)" = m1.tiny
get "$vm1" /latest/meta-data/instance-id | grep -xE 'i-[0-9a-f]{17}' >/dev/null
get "$vm1" /latest/user-data | cmp - "$D/hello.sh"
step "network_data.json (--nic auto): a link with vm3's MAC, DHCP on it"
get "$vm3" /openstack/latest/network_data.json > "$D/nd.json"
test "$(json 'len(d["links"]), d["networks"][0]["type"], d["networks"][0]["link"] == d["links"][0]["id"]' < "$D/nd.json")" = "1 ipv4_dhcp True"
mac=$(curl -sf -H "X-Auth-Token: $(openstack token issue -f value -c id)" "http://127.0.0.1:$PORT/compute/v2.1/servers/$vm3" | json 'd["server"]["addresses"]["user"][0]["OS-EXT-IPS-MAC:mac_addr"]')
test "$(json 'd["links"][0]["ethernet_mac_address"]' < "$D/nd.json")" = "$mac"
test "$(get "$vm3" /latest/meta-data/local-ipv4)" = 169.254.0.15
openstack server show vm3 -f value -c addresses | grep -q 169.254.0.15
step "vm3's relay gets vm3's data"; test "$(get "$vm3" /openstack/latest/meta_data.json | json 'd["uuid"]')" = "$vm3"

step "unsigned and mis-signed requests are refused"
test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metadata/openstack")" = 400
test "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Instance-ID: $vm1" "http://127.0.0.1:$PORT/metadata/openstack")" = 403
test "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Instance-ID: $vm3" -H "X-Instance-ID-Signature: $(sig "$vm1")" "http://127.0.0.1:$PORT/metadata/openstack/latest/meta_data.json")" = 403

step "the guest posts its password once; nova get-password shows it"
get "$vm1" /openstack/latest/password POST 'c2VjcmV0LWVuY3J5cHRlZA==' >/dev/null; test "$(status)" = 200
get "$vm1" /openstack/latest/password POST 'again' >/dev/null; test "$(status)" = 409
test "$(nova get-password vm1)" = 'c2VjcmV0LWVuY3J5cHRlZA=='
nova clear-password vm1
get "$vm1" /openstack/latest/password POST 'second' >/dev/null; test "$(status)" = 200

step "deleted: 404"; openstack server delete --wait vm3; sleep 16   # past [api] metadata_cache_expiration
get "$vm3" /openstack/latest/meta_data.json >/dev/null; test "$(status)" = 404
echo "metadata scenario passed"
