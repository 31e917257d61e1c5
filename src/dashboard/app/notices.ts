// Transient notices (action succeeded / failed), announced to screen readers by the live region.
export interface Notice { kind: 'ok' | 'error'; text: string; id?: number }
let listener: ((n: Notice) => void) | undefined;
let seq = 0;
export function signalNotice(n: Notice) { listener?.({ ...n, id: ++seq }); }
export function onNotice(f: (n: Notice) => void) { listener = f; }
