// An ISO 9660 image writer for small read-only volumes (the config drive): the primary volume
// with Rock Ridge (RRIP 1.09: POSIX names, modes, times) and a Joliet supplementary volume, as
// `genisoimage -r -J` writes them, so that Linux (which prefers Rock Ridge), blkid/findfs (the
// volume label), cloud-init and `isoinfo -R`/`-J` read the same tree. Written in-process because
// spawning genisoimage was most of a config-drive boot's time on the spawn path (75–150 ms of
// process start-up under load, against ~1 ms for the ~40 files here).
//
// Layout (2048-byte sectors): 0–15 system area, 16 primary descriptor, 17 Joliet descriptor,
// 18 terminator, the four path tables (primary L/M, Joliet L/M), the primary directories, the
// continuation area holding the root's Rock Ridge ER entry, the Joliet directories, then each
// file's data once (both hierarchies point at it), 150 sectors of padding. Every size is known from the names alone,
// so the image is laid out first and then produced in one pass, in order (isoChunks).
//
// Rock Ridge's `-r` rationalisation: uid/gid 0, files r--r--r--, directories r-xr-xr-x.

const SECTOR = 2048;
const FIRST_FREE = 19;
const PAD_SECTORS = 150;
/** Rock Ridge entries of a record other than NM: RR 5 + PX 36 + TF 26. */
const RR_FIXED = 5 + 36 + 26;
const ER_ID = 'RRIP_1991A';
const ER_DESC = 'THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS';
const ER_SRC = 'PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.';

/** A tree that cannot be written as ISO 9660 (a name too long, a path used twice …). */
export class IsoError extends Error {}

export interface IsoFile { path: string; data: Buffer }
export interface IsoOptions {
  /** Volume label (`config-2`): d-characters in the primary descriptor, UCS-2 in Joliet's. */
  volumeId: string;
  publisher?: string;
  /** Recording time of every record (default: now). */
  date?: Date;
}

interface Dir {
  name: string; parent?: Dir; dirs: Dir[]; files: FileNode[];
  iso: string; joliet: string;
  // Laid out:
  isoSector: number; isoSize: number; jolietSector: number; jolietSize: number;
  isoNumber: number; jolietNumber: number;
}
interface FileNode { name: string; data: Buffer; iso: string; joliet: string; sector: number }

/** The image of `files` (paths relative to the root, `/`-separated), as sector-aligned chunks in order. */
export function* isoChunks(files: IsoFile[], o: IsoOptions): Generator<Buffer> {
  const date = o.date ?? new Date();
  const root = tree(files);
  nameAll(root);
  // Directories in path-table order (by level, then parent, then identifier): per hierarchy.
  const isoDirs = breadthFirst(root, (d) => d.iso);
  const jolietDirs = breadthFirst(root, (d) => d.joliet);
  isoDirs.forEach((d, i) => { d.isoNumber = i + 1; });
  jolietDirs.forEach((d, i) => { d.jolietNumber = i + 1; });

  const isoPt = pathTableSize(isoDirs, (d) => idBytes(d.iso, false));
  const jolietPt = pathTableSize(jolietDirs, (d) => idBytes(d.joliet, true));
  let next = FIRST_FREE;
  const take = (bytes: number) => { const at = next; next += Math.ceil(bytes / SECTOR); return at; };
  const pt = { isoL: take(isoPt), isoM: take(isoPt), jolietL: take(jolietPt), jolietM: take(jolietPt) };
  for (const d of isoDirs) { d.isoSize = dirSize(d, false); d.isoSector = take(d.isoSize); }
  const ce = take(SECTOR);
  for (const d of jolietDirs) { d.jolietSize = dirSize(d, true); d.jolietSector = take(d.jolietSize); }
  const allFiles = isoDirs.flatMap((d) => sortedBy(d.files, (f) => f.iso));
  for (const f of allFiles) f.sector = f.data.length ? take(f.data.length) : 0;
  // genisoimage's default -pad: 150 sectors of zeros at the end, inside the volume, so that a
  // guest's read-ahead near the end of the drive does not read past it (I/O errors on a cdrom).
  const total = next + PAD_SECTORS;

  yield Buffer.alloc(16 * SECTOR);
  yield volumeDescriptor(1, o, root, total, isoPt, pt.isoL, pt.isoM, date);
  yield volumeDescriptor(2, o, root, total, jolietPt, pt.jolietL, pt.jolietM, date);
  const term = Buffer.alloc(SECTOR);
  term[0] = 255; term.write('CD001', 1, 'latin1'); term[6] = 1;
  yield term;
  yield pathTable(isoDirs, false, true); yield pathTable(isoDirs, false, false);
  yield pathTable(jolietDirs, true, true); yield pathTable(jolietDirs, true, false);
  for (const d of isoDirs) yield directory(d, false, date, ce);
  const er = Buffer.alloc(SECTOR);
  erEntry().copy(er);
  yield er;
  for (const d of jolietDirs) yield directory(d, true, date, ce);
  for (const f of allFiles) if (f.data.length) yield pad(f.data);
  yield Buffer.alloc(PAD_SECTORS * SECTOR);
}

/** The whole image in one buffer (config drives are tens of KiB). */
export function isoImage(files: IsoFile[], o: IsoOptions): Buffer {
  return Buffer.concat([...isoChunks(files, o)]);
}

// ---- the tree and its names

function tree(files: IsoFile[]): Dir {
  const root = newDir('');
  for (const f of files) {
    const parts = f.path.split('/').filter(Boolean);
    if (!parts.length) throw new IsoError(`empty path in the ISO tree: '${f.path}'`);
    if (parts.length > 7) throw new IsoError(`${f.path}: deeper than ISO 9660's 8 levels`);
    let d = root;
    for (const p of parts.slice(0, -1)) {
      if (d.files.some((x) => x.name === p)) throw new IsoError(`${f.path}: ${p} is a file`);
      let sub = d.dirs.find((x) => x.name === p);
      if (!sub) { sub = newDir(p, d); d.dirs.push(sub); }
      d = sub;
    }
    const name = parts[parts.length - 1]!;
    if (d.files.some((x) => x.name === name) || d.dirs.some((x) => x.name === name)) throw new IsoError(`${f.path}: in the ISO tree twice`);
    d.files.push({ name, data: f.data, iso: '', joliet: '', sector: 0 });
  }
  return root;
}

const newDir = (name: string, parent?: Dir): Dir => ({
  name, parent, dirs: [], files: [], iso: '', joliet: '', isoSector: 0, isoSize: 0, jolietSector: 0, jolietSize: 0, isoNumber: 0, jolietNumber: 0,
});

/**
 * Primary identifiers as genisoimage's `-l -allow-lowercase -allow-multidot`: up to 31
 * characters of [A-Za-z0-9._] (others become _), files `NAME.EXT;1` (a dot added when there is
 * none); Joliet ones are the names themselves (at most 64 UCS-2 characters, no version, as genisoimage).
 * Readers that know Rock Ridge take the NM name, which is always the real one.
 */
function nameAll(d: Dir): void {
  const used = new Set<string>();
  const unique = (base: string, suffix: string) => {
    let id = base.slice(0, 31 - suffix.length) + suffix;
    // A clash once mangled: a three-digit counter in the name's last places, as genisoimage does.
    for (let n = 0; used.has(id.toUpperCase()); n++) id = base.slice(0, 31 - suffix.length - 3) + String(n).padStart(3, '0') + suffix;
    used.add(id.toUpperCase());
    return id;
  };
  for (const s of d.dirs) {
    s.iso = unique(s.name.replace(/[^A-Za-z0-9_]/g, '_'), '');
    s.joliet = jolietName(s.name, '');
    nameAll(s);
  }
  for (const f of d.files) {
    const clean = f.name.replace(/[^A-Za-z0-9._]/g, '_');
    const dot = clean.lastIndexOf('.');
    f.iso = dot < 0 ? unique(clean, '.') + ';1' : unique(clean.slice(0, dot), clean.slice(dot)) + ';1';
    f.joliet = jolietName(f.name, '');
  }
  if (d.dirs.length + d.files.length > 0 && new Set([...d.dirs.map((x) => x.joliet), ...d.files.map((x) => x.joliet)]).size !== d.dirs.length + d.files.length) {
    throw new IsoError(`${pathOf(d)}: two names the same in Joliet's first 64 characters`);
  }
}

function jolietName(name: string, suffix: string): string {
  if (name.length > 64) throw new IsoError(`${name}: longer than Joliet's 64 characters`);
  if (/[*/:;?\\\u0000-\u001f]/.test(name)) throw new IsoError(`${name}: a character Joliet does not allow`);
  if ([...name].some((c) => c.codePointAt(0)! > 0xffff)) throw new IsoError(`${name}: outside UCS-2`);
  return name + suffix;
}

const pathOf = (d: Dir): string => (d.parent ? `${pathOf(d.parent)}${d.name}/` : '/');

function breadthFirst(root: Dir, id: (d: Dir) => string): Dir[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...sortedBy(out[i]!.dirs, id));
  return out;
}

/** ISO 9660 9.3's order (byte order of the identifiers, the shorter padded with spaces). */
function sortedBy<T>(xs: T[], id: (x: T) => string): T[] {
  const key = (x: T) => id(x).replace(/;1$/, '');
  return [...xs].sort((a, b) => {
    const ka = key(a); const kb = key(b); const n = Math.max(ka.length, kb.length);
    const pa = ka.padEnd(n, ' '); const pb = kb.padEnd(n, ' ');
    return pa < pb ? -1 : pa > pb ? 1 : 0;
  });
}

// ---- records

const idBytes = (id: string, joliet: boolean) => (joliet ? Buffer.from(id, 'utf16le').swap16() : Buffer.from(id, 'latin1'));

function recordLength(idLen: number, systemUse: number): number {
  const n = 33 + idLen + (idLen % 2 === 0 ? 1 : 0) + systemUse;
  return n + (n % 2);
}

/** The system use bytes of a primary record: Rock Ridge's entries. */
const rrLength = (name: string | undefined) => RR_FIXED + (name === undefined ? 0 : 5 + Buffer.byteLength(name));

function entriesOf(d: Dir, joliet: boolean) {
  const ids = (x: { iso: string; joliet: string }) => (joliet ? x.joliet : x.iso);
  const children = sortedBy<{ iso: string; joliet: string; name: string; dir?: Dir; file?: FileNode }>(
    [...d.dirs.map((x) => ({ iso: x.iso, joliet: x.joliet, name: x.name, dir: x })), ...d.files.map((x) => ({ iso: x.iso, joliet: x.joliet, name: x.name, file: x }))], ids);
  return children.map((c) => ({ ...c, id: idBytes(ids(c), joliet) }));
}

function dirSize(d: Dir, joliet: boolean): number {
  // '.' (the root's also carries SP and CE) and '..', then the children; no record crosses a sector.
  const dot = recordLength(1, joliet ? 0 : RR_FIXED + (d.parent ? 0 : 7 + 28));
  const dotdot = recordLength(1, joliet ? 0 : RR_FIXED);
  let size = dot + dotdot;
  for (const c of entriesOf(d, joliet)) {
    const len = recordLength(c.id.length, joliet ? 0 : rrLength(c.name));
    if (len > 255) throw new IsoError(`${pathOf(d)}${c.name}: name too long for a directory record`);
    if (Math.floor(size / SECTOR) !== Math.floor((size + len - 1) / SECTOR)) size = Math.ceil(size / SECTOR) * SECTOR;
    size += len;
  }
  return Math.ceil(size / SECTOR) * SECTOR;
}

function directory(d: Dir, joliet: boolean, date: Date, ceSector: number): Buffer {
  const size = joliet ? d.jolietSize : d.isoSize;
  const buf = Buffer.alloc(size);
  let at = 0;
  const put = (r: Buffer) => {
    if (Math.floor(at / SECTOR) !== Math.floor((at + r.length - 1) / SECTOR)) at = Math.ceil(at / SECTOR) * SECTOR;
    r.copy(buf, at);
    at += r.length;
  };
  const loc = (x: Dir) => (joliet ? [x.jolietSector, x.jolietSize] : [x.isoSector, x.isoSize]) as [number, number];
  const parent = d.parent ?? d;
  const dirRr = (x: Dir, name?: string) => (joliet ? [] : rockRidge(0o40555, 2 + x.dirs.length, date, name));
  const rootExtras = joliet || d.parent ? [] : [spEntry()];
  const rootCe = joliet || d.parent ? [] : [ceEntry(ceSector, erEntry().length)];
  put(record(Buffer.from([0]), ...loc(d), true, date, [...rootExtras, ...dirRr(d), ...rootCe]));
  put(record(Buffer.from([1]), ...loc(parent), true, date, dirRr(parent)));
  for (const c of entriesOf(d, joliet)) {
    if (c.dir) put(record(c.id, ...loc(c.dir), true, date, dirRr(c.dir, c.name)));
    else put(record(c.id, c.file!.sector, c.file!.data.length, false, date, joliet ? [] : rockRidge(0o100444, 1, date, c.name)));
  }
  return buf;
}

function record(id: Buffer, sector: number, length: number, isDir: boolean, date: Date, systemUse: Buffer[]): Buffer {
  const su = Buffer.concat(systemUse);
  const r = Buffer.alloc(recordLength(id.length, su.length));
  r[0] = r.length;
  both32(r, 2, sector);
  both32(r, 10, length);
  recDate(date).copy(r, 18);
  r[25] = isDir ? 2 : 0;
  both16(r, 28, 1);
  r[32] = id.length;
  id.copy(r, 33);
  su.copy(r, 33 + id.length + (id.length % 2 === 0 ? 1 : 0));
  return r;
}

// ---- Rock Ridge / SUSP entries

function entry(sig: string, body: Buffer): Buffer {
  const e = Buffer.alloc(4 + body.length);
  e.write(sig, 0, 'latin1'); e[2] = e.length; e[3] = 1;
  body.copy(e, 4);
  return e;
}

const spEntry = () => entry('SP', Buffer.from([0xbe, 0xef, 0]));

function ceEntry(sector: number, length: number): Buffer {
  const b = Buffer.alloc(24);
  both32(b, 0, sector); both32(b, 8, 0); both32(b, 16, length);
  return entry('CE', b);
}

function erEntry(): Buffer {
  const [id, desc, src] = [ER_ID, ER_DESC, ER_SRC].map((s) => Buffer.from(s, 'latin1')) as [Buffer, Buffer, Buffer];
  return entry('ER', Buffer.concat([Buffer.from([id.length, desc.length, src.length, 1]), id, desc, src]));
}

/** RR (which entries follow), PX (mode, links, uid 0, gid 0), TF (modify, access, attributes), NM. */
function rockRidge(mode: number, links: number, date: Date, name?: string): Buffer[] {
  const px = Buffer.alloc(32);
  both32(px, 0, mode); both32(px, 8, links); both32(px, 16, 0); both32(px, 24, 0);
  const d = recDate(date);
  const tf = Buffer.concat([Buffer.from([0x0e]), d, d, d]);
  const out = [entry('RR', Buffer.from([0x01 | 0x80 | (name === undefined ? 0 : 0x08)])), entry('PX', px), entry('TF', tf)];
  if (name !== undefined) out.push(entry('NM', Buffer.concat([Buffer.from([0]), Buffer.from(name)])));
  return out;
}

// ---- descriptors and path tables

function volumeDescriptor(type: 1 | 2, o: IsoOptions, root: Dir, total: number, ptSize: number, ptL: number, ptM: number, date: Date): Buffer {
  const joliet = type === 2;
  const b = Buffer.alloc(SECTOR);
  b[0] = type; b.write('CD001', 1, 'latin1'); b[6] = 1;
  const text = (at: number, len: number, s: string) => {
    if (joliet) {
      const u = Buffer.from(s.padEnd(len / 2, ' ').slice(0, len / 2), 'utf16le').swap16();
      u.copy(b, at);
    } else b.write(s.padEnd(len, ' ').slice(0, len), at, 'latin1');
  };
  text(8, 32, 'LINUX');
  text(40, 32, o.volumeId);
  both32(b, 80, total);
  if (joliet) b.write('%/E', 88, 'latin1'); // UCS-2 level 3
  both16(b, 120, 1); both16(b, 124, 1); both16(b, 128, SECTOR);
  both32(b, 132, ptSize);
  b.writeUInt32LE(ptL, 140); b.writeUInt32BE(ptM, 148);
  const [sector, size] = joliet ? [root.jolietSector, root.jolietSize] : [root.isoSector, root.isoSize];
  record(Buffer.from([0]), sector, size, true, date, []).copy(b, 156);
  text(190, 128, ''); text(318, 128, o.publisher ?? ''); text(446, 128, ''); text(574, 128, 'STRATUS ISO 9660 WRITER');
  text(702, 37, ''); text(739, 37, ''); text(776, 37, '');
  volDate(date).copy(b, 813); volDate(date).copy(b, 830); volDate().copy(b, 847); volDate(date).copy(b, 864);
  b[881] = 1;
  return b;
}

function pathTableSize(dirs: Dir[], id: (d: Dir) => Buffer): number {
  return dirs.reduce((n, d) => { const l = d.parent ? id(d).length : 1; return n + 8 + l + (l % 2); }, 0);
}

function pathTable(dirs: Dir[], joliet: boolean, little: boolean): Buffer {
  const parts: Buffer[] = [];
  for (const d of dirs) {
    const id = d.parent ? idBytes(joliet ? d.joliet : d.iso, joliet) : Buffer.from([0]);
    const e = Buffer.alloc(8 + id.length + (id.length % 2));
    e[0] = id.length;
    const sector = joliet ? d.jolietSector : d.isoSector;
    const parent = d.parent ? (joliet ? d.parent.jolietNumber : d.parent.isoNumber) : 1;
    if (little) { e.writeUInt32LE(sector, 2); e.writeUInt16LE(parent, 6); } else { e.writeUInt32BE(sector, 2); e.writeUInt16BE(parent, 6); }
    id.copy(e, 8);
    parts.push(e);
  }
  return pad(Buffer.concat(parts));
}

// ---- encodings

function both32(b: Buffer, at: number, v: number): void { b.writeUInt32LE(v, at); b.writeUInt32BE(v, at + 4); }
function both16(b: Buffer, at: number, v: number): void { b.writeUInt16LE(v, at); b.writeUInt16BE(v, at + 2); }
const pad = (b: Buffer) => (b.length % SECTOR ? Buffer.concat([b, Buffer.alloc(SECTOR - (b.length % SECTOR))]) : b);

/** 9.1.5: seven bytes, UTC. */
const recDate = (d: Date) => Buffer.from([d.getUTCFullYear() - 1900, d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), 0]);

/** 8.4.26.1: sixteen digits and the GMT offset; none (zeros) without a date. */
function volDate(d?: Date): Buffer {
  const b = Buffer.alloc(17);
  const two = (n: number) => String(n).padStart(2, '0');
  b.write(d ? `${d.getUTCFullYear()}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}00` : '0000000000000000', 0, 'latin1');
  return b;
}
