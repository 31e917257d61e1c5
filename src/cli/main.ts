// The `stratus` command: up, serve, manage, config, status.
import { Command, InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import { ConfigError, extractOsloConfigArgs, loadConfig, sampleConfig, setConfigSources } from '../common/config.ts';
import { createLogger, type LogFormat } from '../common/logging.ts';
import { DbUrlError } from '../common/db/url.ts';
import { openDatabase } from '../common/db/database.ts';
import { allServices, serviceByName } from './services.ts';
import { launch, migrateAll, type Launched } from './launcher.ts';
import { up } from './up.ts';
import { collectStartupGarbage } from './settle.ts';
import { fernetRotate, fernetSetup } from '../identity/tokens/fernet.ts';
import type { Kysely } from 'kysely';
import { credentialKeyRepository, keyRepository } from '../identity/index.ts';
import { CredentialRotateRefused, credentialMigrate, credentialRotate, credentialSetup } from '../identity/credential-keys.ts';
import { bootstrap } from '../identity/bootstrap.ts';
import { identityMigrations, type IdentityDB } from '../identity/store/schema.ts';
import { registerComputeCommands, serveWorker, WORKER_NAMES } from './compute-commands.ts';
import { dbSync as computeCellsSync } from '../compute/cells.ts';
import { registerImageCommands } from './image-commands.ts';

const program = new Command('stratus').description('An OpenStack-compatible cloud: Identity, Image, Placement and Compute.');
const configOpt = () => new Option('--config <file>', 'configuration file (default /etc/stratus/stratus.conf)');
const logFormatOpt = () => new Option('--log-format <format>', 'logs on stderr: readable lines on a terminal, JSON otherwise (auto), or always one of them').choices(['auto', 'json', 'pretty']).default('auto');

function onSignals(stop: () => Promise<void>) {
  let done = false;
  const handler = (sig: string) => {
    if (done) process.exit(1); // a second signal forces the exit
    done = true;
    console.error(`stratus: ${sig} received, draining requests and shutting down`);
    stop().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
}

program.command('up')
  .description('Run every service in one process (all-in-one), on one port, with state in --data-dir')
  .option('--data-dir <dir>', 'state directory', './.stratus')
  .option('--bind <addr>', 'address to listen on', '127.0.0.1')
  .option('--port <n>', 'port for all APIs', (v) => Number(v), 8080)
  .addOption(logFormatOpt())
  .addOption(new Option('--driver <driver>', 'virt driver of the compute agent (first run default: qemu when qemu-system-x86_64 is installed, else fake)').choices(['fake', 'qemu']))
  .option('--compute-hosts <n>', 'compute agents in this process (compute1 … computeN when N > 1, each its own instances_path and compute node)', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('a whole number from 1 to 64');
    return n;
  })
  .action(async (o: { dataDir: string; bind: string; port: number; logFormat: LogFormat; driver?: 'fake' | 'qemu'; computeHosts?: number }) => {
    const t0 = process.hrtime.bigint();
    const r = await up({ dataDir: o.dataDir, bind: o.bind, port: o.port, logFormat: o.logFormat, driver: o.driver, computeHosts: o.computeHosts });
    onSignals(r.stop);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const dir = resolve(o.dataDir);
    console.log(`Stratus all-in-one ready at ${r.url} in ${Math.round(ms)} ms (data in ${dir})`);
    const width = Math.max(...r.endpoints.map((e) => e.name.length));
    for (const e of r.endpoints) console.log(`  ${e.name.padEnd(width)}  ${e.url}`);
    const agent = r.computeWorkers?.agents[0];
    if (agent) {
      const drv = agent.driver;
      // The QEMU driver names its accelerator (its module is loaded only when it runs, so no instanceof).
      const a = (drv as { accelerator?: { accel: string; detail: string } }).accelerator;
      const accel = a ? ` (accelerator ${a.accel}: ${a.detail})` : '';
      console.log(`  compute driver: ${drv.type}${accel}`);
      const agents = r.computeWorkers!.agents;
      if (agents.length > 1) console.log(`  compute hosts: ${agents.length} (${agents.map((a) => a.host).sort((x, y) => x.localeCompare(y, 'en', { numeric: true })).join(', ')})`);
    }
    console.log(`  admin credentials: ${dir}/admin-openrc (and clouds.yaml)`);
    if (r.adminPassword) console.log(`  admin password: ${r.adminPassword} (also in ${dir}/admin-openrc)`);
    console.log(`Use it:  source ${dir}/admin-openrc && openstack token issue`);
    console.log(`   or:   OS_CLIENT_CONFIG_FILE=${dir}/clouds.yaml openstack --os-cloud stratus catalog list`);
    collectStartupGarbage();
  });

const LISTEN_OPTS: Record<string, [section: string, host: string, port: string]> = {
  metadata: ['DEFAULT', 'metadata_listen', 'metadata_listen_port'],
  novncproxy: ['vnc', 'novncproxy_host', 'novncproxy_port'],
  spicehtml5proxy: ['spice', 'html5proxy_host', 'html5proxy_port'],
  serialproxy: ['serial_console', 'serialproxy_host', 'serialproxy_port'],
};

program.command('serve <service>')
  .description(`Run one service alone: ${allServices.map((s) => s.name).join(', ')}`)
  .addOption(configOpt())
  .option('--bind <addr>', 'address to listen on (default 0.0.0.0; metadata: [DEFAULT] metadata_listen)')
  .option('--port <n>', 'port (default: the service\'s OpenStack port; metadata: [DEFAULT] metadata_listen_port)', (v) => Number(v))
  .option('--fake-hosts <n>', 'compute with the fake driver: number of hosts this process presents', (v) => Number(v))
  .addOption(logFormatOpt())
  .action(async (name: string, o: { config?: string; bind?: string; port?: number; fakeHosts?: number; logFormat: LogFormat }) => {
    if (WORKER_NAMES[name]) {
      const w = await serveWorker(name, { config: o.config, fakeHosts: o.fakeHosts });
      onSignals(w.stop);
      collectStartupGarbage();
      return;
    }
    const def = serviceByName(name === 'compute-api' ? 'compute' : name);
    if (!def) throw new ConfigError(`Unknown service "${name}"; known: ${allServices.map((s) => s.name).join(', ')}`);
    const config = await loadConfig(o.config);
    const logger = createLogger({ level: config.get<boolean>('DEFAULT', 'debug') ? 'debug' : 'info', file: config.get<string | undefined>('DEFAULT', 'log_file'), format: o.logFormat });
    for (const w of config.warnings) logger.warn(w.message);
    // nova-api-metadata's own listen options, as nova.conf names them.
    // …and the console proxies' ([vnc] novncproxy_host/port, [spice] html5proxy_*, [serial_console] serialproxy_*).
    const listen = LISTEN_OPTS[def.name];
    const bind = o.bind ?? (listen ? config.get<string>(listen[0], listen[1]) : '0.0.0.0');
    const port = o.port ?? (listen ? config.get<number>(listen[0], listen[2]) : def.defaultPort);
    const r: Launched = await launch({ config, logger, services: [def], bind, port, allInOne: false });
    onSignals(r.stop);
    logger.info(`${name} listening on ${r.url}`);
    collectStartupGarbage();
  });

const manage = program.command('manage').description('Operator commands (keystone-manage, nova-manage)');
const db = manage.command('db').description('Database schema');
db.command('sync')
  .description('Create or upgrade the schema of every configured service database')
  .addOption(configOpt())
  .action(async (o: { config?: string }) => {
    const config = await loadConfig(o.config);
    const sets = allServices.flatMap((s) => s.databases).filter(({ option }) => config.get(option[0], option[1]) !== undefined);
    if (!sets.length) throw new ConfigError('No service database is configured (e.g. [identity_database] connection).');
    await migrateAll(config, sets, (m) => console.log(m));
    // As nova-manage db sync: the cell databases mapped in the compute API database (cell0…) too.
    if (config.get('api_database', 'connection') !== undefined) await computeCellsSync(config.get('api_database', 'connection'), config.get('database', 'connection'), (m) => console.log(m));
  });

const identity = manage.command('identity').description('Identity operations (keystone-manage)');
identity.command('bootstrap')
  .description('Create the admin user, project, roles and the identity endpoints (idempotent)')
  .addOption(configOpt())
  .option('--bootstrap-password <pw>', 'admin password (or OS_BOOTSTRAP_PASSWORD)')
  .option('--bootstrap-username <name>', 'admin user name', 'admin')
  .option('--bootstrap-project-name <name>', 'admin project name', 'admin')
  .option('--bootstrap-role-name <name>', 'admin role name', 'admin')
  .option('--bootstrap-service-name <name>', 'identity service name', 'keystone')
  .option('--bootstrap-admin-url <url>', 'identity admin endpoint URL')
  .option('--bootstrap-internal-url <url>', 'identity internal endpoint URL')
  .option('--bootstrap-public-url <url>', 'identity public endpoint URL')
  .option('--bootstrap-region-id <id>', 'region of the endpoints', 'RegionOne')
  .action(async (o: Record<string, string | undefined>) => {
    const config = await loadConfig(o.config);
    const password = o.bootstrapPassword ?? process.env.OS_BOOTSTRAP_PASSWORD;
    if (!password) throw new ConfigError('Either --bootstrap-password argument or OS_BOOTSTRAP_PASSWORD must be set.');
    await migrateAll(config, [{ set: identityMigrations, option: ['identity_database', 'connection'] }]);
    const d = await openDatabase<IdentityDB>(config.get('identity_database', 'connection'));
    try {
      const r = await bootstrap(d.db, {
        password, username: o.bootstrapUsername, projectName: o.bootstrapProjectName, roleName: o.bootstrapRoleName,
        serviceName: o.bootstrapServiceName, adminUrl: o.bootstrapAdminUrl, internalUrl: o.bootstrapInternalUrl,
        publicUrl: o.bootstrapPublicUrl, regionId: o.bootstrapRegionId, log: (m) => console.log(m),
      });
      console.log(`Bootstrap done: user ${r.userId} has role ${r.roleId} on project ${r.projectId} and on the system.`);
    } finally {
      await d.close();
    }
  });
identity.command('fernet_setup')
  .description('Create the Fernet key repository')
  .addOption(configOpt())
  .action(async (o: { config?: string }) => {
    const config = await loadConfig(o.config);
    const dir = keyRepository(config);
    const r = await fernetSetup(dir);
    console.log(r.created ? `Created Fernet keys in ${dir}` : `Key repository ${dir} already set up`);
  });
identity.command('fernet_rotate')
  .description('Rotate the Fernet keys: the staged key becomes primary')
  .addOption(configOpt())
  .action(async (o: { config?: string }) => {
    const config = await loadConfig(o.config);
    const r = await fernetRotate(keyRepository(config), config.get<number>('fernet_tokens', 'max_active_keys'));
    console.log(`Rotated: key ${r.primary} is now primary. Running identity processes load it within 30 s.`);
  });

identity.command('credential_setup')
  .description('Create the credential key repository ([credential] key_repository)')
  .addOption(configOpt())
  .action(async (o: { config?: string }) => {
    const config = await loadConfig(o.config);
    const dir = credentialKeyRepository(config);
    const r = await credentialSetup(dir);
    console.log(r.created ? `Created credential keys in ${dir}` : `Key repository ${dir} already set up`);
  });
identity.command('credential_migrate')
  .description('Encrypt every credential with the primary credential key (plain rows included)')
  .addOption(configOpt())
  .action(async (o: { config?: string }) => {
    const config = await loadConfig(o.config);
    await withIdentityDb(config, async (db) => {
      const r = await credentialMigrate(credentialKeyRepository(config), db);
      console.log(`Migrated ${r.migrated} credential(s) to the primary key.`);
    });
  });
identity.command('credential_rotate')
  .description('Rotate the credential keys; refused until credential_migrate has sealed every credential with the primary key')
  .addOption(configOpt())
  .action(async (o: { config?: string }) => {
    const config = await loadConfig(o.config);
    await withIdentityDb(config, async (db) => {
      try {
        const r = await credentialRotate(credentialKeyRepository(config), db);
        console.log(`Rotated: credential key ${r.primary} is now primary. Run credential_migrate before the next rotation.`);
      } catch (e) {
        if (!(e instanceof CredentialRotateRefused)) throw e;
        console.error(`stratus: ${e.message}`);
        process.exit(1);
      }
    });
  });

/** The identity database, migrated, for the duration of `fn`. */
async function withIdentityDb(config: Awaited<ReturnType<typeof loadConfig>>, fn: (db: Kysely<IdentityDB>) => Promise<void>): Promise<void> {
  await migrateAll(config, [{ set: identityMigrations, option: ['identity_database', 'connection'] }]);
  const d = await openDatabase<IdentityDB>(config.get('identity_database', 'connection'));
  try { await fn(d.db); } finally { await d.close(); }
}

registerComputeCommands(program, manage);
registerImageCommands(program);

program.command('config').description('Configuration helpers')
  .command('sample').description('Print an annotated sample configuration').action(() => {
    process.stdout.write(sampleConfig());
  });

// oslo's --config-file (repeatable) and --config-dir are accepted before or after the
// subcommand for every command, as runbooks written for nova-manage/keystone-manage pass them.
let argv = process.argv;
try {
  const oslo = extractOsloConfigArgs(process.argv.slice(2));
  setConfigSources(oslo.files);
  argv = [...process.argv.slice(0, 2), ...oslo.rest];
} catch (e) {
  console.error(`stratus: ${(e as Error).message}`);
  process.exit(2);
}

program.parseAsync(argv).catch((e: unknown) => {
  if (e instanceof ConfigError || e instanceof DbUrlError) {
    console.error(`stratus: ${e.message}`);
    process.exit(2);
  }
  console.error(e);
  process.exit(1);
});
