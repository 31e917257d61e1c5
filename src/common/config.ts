// oslo.config-style configuration: a typed option registry, an INI file, and environment
// overrides named OS_<SECTION>__<OPTION>. Services register their options at import time;
// `stratus config sample` prints every registered option with its help.
import { readFile } from 'node:fs/promises';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseIni } from 'ini';

export type OptType = 'string' | 'int' | 'float' | 'bool' | 'list' | 'url';

export interface OptDef<T = unknown> {
  section: string;
  name: string;
  type: OptType;
  default?: T;
  help: string;
  required?: boolean;
  choices?: readonly string[];
  min?: number;
  max?: number;
  secret?: boolean;
  /** A note printed in the sample when Stratus deliberately differs from OpenStack's default. */
  note?: string;
}

export class ConfigError extends Error {}

const registry = new Map<string, OptDef>();
const key = (section: string, name: string) => `${section.toLowerCase()}.${name.toLowerCase()}`;

export function registerOpts(defs: OptDef[]): void {
  for (const d of defs) registry.set(key(d.section, d.name), d);
}

export function registeredOpts(): OptDef[] {
  return [...registry.values()];
}

/**
 * Options of sections whose names the operator chooses, as oslo.config's dynamic groups: Glance
 * reads each store's options from a section named after the store's id in enabled_backends.
 * `sections` lists the group's sections from the already-resolved options.
 */
export interface SectionGroup {
  /** How the sample names the sections, e.g. "<store id>". */
  placeholder: string;
  sections: (get: (section: string, name: string) => unknown) => string[];
  options: Omit<OptDef, 'section'>[];
}

const groups: SectionGroup[] = [];

export function registerSectionGroup(g: SectionGroup): void {
  groups.push(g);
}

function convert(def: OptDef, raw: unknown, source: string): unknown {
  const bad = (why: string) =>
    new ConfigError(`Invalid value for option [${def.section}] ${def.name} = ${JSON.stringify(raw)} (${source}): ${why}`);
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw === 'boolean' || typeof raw === 'number') raw = String(raw);
  if (typeof raw !== 'string') throw bad('expected a single value');
  const s = raw.trim();
  switch (def.type) {
    case 'string':
    case 'url': {
      if (def.choices && !def.choices.includes(s)) throw bad(`must be one of ${def.choices.join(', ')}`);
      return s;
    }
    case 'int': {
      if (!/^-?\d+$/.test(s)) throw bad('expected an integer');
      const n = Number(s);
      if (def.min !== undefined && n < def.min) throw bad(`must be >= ${def.min}`);
      if (def.max !== undefined && n > def.max) throw bad(`must be <= ${def.max}`);
      return n;
    }
    case 'float': {
      const n = Number(s);
      if (s === '' || !Number.isFinite(n)) throw bad('expected a number');
      if (def.min !== undefined && n < def.min) throw bad(`must be >= ${def.min}`);
      return n;
    }
    case 'bool': {
      const l = s.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(l)) return true;
      if (['false', '0', 'no', 'off'].includes(l)) return false;
      throw bad('expected true or false');
    }
    case 'list':
      return s === '' ? [] : s.split(',').map((x) => x.trim()).filter(Boolean);
  }
}

export interface ConfigWarning { section: string; name: string; message: string }

/** Resolved configuration. `get` is typed by the caller; unknown options throw (a programming error). */
export class Config {
  readonly warnings: ConfigWarning[] = [];
  constructor(private readonly values: Map<string, unknown>, readonly file?: string, readonly raw: Record<string, Record<string, string>> = {}) {}

  get<T = string>(section: string, name: string): T {
    const k = key(section, name);
    const def = registry.get(k) ?? this.groupDef(section, name);
    if (!def) throw new Error(`option [${section}] ${name} is not registered`);
    return (this.values.has(k) ? this.values.get(k) : def.default) as T;
  }

  /** The definition of an option of a section group (see SectionGroup), when `section` is one. */
  groupDef(section: string, name: string): OptDef | undefined {
    const get = (s: string, n: string) => { const k = key(s, n); return this.values.has(k) ? this.values.get(k) : registry.get(k)?.default; };
    for (const g of groups) {
      const opt = g.options.find((o) => o.name.toLowerCase() === name.toLowerCase());
      if (opt && g.sections(get).some((x) => x.toLowerCase() === section.toLowerCase())) return { ...opt, section };
    }
    return undefined;
  }

  /** Raw values of a section (also unregistered ones), e.g. for pass-through settings. */
  section(section: string): Record<string, string> {
    return this.raw[section] ?? {};
  }

  /** A copy with some options replaced (tests, `stratus up` flags). */
  with(overrides: Record<string, Record<string, unknown>>): Config {
    const values = new Map(this.values);
    for (const [section, opts] of Object.entries(overrides)) {
      for (const [name, v] of Object.entries(opts)) {
        const def = registry.get(key(section, name));
        if (!def) throw new Error(`option [${section}] ${name} is not registered`);
        values.set(key(section, name), typeof v === 'string' ? convert(def, v, 'override') : v);
      }
    }
    return new Config(values, this.file, this.raw);
  }
}

/**
 * Builds a Config from INI text plus the environment. Unknown options become warnings, invalid
 * values and missing required options throw ConfigError naming section, option and value.
 */
export function buildConfig(iniText: string, env: NodeJS.ProcessEnv = process.env, file?: string): Config {
  const parsed = parseIni(iniText) as Record<string, unknown>;
  const raw: Record<string, Record<string, string>> = {};
  const values = new Map<string, unknown>();
  const warnings: ConfigWarning[] = [];
  // ini puts keys before the first [section] at the top level; oslo treats them as [DEFAULT].
  const sections: Record<string, Record<string, unknown>> = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) sections[k] = v as Record<string, unknown>;
    else (sections.DEFAULT ??= {})[k] = v;
  }
  // Registered options first; options of section groups once the options naming their sections
  // (which may come from the environment) are known.
  const later: [string, string, unknown][] = [];
  for (const [section, opts] of Object.entries(sections)) {
    raw[section] = {};
    for (const [name, v] of Object.entries(opts)) {
      raw[section][name] = String(v);
      const def = registry.get(key(section, name));
      if (def) values.set(key(section, name), convert(def, v, file ?? 'config file'));
      else later.push([section, name, v]);
    }
  }
  const laterEnv: [string, string, string, string][] = [];
  for (const [envName, v] of Object.entries(env)) {
    const m = /^OS_(.+?)__(.+)$/.exec(envName);
    if (!m || v === undefined) continue;
    const def = registry.get(key(m[1], m[2]));
    // OS_* is also the openstack client's namespace (OS_AUTH_URL…): unknown names are not ours.
    if (def) values.set(key(def.section, def.name), convert(def, v, `environment ${envName}`));
    else laterEnv.push([m[1], m[2], v, envName]);
  }
  const grouped = new Config(values);
  for (const [section, name, v] of later) {
    const def = grouped.groupDef(section, name);
    if (def) values.set(key(section, name), convert(def, v, file ?? 'config file'));
    else warnings.push({ section, name, message: `Unknown option [${section}] ${name} in ${file ?? 'config'} is ignored` });
  }
  for (const [envSection, envOpt, v, envName] of laterEnv) {
    const section = Object.keys(raw).find((x) => x.toLowerCase() === envSection.toLowerCase()) ?? envSection.toLowerCase();
    const def = grouped.groupDef(section, envOpt);
    if (!def) continue;
    values.set(key(section, def.name), convert(def, v, `environment ${envName}`));
    (raw[section] ??= {})[def.name] = v;
  }
  for (const def of registry.values()) {
    if (def.required && values.get(key(def.section, def.name)) === undefined && def.default === undefined) {
      throw new ConfigError(`Required option [${def.section}] ${def.name} is not set (${def.help})`);
    }
  }
  const cfg = new Config(values, file, raw);
  cfg.warnings.push(...warnings);
  return cfg;
}

export const DEFAULT_CONFIG_FILE = '/etc/stratus/stratus.conf';

/**
 * Files named by oslo's `--config-file` (repeatable) and `--config-dir` on the command line; they
 * are used when a command gets no `--config` of its own (cli/main.ts sets them).
 */
let commandLineSources: string[] | undefined;
export function setConfigSources(files: string[]): void { commandLineSources = files; }

/**
 * oslo's command-line config options, wherever they stand in argv (before or after the
 * subcommand, `--opt value` or `--opt=value`): returns the files in oslo's order (each
 * --config-file in turn, then each --config-dir's *.conf sorted) and argv without them.
 */
export function extractOsloConfigArgs(argv: string[]): { files: string[]; rest: string[] } {
  const files: string[] = [];
  const dirs: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--(config-file|config-dir)(?:=(.*))?$/.exec(a);
    if (!m) { rest.push(a); continue; }
    const value = m[2] ?? argv[++i];
    if (value === undefined || value === '') throw new ConfigError(`--${m[1]} needs a value`);
    (m[1] === 'config-file' ? files : dirs).push(value);
  }
  for (const d of dirs) {
    if (!existsSync(d) || !statSync(d).isDirectory()) throw new ConfigError(`Config directory ${d} does not exist`);
    files.push(...readdirSync(d).filter((n) => n.endsWith('.conf')).sort().map((n) => join(d, n)));
  }
  return { files, rest };
}

/**
 * Loads one file, or several merged as oslo merges them (a later file's option wins; sections
 * add up). Without a file: the command line's --config-file/--config-dir, else the default file.
 */
export async function loadConfig(file?: string | string[], env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  const files = file === undefined ? (commandLineSources?.length ? commandLineSources : existsSync(DEFAULT_CONFIG_FILE) ? [DEFAULT_CONFIG_FILE] : []) : typeof file === 'string' ? [file] : file;
  const texts: string[] = [];
  for (const f of files) {
    if (!existsSync(f)) throw new ConfigError(`Config file ${f} does not exist`);
    texts.push(await readFile(f, 'utf8'));
  }
  // ini merges a repeated [section] into one object and lets a later key win: oslo's rule.
  return buildConfig(texts.join('\n'), env, files.at(-1));
}

/** An annotated sample config generated from the registry. */
export function sampleConfig(): string {
  const bySection = new Map<string, OptDef[]>();
  for (const d of registry.values()) {
    if (!bySection.has(d.section)) bySection.set(d.section, []);
    bySection.get(d.section)!.push(d);
  }
  const sections = [...bySection.keys()].sort((a, b) => (a === 'DEFAULT' ? -1 : b === 'DEFAULT' ? 1 : a.localeCompare(b)));
  const out: string[] = [];
  for (const s of sections) {
    out.push(`[${s}]`, '');
    for (const d of bySection.get(s)!.sort((a, b) => a.name.localeCompare(b.name))) {
      for (const line of wrap(d.help, 76)) out.push(`# ${line}`);
      const meta = [`type: ${d.type}`];
      if (d.choices) meta.push(`choices: ${d.choices.join(', ')}`);
      if (d.min !== undefined) meta.push(`min: ${d.min}`);
      if (d.max !== undefined) meta.push(`max: ${d.max}`);
      if (d.required) meta.push('required');
      out.push(`# (${meta.join('; ')})`);
      if (d.note) for (const line of wrap(`NOTE: ${d.note}`, 76)) out.push(`# ${line}`);
      const def = d.default === undefined ? '<None>' : Array.isArray(d.default) ? d.default.join(',') : String(d.default);
      out.push(`#${d.name} = ${def}`, '');
    }
  }
  for (const g of groups) {
    out.push(`#[${g.placeholder}]`, '');
    for (const d of g.options) {
      for (const line of wrap(d.help, 76)) out.push(`# ${line}`);
      out.push(`# (type: ${d.type})`, `#${d.name} = ${d.default === undefined ? '<None>' : String(d.default)}`, '');
    }
  }
  return out.join('\n');
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const w of text.split(/\s+/)) {
    if (cur && cur.length + w.length + 1 > width) { lines.push(cur); cur = w; } else cur = cur ? `${cur} ${w}` : w;
  }
  if (cur) lines.push(cur);
  return lines;
}

// Options every process shares.
registerOpts([
  { section: 'DEFAULT', name: 'transport_url', type: 'url', default: 'memory://', help: 'Message bus URL: memory:// (one process) or rabbit://user:pass@host:5672/vhost.' },
  { section: 'DEFAULT', name: 'control_exchange', type: 'string', default: 'stratus', help: 'Exchange name on the message bus that all services share.' },
  { section: 'DEFAULT', name: 'rpc_response_timeout', type: 'int', default: 60, min: 1, help: 'Seconds to wait for an RPC reply.' },
  { section: 'DEFAULT', name: 'rpc_call_monitor_timeout', type: 'int', default: 10, min: 0, help: "Seconds without a heartbeat from the server handling an RPC call after which the caller gives up (oslo.messaging's call_monitor_timeout; the server heartbeats every third of it). A server killed mid-call is then noticed in seconds instead of at rpc_response_timeout. 0 disables the heartbeats." },
  { section: 'DEFAULT', name: 'my_ip', type: 'string', default: '127.0.0.1', help: 'IP address of this host.' },
  { section: 'DEFAULT', name: 'host', type: 'string', default: '', help: 'Name of this host as services and compute report it (defaults to the machine hostname).' },
  { section: 'DEFAULT', name: 'debug', type: 'bool', default: false, help: 'Log at debug level.' },
  { section: 'DEFAULT', name: 'log_file', type: 'string', help: 'Write logs to this file instead of stderr.' },
  { section: 'DEFAULT', name: 'state_path', type: 'string', default: '/var/lib/stratus', help: 'Top-level directory for state (keys, images, instances).' },
  { section: 'DEFAULT', name: 'enabled_apis', type: 'list', default: ['identity', 'image', 'placement', 'compute', 'ec2', 'metadata'], help: 'APIs the all-in-one serves (metadata needs compute).' },
  { section: 'DEFAULT', name: 'max_request_body_size', type: 'int', default: 114688, min: 1024, help: 'Largest API request body in bytes (oslo.middleware sizelimit); larger bodies get 413. Image data uploads are exempt.' },
  { section: 'oslo_policy', name: 'policy_file', type: 'string', default: 'policy.yaml', help: 'Policy overrides (YAML or JSON), relative to the config file directory unless absolute.' },
  { section: 'oslo_concurrency', name: 'lock_path', type: 'string', help: 'Directory for inter-process lock files.' },
]);
