// The metadata definitions Stratus seeds: the image properties the compute service honours, with
// their allowed values, so dashboards and `glance md-*` can offer them. Values on images stay
// free-form strings (as in Glance); compute validates them when it boots a server.

export interface PropertyDef {
  title: string;
  description: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'array';
  enum?: (string | number)[];
  default?: string | number | boolean;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  readonly?: boolean;
  items?: { type: string; enum?: string[] };
}

export interface NamespaceDef {
  namespace: string;
  display_name: string;
  description: string;
  resource_types: { name: string; prefix?: string; properties_target?: string }[];
  properties: Record<string, PropertyDef>;
  objects?: { name: string; description: string; required?: string[]; properties: Record<string, PropertyDef> }[];
  tags?: string[];
}

const IMAGE = [{ name: 'OS::Glance::Image' }, { name: 'OS::Cinder::Volume', properties_target: 'image' }];

export const RESOURCE_TYPES = ['OS::Glance::Image', 'OS::Cinder::Volume', 'OS::Nova::Flavor', 'OS::Nova::Server', 'OS::Nova::Aggregate'];

const str = (title: string, description: string, extra: Partial<PropertyDef> = {}): PropertyDef => ({ title, description, type: 'string', ...extra });

export const CATALOG: NamespaceDef[] = [
  {
    namespace: 'OS::Compute::Architecture',
    display_name: 'CPU architecture',
    description: 'The CPU architecture an image needs. The scheduler only places the server on hosts of that architecture.',
    resource_types: IMAGE,
    properties: {
      architecture: str('Architecture', 'CPU architecture of the guest operating system, as the libvirt driver names it.', {
        enum: ['x86_64', 'i686', 'aarch64', 'armv7l', 'ppc64', 'ppc64le', 's390x', 'riscv64', 'mips64el', 'alpha', 'sparc64'],
      }),
    },
  },
  {
    namespace: 'OS::Compute::Hypervisor',
    display_name: 'Hypervisor selection',
    description: 'Which hypervisor and virtual machine mode the image is made for.',
    resource_types: IMAGE,
    properties: {
      hypervisor_type: str('Hypervisor type', 'Hypervisor the image runs on. The scheduler filters hosts by it; Stratus compute hosts report qemu (TCG) or kvm.', {
        enum: ['qemu', 'kvm', 'xen', 'lxc', 'uml', 'vmware', 'hyperv', 'powervm', 'ironic', 'vz', 'zvm'],
      }),
      vm_mode: str('VM mode', 'The virtual machine ABI the image needs: hvm (full virtualisation), xen (paravirtual), uml, exe (container).', {
        enum: ['hvm', 'xen', 'uml', 'exe'],
      }),
    },
  },
  {
    namespace: 'OS::OperatingSystem',
    display_name: 'Operating system',
    description: 'The guest operating system, which compute uses to pick sensible defaults (e.g. the clock source for Windows).',
    resource_types: IMAGE,
    properties: {
      os_type: str('OS type', 'Family of the guest operating system.', { enum: ['linux', 'windows'] }),
      os_distro: str('OS distribution', 'Common name of the distribution, lower case (e.g. ubuntu, debian, centos, fedora, rhel, sles, opensuse, freebsd, windows, cirros).'),
      os_version: str('OS version', 'Version of the distribution as its vendor numbers it (e.g. 12, 22.04).'),
      os_admin_user: str('Administrator user', 'Name of the administrator account for password injection.', { default: 'root' }),
    },
  },
  {
    namespace: 'OS::Compute::DiskConfig',
    display_name: 'Disk configuration',
    description: 'How the root disk is prepared when the server boots.',
    resource_types: IMAGE,
    properties: {
      auto_disk_config: { title: 'Automatic disk configuration', description: 'If true, the root partition is grown to fill the root disk at first boot.', type: 'boolean' },
      img_config_drive: str('Config drive', 'Whether a config drive must be attached to servers booted from this image.', { enum: ['optional', 'mandatory'], default: 'optional' }),
    },
  },
  {
    namespace: 'OS::Compute::LibvirtImage',
    display_name: 'Libvirt/QEMU driver options',
    description: 'Virtual hardware the QEMU/KVM driver gives servers booted from this image.',
    resource_types: IMAGE,
    properties: {
      hw_disk_bus: str('Disk bus', 'Bus of the disks.', { enum: ['virtio', 'scsi', 'ide', 'sata', 'usb', 'fdc'] }),
      hw_cdrom_bus: str('CD-ROM bus', 'Bus of CD-ROM drives.', { enum: ['ide', 'sata', 'scsi', 'usb'] }),
      hw_scsi_model: str('SCSI model', 'SCSI controller model (virtio-scsi for discard support).', { enum: ['virtio-scsi', 'lsilogic', 'lsisas1068', 'buslogic', 'ibmvscsi'] }),
      hw_vif_model: str('Network interface model', 'Model of the virtual network interfaces.', { enum: ['virtio', 'e1000', 'e1000e', 'rtl8139', 'ne2k_pci', 'pcnet', 'vmxnet3', 'igb'] }),
      hw_vif_multiqueue_enabled: { title: 'Multiqueue networking', description: 'One queue per vCPU on virtio network interfaces.', type: 'boolean' },
      hw_video_model: str('Video model', 'Model of the video device.', { enum: ['virtio', 'vga', 'cirrus', 'vmvga', 'qxl', 'bochs', 'gop', 'none'] }),
      hw_video_ram: { title: 'Video RAM', description: 'Video memory in MiB (bounded by the flavor\'s hw_video:ram_max_mb).', type: 'integer', minimum: 0 },
      hw_machine_type: str('Machine type', 'QEMU machine type (e.g. q35, pc, virt).'),
      hw_firmware_type: str('Firmware', 'Firmware the server boots with.', { enum: ['bios', 'uefi'] }),
      hw_boot_menu: { title: 'Boot menu', description: 'Show the firmware boot menu.', type: 'boolean' },
      hw_qemu_guest_agent: { title: 'QEMU guest agent', description: 'Add the channel for the QEMU guest agent (quiesced snapshots).', type: 'boolean' },
      hw_rng_model: str('Random number generator', 'Model of the entropy device.', { enum: ['virtio'] }),
      hw_watchdog_action: str('Watchdog action', 'What the watchdog device does when the guest hangs.', { enum: ['disabled', 'reset', 'poweroff', 'pause', 'none'] }),
      hw_pointer_model: str('Pointer model', 'Input pointer device (usbtablet gives absolute positioning in the console).', { enum: ['usbtablet'] }),
      hw_input_bus: str('Input bus', 'Bus of keyboard and pointer.', { enum: ['usb', 'virtio'] }),
      hw_serial_port_count: { title: 'Serial ports', description: 'Number of serial ports.', type: 'integer', minimum: 0 },
      hw_cpu_sockets: { title: 'CPU sockets', description: 'Preferred number of CPU sockets.', type: 'integer', minimum: 1 },
      hw_cpu_cores: { title: 'CPU cores', description: 'Preferred number of cores per socket.', type: 'integer', minimum: 1 },
      hw_cpu_threads: { title: 'CPU threads', description: 'Preferred number of threads per core.', type: 'integer', minimum: 1 },
      hw_cpu_policy: str('CPU pinning', 'Whether vCPUs are pinned to host CPUs.', { enum: ['shared', 'dedicated', 'mixed'] }),
      hw_mem_page_size: str('Memory page size', 'Page size backing guest memory (small, large, any, or a size such as 2MB).'),
      hw_time_hpet: { title: 'HPET timer', description: 'Give the guest an HPET timer.', type: 'boolean' },
      hw_tpm_model: str('TPM model', 'Model of the emulated TPM.', { enum: ['tpm-tis', 'tpm-crb'] }),
      hw_tpm_version: str('TPM version', 'Version of the emulated TPM.', { enum: ['1.2', '2.0'] }),
      hw_rescue_bus: str('Rescue disk bus', 'Bus of the rescue disk.', { enum: ['virtio', 'scsi', 'ide', 'sata', 'usb'] }),
      hw_rescue_device: str('Rescue device', 'Device type of the rescue image.', { enum: ['disk', 'cdrom'] }),
      hw_emulation_architecture: str('Emulated architecture', 'Run the guest under emulation of this architecture on any host.', { enum: ['x86_64', 'aarch64', 'ppc64le', 's390x'] }),
    },
  },
  {
    namespace: 'OS::Compute::VMware',
    display_name: 'VMware driver options',
    description: 'Properties the VMware driver reads from images.',
    resource_types: IMAGE,
    properties: {
      vmware_adaptertype: str('Disk adapter type', 'Virtual SCSI or IDE controller.', { enum: ['lsiLogic', 'busLogic', 'ide', 'lsiLogicsas', 'paraVirtual'], default: 'lsiLogic' }),
      vmware_ostype: str('Guest OS type', 'VMware GuestID of the operating system.', { default: 'otherGuest' }),
      vmware_image_version: { title: 'Image version', description: 'Version of the VMware image format.', type: 'integer', default: 1 },
      vmware_disktype: str('Disk type', 'Provisioning of the VMDK.', { enum: ['sparse', 'preallocated', 'streamOptimized'], default: 'preallocated' }),
    },
  },
  {
    namespace: 'OS::Glance::CommonImageProperties',
    display_name: 'Common image properties',
    description: 'Properties every image may carry.',
    resource_types: IMAGE,
    properties: {
      kernel_id: str('Kernel ID', 'ID of an aki image used as the kernel when booting an ami image.', { pattern: '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$' }),
      ramdisk_id: str('Ramdisk ID', 'ID of an ari image used as the ramdisk when booting an ami image.', { pattern: '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$' }),
      instance_uuid: str('Instance UUID', 'The server this image is a snapshot of (informational).'),
      description: str('Description', 'A human-readable description of the image.'),
    },
    tags: ['cloud-image'],
  },
];
