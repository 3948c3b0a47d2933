/**
 * On-disk cache of reference-model log-probs (the seed's "reference logprob caching" TODO; TRL
 * keeps them in memory only, its #3985). The reference model is frozen, so its log-probs of a
 * dataset depend only on (reference weights, data, tokenization settings): computed once, they are
 * reused by every later run with the same key, which saves a forward pass of a second model per
 * step.
 *
 * Files live in `$DA_CACHE_DIR` (default `~/.cache/direct-alignment-ts/ref_logps`), one JSON file
 * per key, written atomically.
 *
 * @module
 */
import { join } from "node:path";

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
export async function digest(key: unknown): Promise<string> {
  const bytes = new TextEncoder().encode(canonical(key));
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

/** Reference log-probs by example key, loaded from and saved to one file. */
export class RefLogpCache {
  #values: Map<string, CachedValues>;
  #dirty = false;

  private constructor(readonly path: string | null, values: Map<string, CachedValues>) {
    this.#values = values;
  }

  /**
   * Opens the cache file for `key` (empty when absent).
   *
   * @param key What the values depend on (hashed).
   * @returns The cache.
   */
  static async open(key: unknown): Promise<RefLogpCache> {
    const path = join(cacheDir(), `${await digest(key)}.json`);
    let values = new Map<string, CachedValues>();
    try {
      const parsed = JSON.parse(await Deno.readTextFile(path)) as Record<string, CachedValues>;
      values = new Map(Object.entries(parsed));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        console.error(`Ignoring unreadable reference cache ${path}: ${(error as Error).message}`);
      }
    }
    return new RefLogpCache(path, values);
  }

  /** A cache in memory only (reference log-probs recomputed by every run). */
  static memory(): RefLogpCache {
    return new RefLogpCache(null, new Map());
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

  /** Writes the cache (atomically) if anything was added and it lives on disk. */
  async save(): Promise<void> {
    if (!this.#dirty || this.path === null) return;
    await Deno.mkdir(cacheDir(), { recursive: true });
    const tmp = `${this.path}.${Deno.pid}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify(Object.fromEntries(this.#values)));
    await Deno.rename(tmp, this.path);
    this.#dirty = false;
  }
}
