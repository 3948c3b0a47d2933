/**
 * Hugging Face Hub downloads into the standard HF cache, shared with Python's `huggingface_hub`:
 * `$HF_HUB_CACHE` (else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`) holds
 * `models--org--name/` and `datasets--org--name/`, each with `refs/<revision>` (a commit hash)
 * and `snapshots/<commit>/<path>`. Files written here are plain files, not symlinks to `blobs/`,
 * which `huggingface_hub` also reads. `HF_TOKEN` is sent when set, `HF_ENDPOINT` overrides the
 * host and `HF_HUB_OFFLINE=1` never touches the network. When the Hub cannot be reached, the
 * cached snapshot is used; with nothing cached the error names the repository and the cache path.
 *
 * @module
 */

/** Options shared by the Hub helpers. */
export interface HubOptions {
  /** Kind of repository. @default "model" */
  repoType?: "model" | "dataset";
  /** Branch, tag or commit. @default "main" */
  revision?: string;
  /** Access token. @default Deno.env.get("HF_TOKEN") */
  token?: string;
  /** Cache root. @default hubCacheDir() */
  cacheDir?: string;
  /** Use only the cache. @default Deno.env.get("HF_HUB_OFFLINE") === "1" */
  offline?: boolean;
  /** The fetch to use (tests pass a fake one). @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** A resolved snapshot: its commit, its folder in the cache and the files in the repository. */
export interface HubSnapshot {
  /** Commit hash the revision resolved to. */
  commit: string;
  /** `<cache>/<repo folder>/snapshots/<commit>`. */
  dir: string;
  /** Every file path of the repository at that commit (from the Hub, or the cached listing). */
  files: string[];
}

const env = (name: string): string | undefined => {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // No --allow-env: behave as if unset.
  }
};

/**
 * The root of the HF cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
 * `~/.cache/huggingface/hub`.
 *
 * @returns The absolute cache folder (it may not exist yet).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * ok(hubCacheDir().length > 0);
 * ```
 */
export function hubCacheDir(): string {
  const hubCache = env("HF_HUB_CACHE");
  if (hubCache) return hubCache;
  const home = env("HF_HOME") ??
    `${env("XDG_CACHE_HOME") ?? `${env("HOME") ?? "."}/.cache`}/huggingface`;
  return `${home}/hub`;
}

/**
 * The cache folder of one repository, e.g. `<cache>/datasets--org--name`.
 *
 * @param repoId `org/name`.
 * @param options Repository type and cache root.
 * @returns The folder path (it may not exist yet).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(repoCacheDir("a/b", { repoType: "dataset", cacheDir: "/c" }), "/c/datasets--a--b");
 * ```
 */
export function repoCacheDir(repoId: string, options: HubOptions = {}): string {
  const kind = options.repoType === "dataset" ? "datasets" : "models";
  return `${options.cacheDir ?? hubCacheDir()}/${kind}--${repoId.replaceAll("/", "--")}`;
}

/**
 * Whether a string looks like a Hub repository id (`name` or `org/name`) rather than a path.
 *
 * @param value The string to test.
 * @returns True for ids such as `Qwen/Qwen2.5-0.5B`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(isHubId("argilla/ultrafeedback-binarized-preferences-cleaned"), true);
 * equal(isHubId("./data/train.jsonl"), false);
 * ```
 */
export function isHubId(value: string): boolean {
  return /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/.test(value) && !/\.(jsonl?|parquet)$/.test(value) &&
    !value.startsWith(".");
}

const endpoint = () => (env("HF_ENDPOINT") ?? "https://huggingface.co").replace(/\/$/, "");
const repoUrlPart = (repoId: string, type: HubOptions["repoType"]) =>
  type === "dataset" ? `datasets/${repoId}` : repoId;

function headers(options: HubOptions): HeadersInit {
  const token = options.token ?? env("HF_TOKEN") ?? env("HUGGING_FACE_HUB_TOKEN");
  return token ? { authorization: `Bearer ${token}` } : {};
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** The cached snapshot of a revision, or null when the revision was never resolved here. */
async function cachedSnapshot(repoId: string, options: HubOptions): Promise<HubSnapshot | null> {
  const root = repoCacheDir(repoId, options);
  const revision = options.revision ?? "main";
  let commit = revision;
  if (!/^[0-9a-f]{40}$/.test(revision)) {
    try {
      commit = (await Deno.readTextFile(`${root}/refs/${revision}`)).trim();
    } catch {
      return null;
    }
  }
  const dir = `${root}/snapshots/${commit}`;
  if (!(await exists(dir))) return null;
  let files: string[];
  try {
    files = JSON.parse(await Deno.readTextFile(`${root}/listings/${commit}.json`));
  } catch {
    files = await walk(dir, ""); // A cache written by huggingface_hub has no listing.
  }
  return { commit, dir, files };
}

async function walk(root: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(`${root}/${prefix}`)) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) { for (const file of await walk(root, path)) out.push(file); }
    else out.push(path);
  }
  return out.sort();
}

function offlineError(repoId: string, options: HubOptions, why: string): Error {
  const kind = options.repoType === "dataset" ? "Dataset" : "Model";
  const revision = options.revision ?? "main";
  return new Error(
    `${kind} "${repoId}" (revision ${revision}) is not in the cache and ${why}: ` +
      `looked in ${repoCacheDir(repoId, options)}; download it on a machine with network access ` +
      `into that folder (same HF cache layout) or set HF_HOME / HF_HUB_CACHE to where it is`,
  );
}

/**
 * Resolves a revision to a commit and lists the repository's files, online when possible and
 * from the cache otherwise. Nothing is downloaded besides the listing.
 *
 * @param repoId `org/name`.
 * @param options Hub options.
 * @returns The snapshot (commit, cache folder, files).
 *
 * @example
 * ```ts
 * import { rejects } from "node:assert/strict";
 * await rejects(() => hubSnapshot("no/such-repo", { offline: true, cacheDir: "/nonexistent" }));
 * ```
 */
export async function hubSnapshot(repoId: string, options: HubOptions = {}): Promise<HubSnapshot> {
  const offline = options.offline ?? env("HF_HUB_OFFLINE") === "1";
  if (offline) {
    const cached = await cachedSnapshot(repoId, options);
    if (!cached) throw offlineError(repoId, options, "HF_HUB_OFFLINE is set");
    return cached;
  }
  const revision = options.revision ?? "main";
  const kind = options.repoType === "dataset" ? "datasets" : "models";
  const url = `${endpoint()}/api/${kind}/${repoId}/revision/${encodeURIComponent(revision)}`;
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(url, { headers: headers(options) });
  } catch (e) {
    const cached = await cachedSnapshot(repoId, options);
    if (cached) return cached;
    throw offlineError(repoId, options, `the Hub is unreachable (${(e as Error).message})`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    const hint = response.status === 401 || response.status === 403
      ? "; set HF_TOKEN if the repository is gated or private"
      : "";
    throw new Error(`Hub request failed with HTTP ${response.status}: ${url}${hint}`);
  }
  const info = await response.json() as { sha: string; siblings?: { rfilename: string }[] };
  const files = (info.siblings ?? []).map((s) => s.rfilename).sort();
  const root = repoCacheDir(repoId, options);
  const dir = `${root}/snapshots/${info.sha}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.mkdir(`${root}/listings`, { recursive: true });
  await Deno.writeTextFile(`${root}/listings/${info.sha}.json`, JSON.stringify(files));
  if (info.sha !== revision) {
    const refPath = `${root}/refs/${revision}`;
    await Deno.mkdir(refPath.slice(0, refPath.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(refPath, info.sha);
  }
  return { commit: info.sha, dir, files };
}

/**
 * Downloads one file of a snapshot into the cache (or finds it there) and returns its path.
 *
 * @param repoId `org/name`.
 * @param filename Path inside the repository, e.g. `data/train-00000-of-00001.parquet`.
 * @param options Hub options; pass `revision` as the snapshot's commit to pin it.
 * @returns The local path of the file.
 *
 * @example
 * ```ts
 * import { rejects } from "node:assert/strict";
 * await rejects(() => hubDownload("no/such-repo", "config.json", { offline: true, cacheDir: "/x" }));
 * ```
 */
export async function hubDownload(
  repoId: string,
  filename: string,
  options: HubOptions = {},
): Promise<string> {
  const snapshot = await hubSnapshot(repoId, options);
  return await downloadInto(repoId, snapshot, filename, options);
}

/**
 * Downloads every file of a repository whose path passes `filter` (e.g. the tokenizer files, or
 * a dataset split's parquet shards) and returns the snapshot folder and the chosen paths.
 *
 * @param repoId `org/name`.
 * @param filter Which repository paths to fetch.
 * @param options Hub options.
 * @returns The snapshot and the local paths of the chosen files, in repository order.
 *
 * @example
 * ```ts
 * import { rejects } from "node:assert/strict";
 * await rejects(() => hubDownloadMatching("no/such", () => true, { offline: true, cacheDir: "/x" }));
 * ```
 */
export async function hubDownloadMatching(
  repoId: string,
  filter: (path: string) => boolean,
  options: HubOptions = {},
): Promise<{ snapshot: HubSnapshot; paths: string[] }> {
  const snapshot = await hubSnapshot(repoId, options);
  const paths: string[] = [];
  for (const file of snapshot.files.filter(filter)) {
    paths.push(await downloadInto(repoId, snapshot, file, options));
  }
  return { snapshot, paths };
}

async function downloadInto(
  repoId: string,
  snapshot: HubSnapshot,
  filename: string,
  options: HubOptions,
): Promise<string> {
  const path = `${snapshot.dir}/${filename}`;
  if (await exists(path)) return path;
  if (options.offline ?? env("HF_HUB_OFFLINE") === "1") {
    throw offlineError(repoId, options, `file "${filename}" was never downloaded`);
  }
  const url = `${endpoint()}/${repoUrlPart(repoId, options.repoType)}/resolve/${snapshot.commit}/` +
    filename.split("/").map(encodeURIComponent).join("/");
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(url, { headers: headers(options) });
  } catch (e) {
    throw offlineError(repoId, options, `the Hub is unreachable (${(e as Error).message})`);
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new Error(`Hub download failed with HTTP ${response.status}: ${url}`);
  }
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  // Write to a temporary name first so an interrupted download never looks cached.
  const partial = `${path}.incomplete`;
  await Deno.writeFile(partial, response.body);
  await Deno.rename(partial, path);
  return path;
}
