// The minimal guest's userland: busybox init runs /etc/init.d/rcS (stratus-init), which does
// what cloud-init does for a cloud image, with one line per step on the serial console:
// datasource (config drive labelled config-2, else the metadata service at 169.254.169.254
// after DHCP on eth0), hostname, public keys into /root/.ssh/authorized_keys, user_data run when
// it starts with "#!", the root partition and filesystem grown to the disk. busybox acpid turns
// the ACPI power button (QMP system_powerdown) into a clean poweroff.
import type { InitramfsFile } from './initramfs.ts';

/** Label of the minimal guest's root filesystem (grub and the init find it by label). */
export const ROOT_LABEL = 'stratus-root';

/** Modules the init loads (the cloud kernel has virtio, ATA/PIIX, ISO 9660 and the ACPI button as modules; it has no AHCI or e1000, so the minimal guest wants the i440fx machine and virtio or IDE devices). */
export const GUEST_MODULES = [
  'virtio_pci', 'virtio_blk', 'virtio_scsi', 'virtio_net', 'virtio_rng', 'virtio_console',
  'ata_piix', 'sr_mod', 'sd_mod', 'isofs', 'button', 'evdev',
];

const init = `#!/bin/busybox sh
/bin/busybox --install -s
exec /bin/busybox init
`;

const inittab = `::sysinit:/etc/init.d/rcS
::askfirst:-/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/init.d/rcK
`;

// Kept POSIX-sh for busybox ash. Every step logs one line; a failed step logs why and the
// init goes on (a guest without metadata still boots to a shell).
const rcS = `#!/bin/sh
log() { echo "stratus-init: $*"; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /mnt/config /sysroot /run /tmp
mount -t devpts devpts /dev/pts
for m in ${GUEST_MODULES.join(' ')}; do modprobe "$m" 2>/dev/null; done
log "kernel $(uname -r)"
# Block devices appear asynchronously after the modules load.
i=0; while [ $i -lt 50 ] && ! findfs LABEL=${ROOT_LABEL} >/dev/null 2>&1; do sleep 0.1; i=$((i+1)); done

# Root: grow the last partition to the end of its disk, then the filesystem (online).
root=$(findfs LABEL=${ROOT_LABEL} 2>/dev/null)
if [ -n "$root" ]; then
  part=\${root#/dev/}
  disk=$(basename "$(readlink -f /sys/class/block/$part/..)")
  start=$(cat /sys/class/block/$part/start)
  size=$(cat /sys/class/block/$part/size)
  total=$(cat /sys/class/block/$disk/size)
  n=$(cat /sys/class/block/$part/partition)
  want=$((total - start))
  [ $want -gt 4294967295 ] && want=4294967295
  if [ "$want" -gt "$size" ] && [ "$n" -le 4 ]; then
    # MBR entry n: the 32-bit little-endian sector count at 446 + 16(n-1) + 12.
    o=$(printf '\\\\%03o\\\\%03o\\\\%03o\\\\%03o' $((want & 255)) $(((want >> 8) & 255)) $(((want >> 16) & 255)) $(((want >> 24) & 255)))
    printf "$o" | dd of=/dev/$disk bs=1 seek=$((446 + 16 * (n - 1) + 12)) conv=notrunc 2>/dev/null
    blockdev --rereadpt /dev/$disk 2>/dev/null || partprobe /dev/$disk 2>/dev/null
  fi
  if mount -t ext4 "$root" /sysroot; then
    resize2fs "$root" >/dev/null 2>&1 || log "resize2fs failed"
    log "root $((total / 2097152))G (filesystem $(df -h /sysroot | awk 'NR==2 {print $2}'))"
  else
    log "root $root could not be mounted"
  fi
else
  log "no root filesystem labelled ${ROOT_LABEL}"
fi
mkdir -p /sysroot/root /root
mount --bind /sysroot/root /root 2>/dev/null

# Swap and ephemeral disks, as cloud-init's defaults mount them.
sw=$(findfs LABEL=swap 2>/dev/null) && swapon "$sw" && log "swap $sw"
eph=$(findfs LABEL=ephemeral0 2>/dev/null) && mkdir -p /mnt/ephemeral0 && mount "$eph" /mnt/ephemeral0 && log "ephemeral0 $eph"

# Datasource: the config drive first, else the metadata service.
md=""; ud=""
cd=$(findfs LABEL=config-2 2>/dev/null || findfs LABEL=CONFIG-2 2>/dev/null)
if [ -n "$cd" ] && mount -t iso9660 -o ro "$cd" /mnt/config; then
  log "datasource config-2 ($cd)"
  md=/mnt/config/openstack/latest/meta_data.json
  [ -f /mnt/config/openstack/latest/user_data ] && ud=/mnt/config/openstack/latest/user_data
elif ip link show eth0 >/dev/null 2>&1; then
  ip link set lo up
  ip link set eth0 up
  if udhcpc -i eth0 -s /etc/udhcpc.script -n -q -t 10 -T 1 >/dev/null 2>&1; then
    log "ip $(ip -4 -o addr show eth0 | awk '{print $4}')"
  else
    log "dhcp on eth0 failed"
  fi
  # busybox wget's own -T crashes (rc 139) in this build: the timeout applet bounds each fetch.
  if timeout 15 wget -q -O /run/meta_data.json http://169.254.169.254/openstack/latest/meta_data.json; then
    log "datasource metadata-service (169.254.169.254)"
    md=/run/meta_data.json
    timeout 15 wget -q -O /run/user_data http://169.254.169.254/openstack/latest/user_data && ud=/run/user_data
  elif timeout 15 wget -q -O /run/ec2-hostname http://169.254.169.254/latest/meta-data/hostname; then
    log "datasource ec2 (169.254.169.254)"
    md=/run/meta_data.ec2
    printf '{"hostname": "%s", "public_keys": {"%s": "%s"}}\\n' "$(cat /run/ec2-hostname)" \\
      "$(timeout 15 wget -q -O - http://169.254.169.254/latest/meta-data/public-keys/ | sed -n '1s/^0=//p')" \\
      "$(timeout 15 wget -q -O - http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key)" > $md
    timeout 15 wget -q -O /run/user_data http://169.254.169.254/latest/user-data && ud=/run/user_data
  else
    log "no datasource: the metadata service did not answer"
  fi
else
  log "no datasource: no config drive and no network"
fi

if [ -n "$md" ]; then
  # meta_data.json is one JSON object; the fields used here are plain strings.
  h=$(sed -n 's/.*"hostname": *"\\([^"]*\\)".*/\\1/p' "$md" | head -n 1)
  h=\${h%%.*}
  if [ -n "$h" ]; then hostname "$h"; echo "$h" > /etc/hostname; log "hostname $h"; fi
  keys=$(tr -d '\\n' < "$md" | sed -n 's/.*"public_keys": *{\\([^}]*\\)}.*/\\1/p' | sed 's/", *"/"\\n"/g')
  if [ -n "$keys" ]; then
    mkdir -p /root/.ssh && chmod 700 /root/.ssh
    : > /root/.ssh/authorized_keys
    echo "$keys" | while read -r line; do
      name=$(echo "$line" | sed -n 's/^ *"\\([^"]*\\)": *".*/\\1/p')
      key=$(echo "$line" | sed -n 's/^ *"[^"]*": *"\\(.*\\)" *$/\\1/p' | sed 's/\\\\n$//')
      [ -n "$key" ] || continue
      echo "$key" >> /root/.ssh/authorized_keys
      log "ssh key installed ($name)"
      echo "$key"
    done
    chmod 600 /root/.ssh/authorized_keys
  fi
fi
if [ -n "$ud" ] && [ "$(head -c 2 "$ud")" = '#!' ]; then
  cp "$ud" /run/user_data.sh && chmod 755 /run/user_data.sh
  /run/user_data.sh
  log "user_data exit $?"
elif [ -n "$ud" ]; then
  log "user_data present, not a script"
fi
# acpid reads the input devices present when it starts: the power button's comes with evdev.
i=0; while [ $i -lt 20 ] && ! ls /dev/input/event* >/dev/null 2>&1; do sleep 0.1; i=$((i+1)); done
acpid -c /etc/acpi -l /run/acpid.log
log "up in $(cut -d' ' -f1 /proc/uptime) s"
`;

const rcK = `#!/bin/sh
echo "stratus-init: shutting down"
swapoff -a 2>/dev/null
umount /root 2>/dev/null
umount /mnt/ephemeral0 2>/dev/null
umount /sysroot 2>/dev/null || mount -o remount,ro /sysroot
`;

const udhcpc = `#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/\${mask:-16}" dev "$interface"
    [ -n "$router" ] && ip route add default via "\${router%% *}" dev "$interface" 2>/dev/null
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    ;;
esac
exit 0
`;

const powerButton = `#!/bin/sh
echo "stratus-init: power button pressed, powering off" > /dev/console
poweroff
`;

export function minimalGuestFiles(): InitramfsFile[] {
  return [
    { path: 'init', content: init, mode: 0o755 },
    { path: 'etc/inittab', content: inittab },
    { path: 'etc/init.d/rcS', content: rcS, mode: 0o755 },
    { path: 'etc/init.d/rcK', content: rcK, mode: 0o755 },
    { path: 'etc/udhcpc.script', content: udhcpc, mode: 0o755 },
    { path: 'etc/acpi/PWRF/00000080', content: powerButton, mode: 0o755 },
    { path: 'etc/acpid.conf', content: 'PWRF PWRF/00000080\n' },
    { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
    { path: 'etc/group', content: 'root:x:0:\n' },
    { path: 'etc/hostname', content: 'stratus-minimal\n' },
  ];
}

/** The tiny guest of the accelerator probe: prints one line and powers off. */
export function probeGuestFiles(marker: string): InitramfsFile[] {
  return [{ path: 'init', content: `#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\n/bin/busybox echo "${marker}"\n/bin/busybox poweroff -f\n`, mode: 0o755 }];
}
