#!/usr/bin/env bash
# The operator steps of an OpenStack installation, run unchanged with the real openstack CLI
# against a fresh all-in-one. Fails on the first step that does not behave as on OpenStack.
set -euo pipefail
# A Keystone-only all-in-one, as at this step of an OpenStack install: compute and placement
# are not registered yet, so the install guide's commands run exactly as written.
export OS_DEFAULT__ENABLED_APIS=identity
source "$(dirname "$0")/lib.sh"
# --password-prompt reads from a terminal: answer-prompts.py types the password into a pty.
prompted() { /usr/bin/python3 "$here/test/cli/answer-prompts.py" "$@"; }

step token issue;               openstack token issue -f value -c project_id >/dev/null
step "project create service (409 after bootstrap made it)"
expect_fail 409 openstack project create --domain default --description "Service Project" service
step "user create nova (password on stdin)"
prompted nova-pass openstack user create --domain default --password-prompt nova -f value -c id >/dev/null
step role add nova;             openstack role add --project service --user nova admin
step service create nova;       openstack service create --name nova --description "OpenStack Compute" compute -f value -c id >/dev/null
for i in public internal admin; do
  step "endpoint create compute $i"; openstack endpoint create --region RegionOne compute $i http://controller:8774/v2.1 -f value -c id >/dev/null
done
step "user create placement";   prompted pl-pass openstack user create --domain default --password-prompt placement -f value -c id >/dev/null
step role add placement;        openstack role add --project service --user placement admin
step service create placement;  openstack service create --name placement --description "Placement API" placement -f value -c id >/dev/null
step endpoint create placement; openstack endpoint create --region RegionOne placement public http://controller:8778 -f value -c id >/dev/null
step catalog list;              openstack catalog list -f value -c Name | grep -x nova >/dev/null
step endpoint list;             test "$(openstack endpoint list --service compute -f value -c ID | wc -l)" = 3
step role assignment list;      openstack role assignment list --names -f value | grep -E 'admin nova@Default +service@Default' >/dev/null
step "token issue as nova";     openstack --os-username nova --os-password nova-pass --os-project-name service token issue -f value -c user_id >/dev/null
step "application credential";  secret=$(openstack application credential create app1 -f value -c secret)
appid=$(openstack application credential show app1 -f value -c id)
( unset OS_USERNAME OS_PASSWORD OS_PROJECT_NAME OS_USER_DOMAIN_NAME OS_PROJECT_DOMAIN_NAME
  OS_AUTH_TYPE=v3applicationcredential OS_APPLICATION_CREDENTIAL_ID=$appid OS_APPLICATION_CREDENTIAL_SECRET=$secret \
    openstack token issue -f value -c project_id >/dev/null )
step "application credential with access rules: what they allow, nothing else"
rsecret=$(openstack application credential create app-rules --access-rules '[{"service": "identity", "method": "GET", "path": "/v3/projects"}]' -f value -c secret)
rid=$(openstack application credential show app-rules -f value -c id)
( unset OS_USERNAME OS_PASSWORD OS_PROJECT_NAME OS_USER_DOMAIN_NAME OS_PROJECT_DOMAIN_NAME
  export OS_AUTH_TYPE=v3applicationcredential OS_APPLICATION_CREDENTIAL_ID=$rid OS_APPLICATION_CREDENTIAL_SECRET=$rsecret
  openstack project list -f value -c Name | grep -x service >/dev/null
  expect_fail 403 openstack user list
  expect_fail 403 openstack ec2 credentials create )
step "oauth1 delegation (keystoneclient + keystoneauth1 oauth1 plugin)"
/usr/bin/python3 "$here/test/cli/oauth1.py"
step "member of A gets 403 on B and on admin calls"
openstack project create pa -f value -c id >/dev/null; openstack project create pb -f value -c id >/dev/null
openstack user create --password ua-pass ua -f value -c id >/dev/null
openstack role add --project pa --user ua member
expect_fail 403 openstack --os-username ua --os-password ua-pass --os-project-name pa project show pb
expect_fail 403 openstack --os-username ua --os-password ua-pass --os-project-name pa user list
step "reader cannot write"
openstack user create --password ur-pass ur -f value -c id >/dev/null
openstack role add --project pa --user ur reader
expect_fail 403 openstack --os-username ur --os-password ur-pass --os-project-name pa project create nope
step "revoked token no longer validates"
tok=$(openstack token issue -f value -c id)
openstack token revoke "$tok"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $(openstack token issue -f value -c id)" -H "X-Subject-Token: $tok" "$OS_AUTH_URL/auth/tokens")
[[ $code == 404 ]] || { echo "revoked token validated with $code"; exit 1; }
echo "identity CLI scenario: all steps passed"
