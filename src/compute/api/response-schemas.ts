// Response body schemas of compute's main routes (servers, flavors, keypairs, limits), written
// from Nova's API reference and checked in tests (test/route-tables.test.ts) against the Zed
// responses captured in test/fixtures/reference/ and against Stratus's own answers. They name what
// every microversion has; later microversions add fields, so objects stay open.
const str = { type: 'string' };
const int = { type: 'integer' };
const strOrNull = { type: ['string', 'null'] };
const links = {
  type: 'array', minItems: 1,
  items: { type: 'object', required: ['rel', 'href'], properties: { rel: str, href: str, type: str } },
};

const server = {
  type: 'object',
  required: ['id', 'name', 'status', 'tenant_id', 'user_id', 'metadata', 'hostId', 'image', 'flavor', 'created', 'updated', 'addresses', 'accessIPv4', 'accessIPv6', 'links', 'OS-DCF:diskConfig'],
  properties: {
    id: str, name: str, status: str, tenant_id: str, user_id: str, hostId: str, created: str, updated: str,
    metadata: { type: 'object', additionalProperties: str },
    // An image-less (volume-booted) server shows "".
    image: { anyOf: [{ type: 'string', maxLength: 0 }, { type: 'object', required: ['id', 'links'], properties: { id: str, links } }] },
    // Before 2.47 {id, links}; from 2.47 the flavor's own values.
    flavor: {
      anyOf: [
        { type: 'object', required: ['id', 'links'], properties: { id: str, links } },
        { type: 'object', required: ['vcpus', 'ram', 'disk', 'ephemeral', 'swap', 'original_name'], properties: { vcpus: int, ram: int, disk: int, ephemeral: int, swap: int, original_name: str, extra_specs: { type: 'object' } } },
      ],
    },
    addresses: { type: 'object', additionalProperties: { type: 'array', items: { type: 'object', required: ['addr', 'version'], properties: { addr: str, version: int } } } },
    accessIPv4: str, accessIPv6: str, links,
    'OS-DCF:diskConfig': { enum: ['AUTO', 'MANUAL'] },
    progress: int,
    'OS-EXT-STS:vm_state': str, 'OS-EXT-STS:task_state': strOrNull, 'OS-EXT-STS:power_state': int,
    'OS-SRV-USG:launched_at': strOrNull, 'OS-SRV-USG:terminated_at': strOrNull,
    'os-extended-volumes:volumes_attached': { type: 'array' },
    locked: { type: 'boolean' }, locked_reason: strOrNull, description: strOrNull,
    tags: { type: 'array', items: str }, server_groups: { type: 'array', items: str },
  },
};

const flavor = {
  type: 'object',
  required: ['id', 'name', 'ram', 'disk', 'vcpus', 'links', 'swap', 'OS-FLV-EXT-DATA:ephemeral', 'OS-FLV-DISABLED:disabled', 'os-flavor-access:is_public', 'rxtx_factor'],
  properties: {
    id: str, name: str, ram: int, disk: int, vcpus: int, links,
    // Nova answers "" for a flavor without swap before 2.75, 0 from 2.75.
    swap: { anyOf: [int, { type: 'string', maxLength: 0 }] },
    'OS-FLV-EXT-DATA:ephemeral': int, 'OS-FLV-DISABLED:disabled': { type: 'boolean' }, 'os-flavor-access:is_public': { type: 'boolean' },
    rxtx_factor: { type: 'number' }, description: strOrNull, extra_specs: { type: 'object', additionalProperties: str },
  },
};

const keypair = {
  type: 'object', required: ['name', 'public_key', 'fingerprint'],
  properties: { name: str, public_key: str, fingerprint: str, type: { enum: ['ssh', 'x509'] }, user_id: str },
};

const absoluteLimits = [
  'maxTotalInstances', 'maxTotalCores', 'maxTotalRAMSize', 'maxServerMeta', 'maxTotalKeypairs', 'maxServerGroups', 'maxServerGroupMembers',
  'totalRAMUsed', 'totalCoresUsed', 'totalInstancesUsed', 'totalServerGroupsUsed',
];

/** A collection answer: `{key: [item…], key_links?: [next]}`. */
const list = (key: string, item: Record<string, unknown>) => ({
  200: { type: 'object', required: [key], properties: { [key]: { type: 'array', items: item }, [`${key}_links`]: links } },
});
const one = (key: string, item: Record<string, unknown>) => ({ 200: { type: 'object', required: [key], additionalProperties: false, properties: { [key]: item } } });

export const RESPONSES = {
  serverList: list('servers', { type: 'object', required: ['id', 'name', 'links'], additionalProperties: false, properties: { id: str, name: str, links } }),
  serverDetail: list('servers', server),
  serverShow: one('server', server),
  flavorList: list('flavors', { type: 'object', required: ['id', 'name', 'links'], properties: { id: str, name: str, links, description: strOrNull } }),
  flavorDetail: list('flavors', flavor),
  flavorShow: one('flavor', flavor),
  keypairList: list('keypairs', { type: 'object', required: ['keypair'], additionalProperties: false, properties: { keypair } }),
  // 200 before 2.2, 201 from 2.2.
  keypairCreate: Object.fromEntries([200, 201].map((s) => [s, { type: 'object', required: ['keypair'], additionalProperties: false, properties: { keypair: { ...keypair, properties: { ...keypair.properties, private_key: str } } } }])),
  limits: {
    200: {
      type: 'object', required: ['limits'], additionalProperties: false,
      properties: {
        limits: {
          type: 'object', required: ['rate', 'absolute'],
          properties: {
            rate: { type: 'array' },
            absolute: { type: 'object', required: absoluteLimits, additionalProperties: int, properties: Object.fromEntries(absoluteLimits.map((k) => [k, int])) },
          },
        },
      },
    },
  },
};
