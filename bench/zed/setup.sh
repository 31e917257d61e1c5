#!/bin/bash
# Configures the reference OpenStack Zed of bench/results/compare-zed-setup.md from scratch, once
# its Debian packages are installed (section 1 there): one oslo.config drop-in per project, SQLite
# databases under /var/lib/<project>/osref.sqlite (the machine's MariaDB is shared and was at its
# connection limit; see the setup notes), fernet keys, the bootstrap, the service users, the
# catalog and Stratus's five flavors. Then starts it with bench/zed/osref.sh.
# Re-running starts from empty databases. Run as root.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
KS=http://127.0.0.1:15000
PW=osrefpw
ADMIN_PW=osrefadmin
db() { echo "sqlite:////var/lib/$1/osref-$2.sqlite"; }
auth() { cat <<AUTH
[keystone_authtoken]
www_authenticate_uri = $KS
auth_url = $KS
memcached_servers = 127.0.0.1:11311
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
region_name = regionOne
username = $1
password = $PW
AUTH
}
"$here/osref.sh" stop
rm -f /var/lib/{keystone,glance,placement,nova}/osref-*.sqlite
mkdir -p /etc/keystone/keystone.conf.d /etc/glance/glance.conf.d /etc/placement/placement.conf.d /etc/nova/nova.conf.d
cat > /etc/keystone/keystone.conf.d/osref.conf <<CONF
[database]
connection = $(db keystone keystone)
[token]
provider = fernet
[cache]
enabled = true
backend = oslo_cache.memcache_pool
memcache_servers = 127.0.0.1:11311
CONF
cat > /etc/glance/glance.conf.d/osref.conf <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = 19292
[database]
connection = $(db glance glance)
[glance_store]
stores = file,http
default_store = file
filesystem_store_datadir = /var/lib/glance/osref-images/
$(auth glance)
[paste_deploy]
flavor = keystone
CONF
cat > /etc/placement/placement.conf.d/osref.conf <<CONF
[placement_database]
connection = $(db placement placement)
[api]
auth_strategy = keystone
$(auth placement)
CONF
cat > /etc/nova/nova.conf.d/osref.conf <<CONF
[DEFAULT]
transport_url = rabbit://osref:$PW@127.0.0.1:5672/osref_nova
my_ip = 127.0.0.1
[api]
auth_strategy = keystone
[api_database]
connection = $(db nova api)
[database]
connection = $(db nova cell1)
$(auth nova)
[placement]
auth_type = password
auth_url = $KS/v3
project_name = service
project_domain_name = Default
user_domain_name = Default
username = placement
password = $PW
region_name = regionOne
[glance]
api_servers = http://127.0.0.1:19292
[oslo_concurrency]
lock_path = /var/lock/nova
CONF
for p in keystone glance placement nova; do
  chown -R root:$p /etc/$p/$p.conf.d; chmod 750 /etc/$p/$p.conf.d; chmod 640 /etc/$p/$p.conf.d/osref.conf
done
mkdir -p /var/lib/glance/osref-images && chown glance:glance /var/lib/glance/osref-images
# Keystone's packaged uwsgi ini asks for AppArmor, which this kernel lacks.
sed -e 's/^plugins = python3,apparmor/plugins = python3/' -e '/^apparmor-profile/d' \
  /etc/keystone/keystone-uwsgi.ini > /etc/keystone/osref-uwsgi.ini

cd /tmp
# (keystone-manage prints an eventlet "getcurrent" traceback at interpreter exit: harmless.)
quiet() { "$@" 2>&1 | grep -vE 'Exception ignored|Traceback|File "|AttributeError|INFO alembic' || true; }
quiet su -s /bin/sh keystone -c "keystone-manage db_sync"
[ -d /etc/keystone/fernet-keys ] || quiet keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone
[ -d /etc/keystone/credential-keys ] || quiet keystone-manage credential_setup --keystone-user keystone --keystone-group keystone
quiet su -s /bin/sh keystone -c "keystone-manage bootstrap --bootstrap-password $ADMIN_PW \
  --bootstrap-admin-url $KS/v3 --bootstrap-internal-url $KS/v3 --bootstrap-public-url $KS/v3 --bootstrap-region-id regionOne"
quiet su -s /bin/sh glance -c "glance-manage db_sync"
quiet su -s /bin/sh placement -c "placement-manage db sync"
quiet su -s /bin/sh nova -c "nova-manage api_db sync"
quiet su -s /bin/sh nova -c "nova-manage cell_v2 map_cell0 --database_connection $(db nova cell0)"
quiet su -s /bin/sh nova -c "nova-manage cell_v2 create_cell --name=cell1"
quiet su -s /bin/sh nova -c "nova-manage db sync"
# Write-ahead logging (kept in the file): readers and the one writer do not block each other. In
# the default rollback journal, eight uwsgi workers reading kept the first write from committing
# ("database is locked" after 5 s, the project create of the bootstrap below).
for f in /var/lib/{keystone,glance,placement,nova}/osref-*.sqlite; do
  su -s /bin/sh "$(stat -c %U "$f")" -c "python3 -c \"import sqlite3; sqlite3.connect('$f').execute('pragma journal_mode=wal')\""
done
"$here/osref.sh" start

mkdir -p /root/osref
cat > /root/osref/admin-openrc <<RC
export OS_AUTH_URL=$KS/v3
export OS_USERNAME=admin
export OS_PASSWORD=$ADMIN_PW
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=regionOne
export OS_IDENTITY_API_VERSION=3
export OS_INTERFACE=public
RC
. /root/osref/admin-openrc
for _ in $(seq 120); do curl -sf -o /dev/null $KS/v3 && break; sleep 1; done
openstack project create --domain default service -f value -c id
for s in glance placement nova; do
  openstack user create --domain default --password $PW $s -f value -c id
  openstack role add --project service --user $s admin
done
openstack service create --name glance image -f value -c id
openstack service create --name placement placement -f value -c id
openstack service create --name nova compute -f value -c id
for i in public internal admin; do
  openstack endpoint create --region regionOne image $i http://127.0.0.1:19292 -f value -c id
  openstack endpoint create --region regionOne placement $i http://127.0.0.1:18778 -f value -c id
  openstack endpoint create --region regionOne compute $i http://127.0.0.1:18774/v2.1 -f value -c id
done
# The five flavors Stratus seeds (src/compute/api/flavors.ts): both flavor lists are the same size.
openstack flavor create --id 1 --ram 512 --vcpus 1 --disk 1 m1.tiny -f value -c id
openstack flavor create --id 2 --ram 2048 --vcpus 1 --disk 20 m1.small -f value -c id
openstack flavor create --id 3 --ram 4096 --vcpus 2 --disk 40 m1.medium -f value -c id
openstack flavor create --id 4 --ram 8192 --vcpus 4 --disk 80 m1.large -f value -c id
openstack flavor create --id 5 --ram 16384 --vcpus 8 --disk 160 m1.xlarge -f value -c id
