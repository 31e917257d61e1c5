// Tables as Python's prettytable prints them (nova-manage, nova-status): centred cells.
export function prettyTable(headers: string[], rows: string[][], align: 'c' | 'l' = 'c'): string {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = `+${w.map((n) => '-'.repeat(n + 2)).join('+')}+`;
  const cell = (s: string, n: number) => {
    if (align === 'l') return ` ${s}${' '.repeat(n - s.length)} `;
    const pad = n - s.length;
    const left = Math.floor(pad / 2);
    return ` ${' '.repeat(left)}${s}${' '.repeat(pad - left)} `;
  };
  const fmt = (r: string[]) => `|${r.map((s, i) => cell(s ?? '', w[i])).join('|')}|`;
  return [line, fmt(headers), line, ...rows.map(fmt), line].join('\n');
}
