// An oslo.policy-compatible rule engine: check strings such as
//   "role:admin or (role:reader and project_id:%(project_id)s)"
// with `rule:`, `role:`, `@` (always), `!` (never), `not`, `and`, `or`, parentheses, and
// generic `<credential field>:<literal or %(target field)s>` checks. Defaults come from the
// service; a policy.yaml/json may override any rule.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { Forbidden } from '../errors.ts';

export interface Credentials {
  user_id?: string;
  project_id?: string;
  domain_id?: string;
  /** 'all' when the token is system-scoped */
  system_scope?: string;
  roles: string[];
  [k: string]: unknown;
}

type Node =
  | { t: 'true' } | { t: 'false' }
  | { t: 'rule'; name: string }
  | { t: 'role'; role: string }
  | { t: 'generic'; key: string; value: string }
  | { t: 'not'; a: Node } | { t: 'and'; a: Node[] } | { t: 'or'; a: Node[] };

// As oslo.policy: split on whitespace, then peel parentheses off each word's ends only, so a
// target reference such as `project_id:%(project_id)s` keeps its own parentheses.
function tokenize(s: string): string[] {
  const out: string[] = [];
  for (const word of s.split(/\s+/).filter(Boolean)) {
    let w = word;
    while (w.startsWith('(')) { out.push('('); w = w.slice(1); }
    let closing = 0;
    while (w.endsWith(')') && !/%\([^()]*\)$/.test(w)) { closing++; w = w.slice(0, -1); }
    if (w) out.push(w);
    for (let i = 0; i < closing; i++) out.push(')');
  }
  return out;
}

export function parseRule(src: string): Node {
  if (src.trim() === '') return { t: 'true' };
  const toks = tokenize(src);
  let i = 0;
  const parseOr = (): Node => {
    const parts = [parseAnd()];
    while (toks[i]?.toLowerCase() === 'or') { i++; parts.push(parseAnd()); }
    return parts.length === 1 ? parts[0] : { t: 'or', a: parts };
  };
  const parseAnd = (): Node => {
    const parts = [parseNot()];
    while (toks[i]?.toLowerCase() === 'and') { i++; parts.push(parseNot()); }
    return parts.length === 1 ? parts[0] : { t: 'and', a: parts };
  };
  const parseNot = (): Node => {
    if (toks[i]?.toLowerCase() === 'not') { i++; return { t: 'not', a: parseNot() }; }
    return parseAtom();
  };
  const parseAtom = (): Node => {
    const tok = toks[i++];
    if (tok === undefined) throw new Error(`unexpected end of rule: ${src}`);
    if (tok === '(') {
      const n = parseOr();
      if (toks[i++] !== ')') throw new Error(`missing ) in rule: ${src}`);
      return n;
    }
    if (tok === '@') return { t: 'true' };
    if (tok === '!') return { t: 'false' };
    const c = tok.indexOf(':');
    if (c < 0) throw new Error(`bad check "${tok}" in rule: ${src}`);
    const kind = tok.slice(0, c);
    const val = tok.slice(c + 1);
    if (kind === 'rule') return { t: 'rule', name: val };
    if (kind === 'role') return { t: 'role', role: val.toLowerCase() };
    return { t: 'generic', key: kind, value: val };
  };
  const n = parseOr();
  if (i !== toks.length) throw new Error(`trailing tokens in rule: ${src}`);
  return n;
}

function lookup(obj: Record<string, unknown>, path: string): unknown {
  let cur: unknown = obj;
  for (const p of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

export class PolicyEngine {
  private rules = new Map<string, Node>();
  private sources = new Map<string, string>();

  constructor(defaults: Record<string, string>, overrides: Record<string, string> = {}) {
    for (const [k, v] of Object.entries({ ...defaults, ...overrides })) {
      this.rules.set(k, parseRule(v));
      this.sources.set(k, v);
    }
  }

  static async load(defaults: Record<string, string>, file?: string): Promise<PolicyEngine> {
    if (!file || !existsSync(file)) return new PolicyEngine(defaults);
    const text = await readFile(file, 'utf8');
    // The YAML parser is loaded only when there is a file to read (most deployments have none).
    const { parse: parseYaml } = (await import('yaml')).default;
    const overrides = (parseYaml(text) ?? {}) as Record<string, string>;
    return new PolicyEngine(defaults, overrides);
  }

  check(rule: string, creds: Credentials, target: Record<string, unknown> = {}): boolean {
    const node = this.rules.get(rule);
    if (!node) throw new Error(`policy rule ${rule} is not registered`);
    return this.eval(node, creds, target, 0);
  }

  /** Throws Forbidden (with oslo.policy's message) when the rule does not pass. */
  enforce(rule: string, creds: Credentials, target: Record<string, unknown> = {}): void {
    if (!this.check(rule, creds, target)) throw new Forbidden(`You are not authorized to perform the requested action: ${rule}.`);
  }

  private eval(n: Node, creds: Credentials, target: Record<string, unknown>, depth: number): boolean {
    if (depth > 50) throw new Error('policy rule recursion too deep');
    switch (n.t) {
      case 'true': return true;
      case 'false': return false;
      case 'not': return !this.eval(n.a, creds, target, depth + 1);
      case 'and': return n.a.every((x) => this.eval(x, creds, target, depth + 1));
      case 'or': return n.a.some((x) => this.eval(x, creds, target, depth + 1));
      case 'rule': {
        const r = this.rules.get(n.name);
        return r ? this.eval(r, creds, target, depth + 1) : false;
      }
      case 'role': return creds.roles.some((r) => r.toLowerCase() === n.role);
      case 'generic': {
        // "field:%(target.path)s" compares a credential with the target; a literal compares
        // the credential with the literal ('True'/'False' for booleans as in oslo.policy).
        const m = /^%\((.+)\)s$/.exec(n.value);
        // "'public':%(visibility)s" (oslo.policy): a quoted literal on the left is compared with
        // the target value on the right (Glance's visibility checks use this form).
        const quoted = /^(['"])(.*)\1$/.exec(n.key);
        if (quoted) {
          const right = m ? lookup(target, m[1]) : n.value;
          return right !== undefined && right !== null && String(right) === quoted[2];
        }
        const credVal = lookup(creds, n.key);
        if (m) {
          const tv = lookup(target, m[1]);
          return tv !== undefined && tv !== null && credVal !== undefined && credVal !== null && String(tv) === String(credVal);
        }
        const literal = n.value.replace(/^['"]|['"]$/g, '');
        if (typeof credVal === 'boolean') return String(credVal).toLowerCase() === literal.toLowerCase();
        if (Array.isArray(credVal)) return credVal.map(String).includes(literal);
        return credVal !== undefined && String(credVal) === literal;
      }
    }
  }
}
