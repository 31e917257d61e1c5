// /resource_providers/{uuid}/usages and /usages
import { MV } from '../microversions.ts';
import { allowQuery, type Handler } from './router.ts';
import { getProvider } from '../model/providers.ts';
import { projectUsages, projectUsagesByType, providerUsages } from '../model/usages.ts';
import { badRequest } from '../errors.ts';

export const forProvider: Handler = async (c) => {
  const store = c.api.store;
  const p = await getProvider(store.db, c.params.uuid);
  return { status: 200, body: { resource_provider_generation: p.generation, usages: await providerUsages(store, p.id) }, lastModified: new Date().toISOString() };
};

const idParam = (k: string, v: string | undefined) => {
  if (v === undefined) return undefined;
  if (v.length < 1 || v.length > 255) throw badRequest(`Invalid query string parameters: '${k}' must be 1 to 255 characters`);
  return v;
};

export const total: Handler = async (c) => {
  const q = c.query;
  const byType = c.version.atLeast(MV.consumerTypes);
  allowQuery(q, (k) => k === 'project_id' || k === 'user_id' || (byType && k === 'consumer_type'));
  const project = idParam('project_id', q.get('project_id'));
  if (project === undefined) throw badRequest(`Invalid query string parameters: 'project_id' is a required property`);
  const user = idParam('user_id', q.get('user_id'));
  const store = c.api.store;
  if (!byType) return { status: 200, body: { usages: await projectUsages(store, project, user) }, lastModified: new Date().toISOString() };
  const ct = q.get('consumer_type');
  if (ct !== undefined && !/^([A-Z0-9_]+|all|unknown)$/.test(ct)) {
    throw badRequest(`Invalid query string parameters: '${ct}' does not match '^[A-Z0-9_]+$|^all|^unknown$'`);
  }
  return { status: 200, body: { usages: await projectUsagesByType(store, project, user, ct) }, lastModified: new Date().toISOString() };
};
