#!/bin/bash
# Starts, stops and lists the reference OpenStack Zed (Debian 12 packages) that
# `npm run bench -- compare` measures Stratus against. Setting it up (packages, databases
# osref_*, vhost osref_nova, /etc/<project>/<project>.conf.d/osref.conf) is described step by
# step in bench/results/compare-zed-setup.md; this script only runs what that set up, the way
# Debian's init scripts run it (uwsgi, `--processes $(nproc)/2 --ini <the package's ini>`, in which
# the ini's processes = 8 (nova: 16) wins, as it does under the init script), on ports that do not clash with
# the OpenStack defaults: keystone 15000, glance 19292, placement 18778, nova-api 18774,
# memcached 11311. Nothing here is enabled at boot; `stop` leaves nothing listening.
# Usage: bench/zed/osref.sh start|stop|restart|pids|status
set -euo pipefail
RUN=/run/osref
PROCS=$(( $(nproc) / 2 )); [ "$PROCS" -ge 1 ] || PROCS=1
# name  port  uwsgi ini  log dir
SERVICES=(
  "keystone 15000 /etc/keystone/osref-uwsgi.ini /var/log/keystone"
  "glance-api 19292 /etc/glance/glance-api-uwsgi.ini /var/log/glance"
  "placement-api 18778 /etc/placement/placement-api-uwsgi.ini /var/log/placement"
  "nova-api 18774 /etc/nova/nova-api-uwsgi.ini /var/log/nova"
)

pids() { cat "$RUN"/*.pid 2>/dev/null || true; }

start() {
  mkdir -p "$RUN"
  for p in keystone glance placement nova; do mkdir -p /var/run/$p /var/lock/$p; chown $p:$p /var/run/$p /var/lock/$p; done
  # Not `memcached -d -P`: it writes its pid file after dropping to the memcache user, which
  # cannot write to $RUN, and `stop` would then not find it.
  if ! { [ -s "$RUN/memcached.pid" ] && kill -0 "$(cat "$RUN/memcached.pid")" 2>/dev/null; }; then
    setsid memcached -u memcache -l 127.0.0.1 -p 11311 -U 0 -m 64 </dev/null >/dev/null 2>&1 &
    echo $! > "$RUN/memcached.pid"
  fi
  cd /tmp
  for s in "${SERVICES[@]}"; do
    read -r name port ini log <<<"$s"
    /usr/bin/uwsgi_python3 --http-socket "127.0.0.1:$port" --processes "$PROCS" --ini "$ini" \
      --pidfile "$RUN/$name.pid" --daemonize "$log/osref-uwsgi.log" 2>>"$log/osref-uwsgi.log"
  done
}

stop() {
  # uwsgi masters run with die-on-term: SIGTERM stops each master and its workers (within 30 s).
  for f in "$RUN"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f"); kids=$(ps -o pid= --ppid "$pid" || true)
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    # A master whose workers are still loading the app ignores SIGTERM: then the master and its
    # workers (these PIDs only) are killed.
    kill -9 "$pid" $kids 2>/dev/null || true
    rm -f "$f"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  pids) pids ;;
  status) for p in $(pids); do ps -o pid=,rss=,args= --ppid "$p" -p "$p"; done ;;
  *) echo "usage: $0 start|stop|restart|pids|status" >&2; exit 2 ;;
esac
