/**
 * Finds and downloads the files of one split of a Hub dataset, in the order `datasets` would:
 * 1. parquet files of the main branch for that split (and config folder, if given);
 * 2. the Hub's parquet conversion (`refs/convert/parquet`, `<config>/<split>/*.parquet`), which
 *    every public dataset has, e.g. `Anthropic/hh-rlhf`;
 * 3. JSON Lines / JSON files (optionally gzipped) of the main branch for that split.
 *
 * @module
 */

import { hubDownloadMatching, type HubOptions, hubSnapshot, repoCacheDir } from "../model/hub.ts";

const PARQUET_REVISION = "refs/convert/parquet";

/** Whether a repository path belongs to `split` (and to `config`, when one is given). */
export function matchesSplit(path: string, split: string, config?: string): boolean {
  const parts = path.split("/");
  const base = parts.at(-1)!.replace(/\.(parquet|jsonl|json)(\.gz)?$/, "");
  const dirs = parts.slice(0, -1);
  if (config && config !== "default" && !dirs.includes(config)) return false;
  return dirs.includes(split) || dirs.includes(`partial-${split}`) || base === split ||
    base.startsWith(`${split}-`) ||
    base.startsWith(`${split}_`) || base.endsWith(`-${split}`);
}

/**
 * Downloads (or finds in the cache) the data files of one split of a Hub dataset.
 *
 * @param repoId `org/name`.
 * @param options Split, optional config and Hub options.
 * @returns Local paths of the split's files.
 */
export async function hubDatasetFiles(
  repoId: string,
  options: HubOptions & { split: string; config?: string },
): Promise<string[]> {
  const { split, config } = options;
  const hub: HubOptions = { ...options, repoType: "dataset" };
  const main = await hubSnapshot(repoId, hub);
  const isData = (re: RegExp) => (p: string) => re.test(p) && matchesSplit(p, split, config);
  const parquet = isData(/\.parquet$/);
  if (main.files.some(parquet)) {
    return (await hubDownloadMatching(repoId, parquet, { ...hub, revision: main.commit })).paths;
  }
  let converted: string[] = [];
  try {
    const inConfig = (p: string) => p.startsWith(`${config ?? "default"}/`) && parquet(p);
    converted =
      (await hubDownloadMatching(repoId, inConfig, { ...hub, revision: PARQUET_REVISION }))
        .paths;
  } catch (e) {
    if (!(e instanceof Error) || !/not in the cache|HTTP 404/.test(e.message)) throw e;
  }
  if (converted.length) return converted;
  const json = isData(/\.jsonl?(\.gz)?$/);
  if (main.files.some(json)) {
    return (await hubDownloadMatching(repoId, json, { ...hub, revision: main.commit })).paths;
  }
  throw new Error(
    `No files for split "${split}"${
      config ? ` of config "${config}"` : ""
    } in dataset "${repoId}": ` +
      `found ${main.files.slice(0, 20).join(", ") || "no files"}; cache: ${
        repoCacheDir(repoId, hub)
      }`,
  );
}
