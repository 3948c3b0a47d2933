/**
 * Dataset sources: local `.jsonl`, `.json` and `.parquet` files (also `.jsonl.gz` / `.json.gz`),
 * and Hub dataset ids (`org/name`) whose files are downloaded into the HF cache.
 *
 * Text must be UTF-8: invalid bytes are an error naming the file and line (row and column for
 * Parquet), as `datasets` (pyarrow) and Python's `open()` fail, rather than U+FFFD replacements
 * trained on without a word or rows skipped. A wrong encoding is usually the whole file's
 * (cp1252, latin-1), so skipping would drop every non-ASCII row; re-encoding fixes all of them.
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
  if (await isFile(source)) {
    // A file has no splits: reading it as another split would evaluate on the training rows.
    if ((options.split ?? "train") !== "train") {
      throw new Error(
        `No split "${options.split}" in ${source}: a file is one split (train); hold out a ` +
          "fraction with eval_split: 0.1, or name a Hub dataset's split",
      );
    }
    files = [source];
  } else if (isHubId(source)) {
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
  const bytes = name.endsWith(".gz") ? await gunzip(path) : await Deno.readFile(path);
  return parseText(decodeUtf8(bytes, path), path, limit);
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

function isUtf8(bytes: Uint8Array): boolean {
  try {
    UTF8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * A text file's bytes as a string, or an error naming the first line that is not UTF-8.
 *
 * @param bytes The file's contents.
 * @param path The file's name, for the error.
 * @returns The text (a leading byte-order mark removed).
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { decodeUtf8 } from "./sources.ts";
 * const bytes = new TextEncoder().encode('{"a":"ok"}\n{"a":"caf?"}\n');
 * bytes[bytes.length - 4] = 0xe9; // "é" in cp1252
 * throws(() => decodeUtf8(bytes, "d.jsonl"), /^Error: Invalid UTF-8 on line 2 of d\.jsonl: /);
 * ```
 */
export function decodeUtf8(bytes: Uint8Array, path: string): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    // Only on failure: find the line (no UTF-8 sequence contains a newline byte).
    for (let line = 1, start = 0; start <= bytes.length; line++) {
      const end = bytes.indexOf(0x0a, start);
      const stop = end === -1 ? bytes.length : end;
      if (!isUtf8(bytes.subarray(start, stop))) {
        throw new Error(
          `Invalid UTF-8 on line ${line} of ${path}: save the file as UTF-8 (from cp1252, e.g. ` +
            `iconv -f cp1252 -t utf-8 IN > OUT)`,
        );
      }
      start = stop + 1;
    }
    throw new Error(`Invalid UTF-8 in ${path}: save the file as UTF-8`);
  }
}

function parseText(text: string, path: string, limit: number): Row[] {
  const base = path.toLowerCase().replace(/\.gz$/, "");
  if (base.endsWith(".jsonl")) return parseJsonl(text, path, limit);
  if (base.endsWith(".json")) return parseJson(text, path).slice(0, limit);
  throw new Error(`Unsupported dataset file type: ${path} (expected .jsonl, .json or .parquet)`);
}

async function gunzip(path: string): Promise<Uint8Array> {
  using file = await Deno.open(path);
  const stream = file.readable.pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
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
      // Marked when not UTF-8, so the row and column can be named below.
      parsers: {
        stringFromBytes: (b) => b && (isUtf8(b) ? UTF8.decode(b) : NOT_UTF8),
        jsonFromBytes: (b) => b && (isUtf8(b) ? JSON.parse(UTF8.decode(b)) : NOT_UTF8),
      },
    }) as Row[];
  } catch (e) {
    throw new Error(
      `Cannot read Parquet file ${path}: ${
        (e as Error).message
      } (corrupt, truncated or not Parquet)`,
    );
  }
  rows.forEach((row, index) => {
    for (const [column, value] of Object.entries(row)) {
      if (holdsNotUtf8(value)) {
        throw new Error(
          `Invalid UTF-8 in row ${index}, column "${column}" of ${path}: write its strings as UTF-8`,
        );
      }
    }
  });
  return rows.map(normalizeValue) as Row[];
}

/** Stands for a Parquet string whose bytes are not UTF-8. */
const NOT_UTF8 = Symbol("not UTF-8");

/** Whether a value (or one nested in it) is a string that was not UTF-8. */
function holdsNotUtf8(value: unknown): boolean {
  if (value === NOT_UTF8) return true;
  if (Array.isArray(value)) return value.some(holdsNotUtf8);
  if (typeof value === "object" && value !== null && !(value instanceof Date)) {
    return Object.values(value).some(holdsNotUtf8);
  }
  return false;
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
