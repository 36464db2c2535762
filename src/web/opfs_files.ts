/**
 * Large ArrayBuffers of a browser client's IndexedDB values (the samples, a big model's state)
 * kept as files in the origin private file system (OPFS) where the browser has it: IndexedDB
 * then holds `{ opfsFile, byteLength }` in their place (idb_store.ts).
 *
 * A file is written whole under a fresh name before the IndexedDB value that names it is put
 * (createWritable's changes appear only at close), and the files the old value named are deleted
 * after the put commits; so a tab closed at any point leaves every kept value's files whole, at
 * worst with files no value names, which the next open deletes. One folder per client of a
 * server, `fedslr-<encoded key>`, deleted with the client.
 */

/** ArrayBuffers of at least this many bytes go to OPFS. */
export const OPFS_MIN_BYTES = 1 << 20;

/** What IndexedDB holds in place of a large ArrayBuffer. */
interface FileRef {
  opfsFile: string;
  byteLength: number;
}

const isFileRef = (v: unknown): v is FileRef =>
  typeof v === 'object' && v !== null && typeof (v as FileRef).opfsFile === 'string';

/** Plain objects and arrays are walked; ArrayBuffers and other values are leaves. */
const isWalked = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' &&
  v !== null &&
  !(v instanceof ArrayBuffer) &&
  (Array.isArray(v) || Object.getPrototypeOf(v) === Object.prototype);

async function mapLeaves(v: unknown, f: (leaf: unknown) => Promise<unknown>): Promise<unknown> {
  if (isFileRef(v) || !isWalked(v)) return f(v);
  if (Array.isArray(v)) return Promise.all(v.map((x) => mapLeaves(x, f)));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = await mapLeaves(x, f);
  return out;
}

/** The OPFS files a stored value names. */
export function fileRefs(v: unknown): string[] {
  if (isFileRef(v)) return [v.opfsFile];
  if (!isWalked(v)) return [];
  return Object.values(v).flatMap(fileRefs);
}

export class OpfsFiles {
  private constructor(private readonly dir: FileSystemDirectoryHandle) {}

  /** The folder of the client `key`; undefined where the browser has no OPFS. */
  static async open(key: string): Promise<OpfsFiles | undefined> {
    try {
      const root = await navigator.storage.getDirectory();
      const name = `fedslr-${encodeURIComponent(key)}`;
      return new OpfsFiles(await root.getDirectoryHandle(name, { create: true }));
    } catch {
      return undefined;
    }
  }

  /** `value` with each ArrayBuffer of OPFS_MIN_BYTES or more written to a new file. */
  store(value: unknown, item: string): Promise<unknown> {
    return mapLeaves(value, async (leaf) => {
      if (!(leaf instanceof ArrayBuffer) || leaf.byteLength < OPFS_MIN_BYTES) return leaf;
      const name = `${item}-${crypto.randomUUID()}.bin`;
      const writable = await (
        await this.dir.getFileHandle(name, { create: true })
      ).createWritable();
      try {
        await writable.write(leaf);
        await writable.close();
      } catch (err) {
        await writable.abort().catch(() => undefined);
        await this.remove([name]);
        throw err;
      }
      return { opfsFile: name, byteLength: leaf.byteLength } satisfies FileRef;
    });
  }

  /** `value` with each file it names read back as an ArrayBuffer. */
  load(value: unknown, where: string): Promise<unknown> {
    return mapLeaves(value, async (leaf) => {
      if (!isFileRef(leaf)) return leaf;
      const bytes = await (
        await (await this.dir.getFileHandle(leaf.opfsFile)).getFile()
      ).arrayBuffer();
      if (bytes.byteLength !== leaf.byteLength)
        throw new Error(
          `${where}: OPFS file ${leaf.opfsFile} has ${bytes.byteLength} bytes, not ${leaf.byteLength}`,
        );
      return bytes;
    });
  }

  async remove(names: readonly string[]): Promise<void> {
    for (const name of names) await this.dir.removeEntry(name).catch(() => undefined);
  }

  /** Deletes the files no kept value names (left by a tab closed mid-write). */
  async sweep(kept: ReadonlySet<string>): Promise<void> {
    const names: string[] = [];
    for await (const name of (this.dir as unknown as { keys(): AsyncIterable<string> }).keys())
      if (!kept.has(name)) names.push(name);
    await this.remove(names);
  }

  /** Deletes the client's folder. */
  async removeAll(key: string): Promise<void> {
    const root = await navigator.storage.getDirectory();
    await root
      .removeEntry(`fedslr-${encodeURIComponent(key)}`, { recursive: true })
      .catch(() => undefined);
  }
}
