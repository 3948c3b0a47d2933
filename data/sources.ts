/**
 * Dataset sources: local `.jsonl`, `.json` and `.parquet` files (also `.jsonl.gz` / `.json.gz`),
 * and Hub dataset ids (`org/name`) whose files are downloaded into the HF cache.
 *
 * @module
 */

import { parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { type HubOptions, isHubId } from "../model/hub.ts";
import { hubDatasetFiles } from "./_hub_dataset.ts";
import type { Row } from "./types.ts";

/** Options of {@link readRows}. */
export interface ReadOptions extends HubOptions {
  /** Split of a Hub dataset. @default "train" */
  split?: string;
  /** Config (subset) of a Hub dataset. @default "default" */
  config?: string;
  /** Read at most this many rows (the first ones). @default Infinity */
  limit?: number;
}

/** Rows read from a source, with the columns found and where they came from. */
export interface RowSource {
  rows: Row[];
  /** Union of the column names over all rows, in first-seen order. */
  columns: string[];
  /** The files read, for messages. */
  files: string[];
}

/**
 * Reads the rows of a local file or a Hub dataset.
 *
 * @param source A path (`.jsonl`, `.json`, `.parquet`, optionally `.gz` for JSON) or a Hub id.
 * @param options Split, config, row limit and Hub options.
 * @returns The rows, their columns and the files they came from.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const { rows } = await readRows("data/samples/hh_sample.jsonl", { limit: 2 });
 * equal(rows.length, 2);
 * ```
 */
export async function readRows(source: string, options: ReadOptions = {}): Promise<RowSource> {
  const limit = options.limit ?? Infinity;
  let files: string[];
  if (await isFile(source)) files = [source];
  else if (isHubId(source)) {
    files = await hubDatasetFiles(source, {
      ...options,
      split: options.split ?? "train",
      config: options.config,
    });
  } else throw new Error(`Dataset not found: ${source} is neither a file nor a Hub dataset id`);
  const rows: Row[] = [];
  for (const file of files) {
    if (rows.length >= limit) break;
    for (const row of await readFile(file, limit - rows.length)) rows.push(row);
  }
  return rowSource(rows, files);
}

/**
 * The rows of a `.jsonl` or `.json` file's text, parsed as {@linkcode readFile} parses the file
 * (the same errors, naming `path`): for text that did not come from the file system, such as an
 * upload in the browser.
 *
 * @param text The file's contents.
 * @param path The file's name (its extension picks the format; it names the file in errors).
 * @returns The rows, their columns and the file.
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const { rows, columns } = rowsFromText('{"chosen":"a","rejected":"b"}\n', "pairs.jsonl");
 * equal(rows.length, 1);
 * equal(columns.join(), "chosen,rejected");
 * ```
 */
export function rowsFromText(text: string, path: string): RowSource {
  return rowSource(parseText(text, path, Infinity), [path]);
}

function rowSource(rows: Row[], files: string[]): RowSource {
  const columns = new Set<string>();
  for (const row of rows) for (const key of Object.keys(row)) columns.add(key);
  return { rows, columns: [...columns], files };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/**
 * Reads one local file by its extension.
 *
 * @param path The file.
 * @param limit At most this many rows.
 * @returns Its rows.
 */
export async function readFile(path: string, limit = Infinity): Promise<Row[]> {
  const name = path.toLowerCase();
  if (name.endsWith(".parquet")) return await readParquet(path, limit);
  const text = name.endsWith(".gz") ? await gunzip(path) : await Deno.readTextFile(path);
  return parseText(text, path, limit);
}

function parseText(text: string, path: string, limit: number): Row[] {
  const base = path.toLowerCase().replace(/\.gz$/, "");
  if (base.endsWith(".jsonl")) return parseJsonl(text, path, limit);
  if (base.endsWith(".json")) return parseJson(text, path).slice(0, limit);
  throw new Error(`Unsupported dataset file type: ${path} (expected .jsonl, .json or .parquet)`);
}

async function gunzip(path: string): Promise<string> {
  using file = await Deno.open(path);
  const stream = file.readable.pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}

function parseJsonl(text: string, path: string, limit: number): Row[] {
  const rows: Row[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length && rows.length < limit; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new Error(`Invalid JSON on line ${i + 1} of ${path}: ${(e as Error).message}`);
    }
    if (!isRow(value)) {
      throw new Error(`Line ${i + 1} of ${path} is not a JSON object: ${line.slice(0, 80)}`);
    }
    rows.push(value);
  }
  return rows;
}

function parseJson(text: string, path: string): Row[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`Invalid JSON in ${path}: ${(e as Error).message}`);
  }
  // A list of rows, or a {"data": [...]} / {"train": [...]} wrapper holding one.
  if (isRow(value)) {
    const lists = Object.values(value).filter(Array.isArray);
    if (lists.length === 1) value = lists[0];
  }
  if (!Array.isArray(value) || !value.every(isRow)) {
    throw new Error(
      `Expected a JSON array of objects in ${path}: use .jsonl for one object per line`,
    );
  }
  return value;
}

const isRow = (v: unknown): v is Row => typeof v === "object" && v !== null && !Array.isArray(v);

async function readParquet(path: string, limit: number): Promise<Row[]> {
  const bytes = await Deno.readFile(path);
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  let rows: Row[];
  try {
    rows = await parquetReadObjects({
      file,
      compressors,
      rowEnd: Number.isFinite(limit) ? limit : undefined,
    }) as Row[];
  } catch (e) {
    throw new Error(
      `Cannot read Parquet file ${path}: ${
        (e as Error).message
      } (corrupt, truncated or not Parquet)`,
    );
  }
  return rows.map(normalizeValue) as Row[];
}

/** Parquet INT64 values arrive as BigInt; rows should hold plain JSON-like values. */
function normalizeValue(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(normalizeValue);
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(value as unknown as ArrayLike<number | bigint>, (x) => Number(x));
  }
  if (typeof value === "object" && value !== null && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalizeValue(v)]));
  }
  return value;
}
