/**
 * On-disk cache of reference-model log-probs (the RLHF Book code's "reference logprob caching" TODO; TRL
 * keeps them in memory only, its #3985). The reference model is frozen, so its log-probs of a
 * dataset depend only on (reference weights, data, tokenization settings): computed once, they are
 * reused by every later run with the same key, which saves a forward pass of a second model per
 * step.
 *
 * Files live in `$DA_CACHE_DIR` (default `~/.cache/direct-alignment-ts/ref_logps`), one JSON file
 * per key, written atomically. A file is trusted only when it checks out: its `source` checksum
 * (of the data files' and tokenizer files' contents) matches the run's, it holds `count` entries of
 * `groups` finite numbers each, and its `checksum` of those values matches. Anything else (a file
 * edited by hand, truncated, or from other data) is reported and recomputed, never trained on.
 *
 * @module
 */
import type { World } from "../runtime/world.ts";

/**
 * Path joining without `node:path`: the browser bundle imports this module (for the in-memory
 * cache), and Deno accepts "/" on every platform.
 */
const join = (...parts: string[]) => parts.join("/");

/** Cached values of one example: e.g. [chosen, rejected] summed log-probs. */
export type CachedValues = number[];

/** The cache folder. */
export function cacheDir(): string {
  const base = Deno.env.get("DA_CACHE_DIR") ??
    join(Deno.env.get("HOME") ?? ".", ".cache", "direct-alignment-ts");
  return join(base, "ref_logps");
}

/**
 * A stable hex digest of any JSON-able key.
 *
 * @param key What the cached values depend on.
 * @returns SHA-256 hex of its canonical JSON.
 */
export function digest(key: unknown): Promise<string> {
  return sha256Hex(new TextEncoder().encode(canonical(key)));
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a < b ? -1 : 1);
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(",")}}`;
  }
  return JSON.stringify(v ?? null);
}

/**
 * Size and modification time of every file in `dir` (or of the file itself): a cheap fingerprint
 * of model weights or data that changes when they do.
 *
 * @param path A file or folder.
 * @returns Sorted `[name, size, mtime]` rows.
 */
export async function fingerprint(path: string): Promise<[string, number, number][]> {
  const stat = await Deno.stat(path);
  if (stat.isFile) return [[path, stat.size, stat.mtime?.getTime() ?? 0]];
  const rows: [string, number, number][] = [];
  for await (const entry of Deno.readDir(path)) {
    if (!entry.isFile) continue;
    const s = await Deno.stat(join(path, entry.name));
    rows.push([entry.name, s.size, s.mtime?.getTime() ?? 0]);
  }
  return rows.sort(([a], [b]) => a < b ? -1 : 1);
}

/**
 * SHA-256 of the contents of `paths` (files, or every file directly in a folder whose name
 * matches `only`), in order: what the cached values came from.
 *
 * @param paths Files or folders.
 * @param only For folders: which file names count.
 * @returns Hex digest.
 */
export async function contentChecksum(paths: string[], only = /./): Promise<string> {
  const parts: string[] = [];
  for (const path of paths) {
    const files = (await Deno.stat(path)).isFile ? [path] : [];
    if (files.length === 0) {
      for await (const entry of Deno.readDir(path)) {
        if (entry.isFile && only.test(entry.name)) files.push(join(path, entry.name));
      }
      files.sort();
    }
    for (const file of files) {
      parts.push(await sha256Hex(await Deno.readFile(file)));
    }
  }
  return await digest(parts);
}

/** The file layout. */
interface CacheFile {
  format: typeof FORMAT;
  /** {@linkcode contentChecksum} of the data and tokenizer the values came from. */
  source: string;
  /** Values per example. */
  groups: number;
  /** Number of examples. */
  count: number;
  /** {@linkcode digest} of `values`. */
  checksum: string;
  values: Record<string, CachedValues>;
}

const FORMAT = "ref_logps/1";

/** Why a cache file cannot be trusted, or null when it checks out. */
async function problem(file: Partial<CacheFile>, source: string): Promise<string | null> {
  if (file.format !== FORMAT) return `format is ${JSON.stringify(file.format)}, not "${FORMAT}"`;
  if (file.source !== source) return "it was computed from other data or another tokenizer";
  const values = file.values ?? {};
  const entries = Object.entries(values);
  if (entries.length !== file.count) {
    return `it holds ${entries.length} entries but says ${file.count}`;
  }
  for (const [key, v] of entries) {
    if (!Array.isArray(v) || v.length !== file.groups) {
      return `entry ${key} has ${Array.isArray(v) ? v.length : 0} values, not ${file.groups}`;
    }
    if (!v.every((x) => typeof x === "number" && Number.isFinite(x))) {
      return `entry ${key} holds a value that is not a finite number: ${JSON.stringify(v)}`;
    }
  }
  if (file.checksum !== await digest(values)) return "its values do not match their checksum";
  return null;
}

/** Reference log-probs by example key, loaded from and saved to one file. */
export class RefLogpCache {
  #values: Map<string, CachedValues>;
  #dirty = false;

  private constructor(
    readonly path: string | null,
    readonly source: string,
    values: Map<string, CachedValues>,
  ) {
    this.#values = values;
  }

  /**
   * Opens the cache file for `key` (empty when absent; reported and empty when it does not check
   * out against `source`).
   *
   * @param key What the values depend on (hashed into the file name).
   * @param source {@linkcode contentChecksum} of the data and tokenizer files.
   * @returns The cache.
   */
  static async open(key: unknown, source: string): Promise<RefLogpCache> {
    const path = join(cacheDir(), `${await digest(key)}.json`);
    let values = new Map<string, CachedValues>();
    try {
      const file = JSON.parse(await Deno.readTextFile(path)) as Partial<CacheFile>;
      const why = await problem(file, source);
      if (why) {
        console.error(`Warning: ignoring reference cache ${path}: ${why}; recomputing it`);
      } else values = new Map(Object.entries(file.values!));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        console.error(
          `Warning: ignoring unreadable reference cache ${path}: ${
            (error as Error).message
          }; recomputing it`,
        );
      }
    }
    return new RefLogpCache(path, source, values);
  }

  /** A cache in memory only (reference log-probs recomputed by every run). */
  static memory(): RefLogpCache {
    return new RefLogpCache(null, "", new Map());
  }

  /** Number of cached examples. */
  get size(): number {
    return this.#values.size;
  }

  /** The values of example `key`, if cached. */
  get(key: string): CachedValues | undefined {
    return this.#values.get(key);
  }

  /** Stores the values of example `key`. */
  set(key: string, values: CachedValues): void {
    if (!values.every(Number.isFinite)) {
      throw new Error(`Reference log-probs of example ${key} are not finite: ${values}`);
    }
    this.#values.set(key, values);
    this.#dirty = true;
  }

  /**
   * Completes the cache of a data-parallel run: each rank computed the log-probs of its shard,
   * and after this every rank holds all of them (rank 0 then saves one complete file).
   *
   * @param world The ranks (a collective: every rank calls it).
   */
  gather(world: Pick<World, "allGather">): void {
    const mine = new TextEncoder().encode(JSON.stringify([...this.#values]));
    for (const part of world.allGather(mine)) {
      for (const [key, values] of JSON.parse(new TextDecoder().decode(part))) {
        if (!this.#values.has(key)) this.set(key, values);
      }
    }
  }

  /** Writes the cache (atomically) if anything was added and it lives on disk. */
  async save(): Promise<void> {
    if (!this.#dirty || this.path === null) return;
    await Deno.mkdir(cacheDir(), { recursive: true });
    const values = Object.fromEntries(this.#values);
    const file: CacheFile = {
      format: FORMAT,
      source: this.source,
      groups: this.#values.values().next().value?.length ?? 0,
      count: this.#values.size,
      checksum: await digest(values),
      values,
    };
    const tmp = `${this.path}.${Deno.pid}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify(file));
    await Deno.rename(tmp, this.path);
    this.#dirty = false;
  }
}
