// The qemu-system command line of one guest, from its launch plan (pure: unit-tested). What
// Nova's libvirt driver puts in a domain's XML, said to QEMU directly: SMBIOS as Nova sets it
// (cloud-init's OpenStack datasource only trusts a guest whose product is "OpenStack Nova"),
// disks on the bus the image asks for, the config drive as a cdrom, user-mode networking with
// the metadata relay, the serial console to a socket and a log, VNC on loopback, QMP.
import { join } from 'node:path';

export type DiskBus = 'virtio' | 'ide' | 'scsi' | 'sata' | 'usb';

export interface PlanDisk {
  /** Drive id (root, ephemeral0, swap, config, rescue): QMP names block devices by it. */
  id: string;
  path: string;
  format: 'qcow2' | 'raw';
  bus: DiskBus;
  media: 'disk' | 'cdrom';
  readonly?: boolean;
  /** Boot order (1 first); undefined: not bootable. */
  bootIndex?: number;
}

export interface LaunchPlan {
  uuid: string;
  name: string;
  dir: string;
  vcpus: number;
  memoryMb: number;
  accel: 'kvm' | 'tcg';
  machine: string;
  disks: PlanDisk[];
  /** AMI-style boot (-kernel/-initrd/-append). */
  kernel?: { path: string; initrd?: string; cmdline: string };
  nic?: { mac: string; model: string; netdev: string };
  firmware: 'bios' | 'uefi';
  /** OVMF code and this guest's copy of the variable store (uefi only). */
  ovmf?: { code: string; vars: string };
  video: string;
  rng: boolean;
  guestAgent: boolean;
  /** `unix` or an address; VNC displays from 0 upwards, the first free one (QEMU's to=). */
  vncListen: string;
  smbios: { manufacturer: string; product: string; version: string; serial: string; uuid: string; family: string };
}

export const files = (dir: string) => ({
  qmp: join(dir, 'qmp.sock'), serial: join(dir, 'serial.sock'), console: join(dir, 'console.log'),
  pid: join(dir, 'qemu.pid'), vnc: join(dir, 'vnc.sock'), qga: join(dir, 'qga.sock'),
  guest: join(dir, 'guest.json'), state: join(dir, 'suspend.state'),
});

/** QEMU option values separate properties by ',' and escape a literal ',' as ',,'. */
export const optEscape = (v: string) => v.replace(/,/g, ',,');

const VIDEO: Record<string, string[]> = {
  vga: ['-vga', 'std'], std: ['-vga', 'std'], cirrus: ['-vga', 'cirrus'], qxl: ['-vga', 'qxl'],
  virtio: ['-device', 'virtio-vga'], none: ['-vga', 'none'], bochs: ['-device', 'bochs-display'],
};

/** `incoming`: wait for a migration stream; `paused`: do not run the vCPUs until QMP `cont` (-S). */
export function qemuArgs(p: LaunchPlan, o: { incoming?: string; paused?: boolean } = {}): string[] {
  const f = files(p.dir);
  const a: string[] = [
    '-name', `guest=${optEscape(p.name)},debug-threads=on`,
    '-uuid', p.uuid,
    '-machine', `${p.machine},accel=${p.accel}`,
    '-m', String(p.memoryMb),
    '-smp', String(Math.max(1, p.vcpus)),
    '-nodefaults', '-no-user-config', '-display', 'none',
    '-smbios', `type=1,manufacturer=${optEscape(p.smbios.manufacturer)},product=${optEscape(p.smbios.product)},version=${optEscape(p.smbios.version)},serial=${p.smbios.serial},uuid=${p.smbios.uuid},family=${optEscape(p.smbios.family)}`,
    '-qmp', `unix:${optEscape(f.qmp)},server=on,wait=off`,
    '-chardev', `socket,id=serial0,path=${optEscape(f.serial)},server=on,wait=off,logfile=${optEscape(f.console)},logappend=on`,
    '-serial', 'chardev:serial0',
    '-pidfile', f.pid,
    '-daemonize',
    '-msg', 'timestamp=on',
  ];
  a.push('-vnc', p.vncListen === 'unix' ? `unix:${optEscape(f.vnc)}` : `${p.vncListen.includes(':') ? `[${p.vncListen}]` : p.vncListen}:0,to=999`);
  a.push(...(VIDEO[p.video] ?? VIDEO.std!));
  if (p.firmware === 'uefi' && p.ovmf) {
    a.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${optEscape(p.ovmf.code)}`, '-drive', `if=pflash,format=raw,unit=1,file=${optEscape(p.ovmf.vars)}`);
  }
  // Controllers the disks need, once each.
  const q35 = p.machine.startsWith('q35') || p.machine.includes('-q35');
  if (p.disks.some((d) => d.bus === 'scsi')) a.push('-device', 'virtio-scsi-pci,id=scsi0');
  if (p.disks.some((d) => d.bus === 'sata') && !q35) a.push('-device', 'ahci,id=sata0');
  if (p.disks.some((d) => d.bus === 'usb')) a.push('-device', 'qemu-xhci,id=usb0');
  let ide = 0;
  let sata = 0;
  for (const d of p.disks) {
    a.push('-drive', `file=${optEscape(d.path)},format=${d.format},if=none,id=${d.id}${d.readonly || d.media === 'cdrom' ? ',readonly=on' : ',discard=unmap'}${d.media === 'cdrom' ? ',media=cdrom' : ''}`);
    const boot = d.bootIndex ? `,bootindex=${d.bootIndex}` : '';
    const serial = `,serial=${d.id}`;
    switch (d.bus) {
      case 'virtio':
        if (d.media === 'cdrom') a.push('-device', `virtio-scsi-pci,id=vscsi-${d.id}`, '-device', `scsi-cd,bus=vscsi-${d.id}.0,drive=${d.id}${boot}`);
        else a.push('-device', `virtio-blk-pci,drive=${d.id}${serial}${boot}`);
        break;
      case 'scsi': a.push('-device', `${d.media === 'cdrom' ? 'scsi-cd' : 'scsi-hd'},bus=scsi0.0,drive=${d.id}${boot}`); break;
      case 'sata': {
        const bus = q35 ? `ide.${sata}` : `sata0.${sata}`;
        sata++;
        a.push('-device', `${d.media === 'cdrom' ? 'ide-cd' : 'ide-hd'},bus=${bus},drive=${d.id}${boot}`);
        break;
      }
      case 'usb': a.push('-device', `usb-storage,bus=usb0.0,drive=${d.id}${boot}`); break;
      case 'ide': {
        // i440fx: two IDE buses of two units; q35: the ICH9 AHCI ports, one device each.
        const bus = q35 ? `ide.${ide}` : `ide.${ide >> 1},unit=${ide & 1}`;
        ide++;
        a.push('-device', `${d.media === 'cdrom' ? 'ide-cd' : 'ide-hd'},bus=${bus},drive=${d.id}${boot}`);
        break;
      }
    }
  }
  if (p.kernel) {
    a.push('-kernel', p.kernel.path, '-append', p.kernel.cmdline);
    if (p.kernel.initrd) a.push('-initrd', p.kernel.initrd);
  }
  if (p.nic) {
    a.push('-netdev', p.nic.netdev);
    const model = p.nic.model === 'virtio' ? 'virtio-net-pci' : p.nic.model === 'e1000e' ? 'e1000e' : p.nic.model === 'rtl8139' ? 'rtl8139' : p.nic.model === 'ne2k_pci' ? 'ne2k_pci' : p.nic.model === 'pcnet' ? 'pcnet' : 'e1000';
    a.push('-device', `${model},netdev=n0,mac=${p.nic.mac}`);
  }
  if (p.rng) a.push('-object', 'rng-random,id=rng0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=rng0');
  if (p.guestAgent) {
    a.push('-chardev', `socket,id=qga0,path=${optEscape(f.qga)},server=on,wait=off`, '-device', 'virtio-serial-pci,id=vserial0',
      '-device', 'virtserialport,bus=vserial0.0,chardev=qga0,name=org.qemu.guest_agent.0');
  }
  if (o.incoming) a.push('-incoming', o.incoming);
  if (o.paused) a.push('-S');
  return a;
}

/** The user-mode network of `networks: auto` (contracts.md): DHCP from 169.254.0.15, metadata relayed. */
export function userNetdev(o: { hostname?: string | null; relayCommand?: string; outbound: boolean }): string {
  const parts = ['user', 'id=n0', 'net=169.254.0.0/16', 'host=169.254.0.2', 'dhcpstart=169.254.0.15'];
  if (!o.outbound) parts.push('restrict=on');
  if (o.hostname) parts.push(`hostname=${optEscape(o.hostname)}`);
  // The relay command arrives with its commas already doubled.
  if (o.relayCommand) parts.push(`guestfwd=tcp:169.254.169.254:80-cmd:${o.relayCommand}`);
  return parts.join(',');
}
