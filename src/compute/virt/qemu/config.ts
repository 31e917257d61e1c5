// Options of the QEMU driver, under the section and option names nova.conf uses where the
// meaning is the same ([libvirt] virt_type, [DEFAULT] shutdown_timeout, [image_cache] …).
import { registerOpts } from '../../../common/config.ts';

registerOpts([
  { section: 'DEFAULT', name: 'shutdown_timeout', type: 'int', default: 60, min: 0, help: 'Seconds a guest gets to power off after the ACPI power button before it is stopped hard (image property os_shutdown_timeout overrides).' },
  { section: 'libvirt', name: 'virt_type', type: 'string', choices: ['kvm', 'qemu'], help: 'Accelerator of the QEMU driver: kvm (hardware virtualization) or qemu (TCG emulation). Unset: probed at agent start with a tiny guest, KVM first.', note: 'Nova defaults to kvm; Stratus probes, because a /dev/kvm that exists may still not run guests.' },
  { section: 'qemu', name: 'binary', type: 'string', default: 'qemu-system-x86_64', help: 'The QEMU system emulator.' },
  { section: 'qemu', name: 'user_network_outbound', type: 'bool', default: false, help: 'Let guests on user-mode networking (networks: auto) reach the outside through the host; by default (restrict=on) only the metadata service is reachable.' },
  { section: 'qemu', name: 'console_log_max_bytes', type: 'int', default: 1048576, min: 4096, help: 'Size at which a guest\'s serial console log is rotated (one previous file kept).' },
  { section: 'qemu', name: 'guest_cache_dir', type: 'string', help: 'Cache of Debian packages for the accelerator probe guest (default: <instances_path>/_guest).' },
  { section: 'qemu', name: 'probe_timeout', type: 'int', default: 60, min: 5, help: 'Seconds the accelerator probe guest may take under TCG (KVM gets a fifth of it).' },
  { section: 'qemu', name: 'power_sync_interval', type: 'int', default: 10, min: 1, help: 'Seconds between checks of every guest\'s power state (Nova\'s sync_power_state_interval, 600 s there).' },
  { section: 'qemu', name: 'migration_port', type: 'int', default: 0, min: 0, max: 65535, help: 'TCP port (on [DEFAULT] my_ip) of the agent-to-agent disk channel that serves a cold move\'s disks to the destination host (0: a random free port, opened only while a move is under way).' },
  { section: 'qemu', name: 'live_migration_bandwidth', type: 'int', default: 0, min: 0, help: 'Bandwidth cap of a live migration in MiB/s (0: unlimited; Nova\'s [libvirt] live_migration_bandwidth).' },
  { section: 'qemu', name: 'live_migration_downtime', type: 'int', default: 100, min: 1, help: 'Largest pause (ms) QEMU may plan for the final switch-over of a live migration (Nova\'s [libvirt] live_migration_downtime).', note: 'Nova defaults to 500 ms and raises it in steps; Stratus asks QEMU for 100 ms, the downtime target, and offers force_complete for a guest that does not converge.' },
  { section: 'vnc', name: 'server_listen', type: 'string', default: '127.0.0.1', help: 'Address the guests\' VNC servers listen on (unix: a unix socket per instance).' },
  { section: 'image_cache', name: 'subdirectory_name', type: 'string', default: '_base', help: 'Directory of instances_path holding cached base images.' },
  { section: 'image_cache', name: 'manager_interval', type: 'int', default: 2400, min: -1, help: 'Seconds between image cache manager runs (0: every periodic run, -1: never).' },
  { section: 'image_cache', name: 'remove_unused_base_images', type: 'bool', default: true, help: 'Remove cached base images no instance uses any more.' },
  { section: 'image_cache', name: 'remove_unused_original_minimum_age_seconds', type: 'int', default: 86400, min: 0, help: 'Unused cached base images younger than this are kept.' },
]);

