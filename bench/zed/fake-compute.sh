#!/bin/bash
# Adds to the reference Zed (bench/zed/setup.sh, osref.sh) what booting servers needs:
# nova-conductor, nova-scheduler and nova-compute with Nova's own fake driver
# (`compute_driver = fake.FakeDriver`, in python3-nova), one worker each, and a stand-in for
# Neutron with nothing in it (empty-neutron.mjs: Zed's Nova asks Neutron for ports and security
# groups whenever it shows servers, even ones booted with `networks: none`). Nova's databases
# move to the machine's MariaDB (osref_nova_api, osref_nova_cell0, osref_nova): on SQLite,
# conductor, scheduler and compute writing at once failed with "database is locked" and lost
# builds. nova-compute runs from python3-nova's module (Debian's nova-compute package would pull
# in a hypervisor). Needs python3-pymysql. Usage: bench/zed/fake-compute.sh setup|start|stop|pids
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
RUN=/run/osref
CONF=(--config-file /etc/nova/nova.conf --config-dir /etc/nova/nova.conf.d --config-file /etc/nova/osref-fake.conf)
my() { mysql -uroot -h127.0.0.1 -e "$1"; }

setup() {
  stop
  for d in osref_nova_api osref_nova_cell0 osref_nova; do my "DROP DATABASE IF EXISTS $d; CREATE DATABASE $d CHARACTER SET utf8mb4"; done
  my "CREATE USER IF NOT EXISTS 'osref'@'127.0.0.1' IDENTIFIED BY 'osrefpw'; GRANT ALL ON \`osref\\_nova%\`.* TO 'osref'@'127.0.0.1'"
  local url=mysql+pymysql://osref:osrefpw@127.0.0.1/
  cat > /etc/nova/nova.conf.d/zz-osref-mysql.conf <<CONF
[api_database]
connection = ${url}osref_nova_api
max_pool_size = 2
[database]
connection = ${url}osref_nova
max_pool_size = 2
CONF
  cat > /etc/nova/nova.conf.d/osref-neutron.conf <<CONF
[neutron]
auth_type = password
auth_url = http://127.0.0.1:15000/v3
project_name = service
project_domain_name = Default
user_domain_name = Default
username = nova
password = osrefpw
region_name = regionOne
endpoint_override = http://127.0.0.1:19696
CONF
  cat > /etc/nova/osref-fake.conf <<CONF
[DEFAULT]
compute_driver = fake.FakeDriver
host = zed-fake1
[oslo_messaging_notifications]
driver = noop
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 5
CONF
  rabbitmqctl add_vhost osref_nova >/dev/null 2>&1 || true
  rabbitmqctl add_user osref osrefpw >/dev/null 2>&1 || true
  rabbitmqctl set_permissions -p osref_nova osref '.*' '.*' '.*' >/dev/null
  su -s /bin/sh nova -c "nova-manage api_db sync" >/dev/null
  su -s /bin/sh nova -c "nova-manage cell_v2 map_cell0 --database_connection ${url}osref_nova_cell0" >/dev/null
  su -s /bin/sh nova -c "nova-manage cell_v2 create_cell --name=cell1" >/dev/null 2>&1 || true
  su -s /bin/sh nova -c "nova-manage db sync" >/dev/null
  # The flavors live in the API database: Stratus's five again (as setup.sh made them).
  "$here/osref.sh" restart
  . /root/osref/admin-openrc
  for i in $(seq 60); do openstack flavor list >/dev/null 2>&1 && break; sleep 1; done
  # A compute node of an earlier setup left in placement would block the new one's provider.
  for rp in $(openstack resource provider list --name zed-fake1 -f value -c uuid); do
    for c in $(openstack --os-placement-api-version 1.9 resource provider show --allocations "$rp" -f json | /usr/bin/python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin).get("allocations", {})))'); do
      openstack resource provider allocation delete "$c"
    done
    openstack resource provider delete "$rp"
  done
  openstack flavor create --id 1 --ram 512 --vcpus 1 --disk 1 m1.tiny >/dev/null
  openstack flavor create --id 2 --ram 2048 --vcpus 1 --disk 20 m1.small >/dev/null
  openstack flavor create --id 3 --ram 4096 --vcpus 2 --disk 40 m1.medium >/dev/null
  openstack flavor create --id 4 --ram 8192 --vcpus 4 --disk 80 m1.large >/dev/null
  openstack flavor create --id 5 --ram 16384 --vcpus 8 --disk 160 m1.xlarge >/dev/null
}

start() {
  mkdir -p "$RUN" /var/log/nova
  setsid node "$here/empty-neutron.mjs" </dev/null >/dev/null 2>&1 & echo $! > "$RUN/empty-neutron.pid"
  cd /tmp
  for svc in conductor scheduler; do
    su -s /bin/sh nova -c "setsid nova-$svc ${CONF[*]} </dev/null >>/var/log/nova/osref-$svc.log 2>&1 & echo \$! > /tmp/osref-$svc.pid"
    mv /tmp/osref-$svc.pid "$RUN/nova-$svc.pid"
  done
  su -s /bin/sh nova -c "setsid python3 -c 'import sys; from nova.cmd.compute import main; sys.exit(main())' ${CONF[*]} </dev/null >>/var/log/nova/osref-compute.log 2>&1 & echo \$! > /tmp/osref-compute.pid"
  mv /tmp/osref-compute.pid "$RUN/nova-compute.pid"
  . /root/osref/admin-openrc
  for i in $(seq 120); do [ "$(openstack hypervisor list -f value -c State 2>/dev/null)" = up ] && return 0; sleep 1; done
  echo "nova-compute did not come up (see /var/log/nova/osref-compute.log)" >&2; return 1
}

pids() { for s in empty-neutron nova-conductor nova-scheduler nova-compute; do cat "$RUN/$s.pid" 2>/dev/null || true; done; }

stop() {
  for p in $(pids); do kill "$p" 2>/dev/null || true; done
  for p in $(pids); do for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; kill -9 "$p" 2>/dev/null || true; done
  rm -f "$RUN"/{empty-neutron,nova-conductor,nova-scheduler,nova-compute}.pid
}

case "${1:-}" in
  setup) setup ;;
  start) start ;;
  stop) stop ;;
  pids) pids ;;
  *) echo "usage: $0 setup|start|stop|pids" >&2; exit 2 ;;
esac
