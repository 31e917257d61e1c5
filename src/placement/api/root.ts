// GET / : the version document (no authentication, as upstream).
import type { Handler } from './router.ts';
import { MAX_VERSION, MIN_VERSION } from '../microversions.ts';

export const versionDocument: Handler = async () => ({
  status: 200,
  body: { versions: [{ id: 'v1.0', max_version: MAX_VERSION, min_version: MIN_VERSION, status: 'CURRENT', links: [{ rel: 'self', href: '' }] }] },
});
