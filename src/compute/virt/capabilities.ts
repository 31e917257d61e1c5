// Driver capabilities as os-traits names, as Nova's ComputeDriver.capabilities map them
// (nova/virt/driver.py CAPABILITY_TRAITS_MAP). The agent sets the ones its driver claims on the
// compute node's resource provider and removes the others of this list, leaving every other
// trait (COMPUTE_STATUS_DISABLED, CUSTOM_* set by operators) alone.
export const IMAGE_TYPE_TRAITS: Record<string, string> = {
  aki: 'COMPUTE_IMAGE_TYPE_AKI', ami: 'COMPUTE_IMAGE_TYPE_AMI', ari: 'COMPUTE_IMAGE_TYPE_ARI', iso: 'COMPUTE_IMAGE_TYPE_ISO',
  qcow2: 'COMPUTE_IMAGE_TYPE_QCOW2', raw: 'COMPUTE_IMAGE_TYPE_RAW', vdi: 'COMPUTE_IMAGE_TYPE_VDI', vhd: 'COMPUTE_IMAGE_TYPE_VHD',
  vhdx: 'COMPUTE_IMAGE_TYPE_VHDX', vmdk: 'COMPUTE_IMAGE_TYPE_VMDK', ploop: 'COMPUTE_IMAGE_TYPE_PLOOP',
};

/** Every trait a driver's capabilities may set or clear. */
export const CAPABILITY_TRAITS: readonly string[] = [
  'COMPUTE_NODE',
  'COMPUTE_DEVICE_TAGGING', 'COMPUTE_NET_ATTACH_INTERFACE', 'COMPUTE_NET_ATTACH_INTERFACE_WITH_TAG',
  'COMPUTE_VOLUME_ATTACH_WITH_TAG', 'COMPUTE_VOLUME_EXTEND', 'COMPUTE_VOLUME_MULTI_ATTACH',
  'COMPUTE_TRUSTED_CERTS', 'COMPUTE_SAME_HOST_COLD_MIGRATE', 'COMPUTE_RESCUE_BFV', 'COMPUTE_ACCELERATORS',
  ...Object.values(IMAGE_TYPE_TRAITS),
];
