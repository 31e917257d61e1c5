// Where a service's policy overrides live: [oslo_policy] policy_file, relative to the config
// file's directory (as oslo.config resolves it) unless absolute.
import { dirname, isAbsolute, join } from 'node:path';
import type { Config } from './config.ts';

export function resolvePolicyFile(config: Config): string | undefined {
  const f = config.get<string | undefined>('oslo_policy', 'policy_file');
  if (!f) return undefined;
  if (isAbsolute(f)) return f;
  return join(config.file ? dirname(config.file) : process.cwd(), f);
}
