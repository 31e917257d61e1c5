// The console URLs of the all-in-one: its own /novnc, /spice and /serial paths on its one port,
// unless the operator set them.
import type { Config } from '../../common/config.ts';
import './config.ts';

const OPTS: [section: string, option: string, path: string, ws: boolean][] = [
  ['vnc', 'novncproxy_base_url', '/novnc/vnc_auto.html', false],
  ['spice', 'html5proxy_base_url', '/spice/spice_auto.html', false],
  ['serial_console', 'base_url', '/serial/', true],
];

export function withAllInOneConsoleUrls(config: Config, base: string): Config {
  const b = base.replace(/\/+$/, '');
  const set: Record<string, Record<string, string>> = {};
  for (const [section, option, path, ws] of OPTS) {
    const explicit = Object.keys(config.section(section)).some((k) => k.toLowerCase() === option) || process.env[`OS_${section.toUpperCase()}__${option.toUpperCase()}`];
    if (!explicit) set[section] = { [option]: `${ws ? b.replace(/^http/, 'ws') : b}${path}` };
  }
  return Object.keys(set).length ? config.with(set) : config;
}
