// Once a server process is up, one full garbage collection: start-up (migrations, config, route
// and schema compilation, policy parsing) leaves tens of MiB of garbage in the old generation,
// and an idle server allocates too little to ever trigger the collection that would free it —
// the all-in-one idled at ~112–117 MiB RSS with a 58–61 MiB heap of which ~33 MiB was live;
// after this collection ~96–103 MiB with a ~30 MiB heap. It runs once, 15 s after the process
// is ready (a ~50 ms pause, never on a request's path): run 5–8 s after start-up, the same
// collection left the heap at its size (V8 gives pages back only once allocation has been quiet
// for a while); at 12 s and later it returned the 14 MiB.
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

export function collectStartupGarbage(afterMs = 15_000): void {
  setTimeout(() => {
    try {
      // `gc` is exposed only to contexts created after the flag is set, hence the new context.
      v8.setFlagsFromString('--expose-gc');
      (runInNewContext('gc') as () => void)();
    } catch { /* a runtime without the flag: the memory is merely not returned early */ }
  }, afterMs).unref();
}
