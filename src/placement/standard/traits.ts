// The standard traits (names from the os-traits library that compute drivers, Neutron and
// operators use). They are synced into every placement database at start-up and cannot be
// deleted. This is the subset Stratus's compute service and the common Nova/Neutron setups report;
// names are append only. Anything else must be CUSTOM_*.

const prefixed = (prefix: string, names: string[]) => names.map((n) => `${prefix}${n}`);

export const STANDARD_TRAITS: readonly string[] = [
  // Compute capabilities reported by virt drivers.
  ...prefixed('COMPUTE_', [
    'DEVICE_TAGGING', 'NODE', 'TRUSTED_CERTS', 'SAME_HOST_COLD_MIGRATE', 'RESCUE_BFV', 'ACCELERATORS',
    'SOCKET_PCI_NUMA_AFFINITY', 'REMOTE_MANAGED_PORTS', 'MEM_BACKING_FILE', 'MANAGED_PCI_DEVICE',
    'ADDRESS_SPACE_PASSTHROUGH', 'ADDRESS_SPACE_EMULATED', 'SHARE_LOCAL_FS', 'STATUS_DISABLED',
    'EPHEMERAL_ENCRYPTION', 'EPHEMERAL_ENCRYPTION_LUKS', 'EPHEMERAL_ENCRYPTION_PLAIN',
    'FIRMWARE_BIOS', 'FIRMWARE_UEFI',
    'NET_ATTACH_INTERFACE', 'NET_ATTACH_INTERFACE_WITH_TAG', 'NET_VIRTIO_PACKED',
    'VOLUME_ATTACH_WITH_TAG', 'VOLUME_EXTEND', 'VOLUME_MULTI_ATTACH',
    'MIGRATE_AUTO_CONVERGE', 'MIGRATE_POST_COPY',
    'STORAGE_VIRTIO_FS',
  ]),
  ...prefixed('COMPUTE_ARCH_', ['AARCH64', 'MIPSEL', 'PPC64LE', 'RISCV64', 'S390X', 'X86_64']),
  ...prefixed('COMPUTE_GRAPHICS_MODEL_', ['BOCHS', 'CIRRUS', 'GOP', 'NONE', 'QXL', 'VGA', 'VIRTIO', 'VMVGA', 'XEN']),
  ...prefixed('COMPUTE_IMAGE_TYPE_', ['AKI', 'AMI', 'ARI', 'ISO', 'QCOW2', 'RAW', 'VDI', 'VHD', 'VHDX', 'VMDK', 'PLOOP']),
  ...prefixed('COMPUTE_NET_VIF_MODEL_', [
    'E1000', 'E1000E', 'IGB', 'LAN9118', 'NETFRONT', 'NE2K_PCI', 'PCNET', 'RTL8139', 'SPAPR_VLAN', 'SRIOV',
    'VIRTIO', 'VMXNET', 'VMXNET3',
  ]),
  ...prefixed('COMPUTE_SECURITY_', [
    'TPM_1_2', 'TPM_2_0', 'TPM_TIS', 'TPM_CRB', 'TPM_SECRET_SECURITY_USER', 'TPM_SECRET_SECURITY_HOST',
    'TPM_SECRET_SECURITY_DEPLOYMENT', 'UEFI_SECURE_BOOT', 'STATELESS_FIRMWARE',
  ]),
  ...prefixed('COMPUTE_STORAGE_BUS_', ['FDC', 'IDE', 'LXC', 'SATA', 'SCSI', 'USB', 'VIRTIO', 'UML', 'XEN']),
  ...prefixed('COMPUTE_VIOMMU_MODEL_', ['AUTO', 'INTEL', 'SMMUV3', 'VIRTIO']),
  // Hardware: architectures and CPU features.
  ...prefixed('HW_ARCH_', [
    'ALPHA', 'ARMV6', 'ARMV7', 'ARMV7B', 'AARCH64', 'CRIS', 'I686', 'IA64', 'LM32', 'M68K', 'MICROBLAZE',
    'MICROBLAZEEL', 'MIPS', 'MIPSEL', 'MIPS64', 'MIPS64EL', 'OPENRISC', 'PARISC', 'PARISC64', 'PPC', 'PPCLE',
    'PPC64', 'PPC64LE', 'PPCEMB', 'S390', 'S390X', 'SH4', 'SH4EB', 'SPARC', 'SPARC64', 'UNICORE32', 'X86_64',
    'XTENSA', 'XTENSAEB',
  ]),
  'HW_CPU_HYPERTHREADING',
  ...prefixed('HW_CPU_X86_', [
    'AVX', 'AVX2', 'CLMUL', 'FMA3', 'FMA4', 'F16C', 'MMX', 'SSE', 'SSE2', 'SSE3', 'SSSE3', 'SSE41', 'SSE42',
    'SSE4A', 'XOP', '3DNOW', 'AVX512F', 'AVX512CD', 'AVX512PF', 'AVX512ER', 'AVX512VL', 'AVX512BW', 'AVX512DQ',
    'AVX512VNNI', 'AVX512VBMI', 'AVX512IFMA', 'AVX512VBMI2', 'AVX512BITALG', 'AVX512VAES', 'AVX512GFNI',
    'AVX512VPCLMULQDQ', 'AVX512VPOPCNTDQ', 'ABM', 'BMI', 'BMI2', 'TBM', 'AESNI', 'SHA', 'MPX', 'SGX', 'TSX',
    'ASF', 'VMX', 'SVM', 'PDPE1GB', 'STIBP',
    'AMD_SEV', 'AMD_SVM', 'INTEL_VMX',
  ]),
  ...prefixed('HW_CPU_AARCH64_', [
    'FP', 'ASIMD', 'EVTSTRM', 'AES', 'PMULL', 'SHA1', 'SHA2', 'CRC32', 'FPHP', 'ASIMDHP', 'ASIMDRDM', 'ATOMICS',
    'LRCPC', 'JSCVT', 'FCMA', 'DCPOP', 'SHA3', 'SM3', 'SM4', 'ASIMDDP', 'SHA512', 'SVE', 'CPUID',
  ]),
  ...prefixed('HW_CPU_PPC64LE_', ['POWER8', 'POWER9']),
  'HW_NUMA_ROOT',
  // Accelerators and NICs.
  ...prefixed('HW_GPU_API_', [
    'DIRECT2D', 'DIRECT3D_V6_0', 'DIRECT3D_V7_0', 'DIRECT3D_V8_0', 'DIRECT3D_V9_0', 'DIRECT3D_V10_0',
    'DIRECT3D_V10_1', 'DIRECT3D_V11_0', 'DIRECT3D_V11_1', 'DIRECT3D_V11_2', 'DIRECT3D_V11_3', 'DIRECT3D_V12_0',
    'OPENGL_V1_1', 'OPENGL_V1_2', 'OPENGL_V1_3', 'OPENGL_V1_4', 'OPENGL_V1_5', 'OPENGL_V2_0', 'OPENGL_V2_1',
    'OPENGL_V3_0', 'OPENGL_V3_1', 'OPENGL_V3_2', 'OPENGL_V3_3', 'OPENGL_V4_0', 'OPENGL_V4_1', 'OPENGL_V4_2',
    'OPENGL_V4_3', 'OPENGL_V4_4', 'OPENGL_V4_5', 'VULKAN', 'DXVA', 'CUDA_V1_0', 'CUDA_V2_0', 'CUDA_V3_0',
  ]),
  ...prefixed('HW_NIC_', [
    'SRIOV', 'SRIOV_QOS_TX', 'SRIOV_QOS_RX', 'SRIOV_MULTIQUEUE', 'SRIOV_TRUSTED', 'MULTIQUEUE', 'VMDQ',
    'PROGRAMMABLE_PIPELINE',
    'ACCEL_SSL', 'ACCEL_IPSEC', 'ACCEL_TLS', 'ACCEL_DIFFIEH', 'ACCEL_RSA', 'ACCEL_ECC', 'ACCEL_LZS',
    'ACCEL_DEFLATE',
    'DCB_PFC', 'DCB_ETS', 'DCB_QCN',
    'OFFLOAD_TSO', 'OFFLOAD_GRO', 'OFFLOAD_GSO', 'OFFLOAD_UFO', 'OFFLOAD_LRO', 'OFFLOAD_LSO', 'OFFLOAD_TCS',
    'OFFLOAD_UCS', 'OFFLOAD_SCS', 'OFFLOAD_L2CRC', 'OFFLOAD_FDF', 'OFFLOAD_RXVLAN', 'OFFLOAD_TXVLAN',
    'OFFLOAD_VXLAN', 'OFFLOAD_GRE', 'OFFLOAD_GENEVE', 'OFFLOAD_TXUDP', 'OFFLOAD_QINQ', 'OFFLOAD_RDMA',
    'OFFLOAD_RXHASH', 'OFFLOAD_RX', 'OFFLOAD_TX', 'OFFLOAD_SG', 'OFFLOAD_SWITCHDEV',
  ]),
  // Sharing providers and storage.
  'MISC_SHARES_VIA_AGGREGATE',
  'STORAGE_DISK_HDD',
  'STORAGE_DISK_SSD',
  'OWNER_CYBORG',
  'OWNER_NOVA',
];

/** The trait that marks a provider whose inventory is shared with its aggregate peers. */
export const SHARES_VIA_AGGREGATE = 'MISC_SHARES_VIA_AGGREGATE';
