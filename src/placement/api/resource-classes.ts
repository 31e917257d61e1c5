// /resource_classes and /resource_classes/{name}
import { Type } from '@sinclair/typebox';
import { validate, type Handler } from './router.ts';
import {
  createResourceClass, deleteResourceClass, ensureResourceClass, getResourceClass, listResourceClasses, renameResourceClass,
} from '../model/resource-classes.ts';
import { modified } from '../model/providers.ts';
import { badRequest } from '../errors.ts';

const CUSTOM_RC = '^CUSTOM_[A-Z0-9_]+$';
const nameSchema = Type.Object({ name: Type.String({ pattern: CUSTOM_RC, maxLength: 255 }) }, { additionalProperties: false });

const serialize = (prefix: string, name: string) => ({ name, links: [{ rel: 'self', href: `${prefix}/resource_classes/${name}` }] });

export const list: Handler = async (c) => {
  const all = await listResourceClasses(c.api.store);
  const last = all.reduce<string | undefined>((m, r) => (!m || modified(r) > m ? modified(r) : m), undefined);
  return { status: 200, body: { resource_classes: all.map((r) => serialize(c.prefix, r.name)) }, lastModified: last ?? new Date().toISOString() };
};

export const show: Handler = async (c) => {
  const rc = await getResourceClass(c.api.store, c.params.name);
  return { status: 200, body: serialize(c.prefix, rc.name), lastModified: modified(rc) };
};

export const create: Handler = async (c) => {
  const { name } = validate(nameSchema, c.body);
  await createResourceClass(c.api.store, name);
  return { status: 201, headers: { location: c.location(`/resource_classes/${name}`) } };
};

/** 1.2 - 1.6: rename a custom class. */
export const rename: Handler = async (c) => {
  const { name } = validate(nameSchema, c.body);
  const rc = await renameResourceClass(c.api.store, c.params.name, name);
  return { status: 200, body: serialize(c.prefix, rc.name), lastModified: modified(rc) };
};

/** 1.7+: bodiless create-or-verify. */
export const ensure: Handler = async (c) => {
  const name = c.params.name;
  if (!new RegExp(CUSTOM_RC).test(name) || name.length > 255) {
    throw badRequest(`JSON does not validate: '${name}' does not match '${CUSTOM_RC}'`);
  }
  const { created, rc } = await ensureResourceClass(c.api.store, name);
  if (created) return { status: 201, headers: { location: c.location(`/resource_classes/${name}`) } };
  return { status: 204, lastModified: modified(rc) };
};

export const remove: Handler = async (c) => {
  await deleteResourceClass(c.api.store, c.params.name);
  return { status: 204 };
};
