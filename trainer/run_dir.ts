/**
 * A run's output folder as one run's property: what is in it, what a crash left behind, which
 * checkpoints to keep, and cutting its logs back to a checkpoint so a resumed run logs each step
 * once.
 *
 * Layout: `config.yaml`, `metrics.jsonl`, `samples.jsonl`, `curves.svg`, `checkpoint-N/` folders,
 * and `run.lock` (see `output_lock.ts`). A checkpoint is written as `checkpoint-N.partial` (and
 * `.checkpoint-N.partial.tmp-*` inside `saveModel`) and renamed into place, so anything named
 * `checkpoint-N.<more>` or `.checkpoint-N.<more>` is debris of an interrupted save.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { LOCK_FILE, OutputLock } from "./output_lock.ts";

const CHECKPOINT = /^checkpoint-(\d+)$/;
/** The logs a resume cuts back to its checkpoint. */
const LOGS = ["metrics.jsonl", "samples.jsonl"];
const DEBRIS = /^\.?checkpoint-\d+\./;

/**
 * The steps of the `checkpoint-N` folders in `dir`, ascending.
 *
 * @param dir An output folder.
 * @returns Steps; empty when there are none (or no folder).
 * @example
 * ```ts
 * import { checkpointSteps } from "./run_dir.ts";
 * const dir = await Deno.makeTempDir();
 * for (const n of [10, 2]) await Deno.mkdir(`${dir}/checkpoint-${n}`);
 * if ((await checkpointSteps(dir)).join() !== "2,10") throw new Error("unexpected");
 * ```
 */
export async function checkpointSteps(dir: string): Promise<number[]> {
  const steps: number[] = [];
  for (const entry of await entries(dir)) {
    const m = entry.isDirectory && CHECKPOINT.exec(entry.name);
    if (m) steps.push(Number(m[1]));
  }
  return steps.sort((a, b) => a - b);
}

async function entries(dir: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) out.push(entry);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out;
}

/**
 * The files of a previous run in `dir` (everything but the lock file), by name.
 *
 * @param dir An output folder.
 * @returns Entry names, sorted; empty for a new or empty folder.
 */
export async function runFiles(dir: string): Promise<string[]> {
  return (await entries(dir)).map((e) => e.name).filter((name) => name !== LOCK_FILE).sort();
}

/**
 * Removes everything in `dir` but the lock file (`--overwrite_output_dir`).
 *
 * @param dir An output folder whose lock this process holds.
 */
export async function clearRun(dir: string): Promise<void> {
  for (const name of await runFiles(dir)) await Deno.remove(join(dir, name), { recursive: true });
}

/**
 * Removes the debris of checkpoints whose writing was interrupted.
 *
 * @param dir An output folder whose lock this process holds.
 * @returns The names removed.
 */
export async function cleanDebris(dir: string): Promise<string[]> {
  const removed = (await entries(dir)).map((e) => e.name).filter((name) => DEBRIS.test(name));
  for (const name of removed) await Deno.remove(join(dir, name), { recursive: true });
  return removed;
}

/**
 * Deletes the oldest checkpoints until at most `limit` are left (`save_total_limit`), never the
 * newest nor `keep` (the one the run resumed from), so with `limit` 1 two may remain.
 *
 * @param dir An output folder.
 * @param options `limit`: checkpoints to keep (null: all); `keep`: a step never deleted.
 * @returns The steps deleted.
 * @example
 * ```ts
 * import { checkpointSteps, pruneCheckpoints } from "./run_dir.ts";
 * const dir = await Deno.makeTempDir();
 * for (const n of [1, 2, 3, 4]) await Deno.mkdir(`${dir}/checkpoint-${n}`);
 * await pruneCheckpoints(dir, { limit: 2, keep: 1 });
 * if ((await checkpointSteps(dir)).join() !== "1,4") throw new Error("unexpected");
 * ```
 */
export async function pruneCheckpoints(
  dir: string,
  options: { limit: number | null; keep?: number | null },
): Promise<number[]> {
  const { limit, keep = null } = options;
  if (limit === null) return [];
  const steps = await checkpointSteps(dir);
  // The newest (just saved) and the resumed-from checkpoint stay even if that exceeds the limit.
  const deletable = steps.filter((s) => s !== keep && s !== steps.at(-1));
  const excess = steps.length - limit;
  const deleted = deletable.slice(0, Math.max(0, excess));
  for (const s of deleted) await Deno.remove(join(dir, `checkpoint-${s}`), { recursive: true });
  return deleted;
}

/**
 * Cuts a JSON-lines log back to the rows of steps `<= step` (what a checkpoint at `step` had
 * seen), so the resumed run appends each later step once. Lines that are not JSON (a torn last
 * line, a corrupt one) go too, counted apart by their line numbers.
 *
 * @param path `metrics.jsonl` or `samples.jsonl` (a missing file is left missing).
 * @param step The checkpoint's step (`Infinity`: only unreadable lines go).
 * @returns The rows removed for being after `step`, and the numbers of unreadable lines removed.
 * @example
 * ```ts
 * import { truncateLog } from "./run_dir.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, '{"step":1}\n{"st\n{"step":2}\n{"step":3}\n{"st');
 * const { after, unreadable } = await truncateLog(path, 2);
 * if (after !== 1 || unreadable.join() !== "2,5") throw new Error("unexpected");
 * ```
 */
export async function truncateLog(
  path: string,
  step: number,
): Promise<{ after: number; unreadable: number[] }> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { after: 0, unreadable: [] };
    throw error;
  }
  const kept: string[] = [];
  const unreadable: number[] = [];
  let after = 0;
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let row: { step?: number };
    try {
      row = JSON.parse(line);
    } catch {
      unreadable.push(i + 1);
      return;
    }
    if (row.step! <= step) kept.push(line);
    else after++;
  });
  if (after === 0 && unreadable.length === 0) return { after, unreadable };
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, kept.map((line) => line + "\n").join(""));
  await Deno.rename(tmp, path);
  return { after, unreadable };
}

/**
 * The console notes of {@link truncateLog}'s removals from one log.
 *
 * @param log The log's file name.
 * @param removed What was removed.
 * @param step The step it was cut back to.
 * @returns Zero to two lines.
 */
function logNotes(
  log: string,
  removed: { after: number; unreadable: number[] },
  step: number,
): string[] {
  const notes: string[] = [];
  const { after, unreadable } = removed;
  if (unreadable.length) {
    const lines = unreadable.length === 1 ? "line" : "lines";
    notes.push(
      `removed ${unreadable.length} unreadable ${lines} (not JSON: cut or corrupt) from ${log}: ` +
        `${lines} ${unreadable.join(", ")}`,
    );
  }
  if (after) {
    notes.push(`removed ${after} row${after === 1 ? "" : "s"} after step ${step} from ${log}`);
  }
  return notes;
}

/**
 * Every row of a run's `metrics.jsonl` (for curves drawn over the whole run after a resume).
 *
 * @param dir An output folder.
 * @returns The rows, in file order.
 */
export async function readMetrics<Row>(dir: string): Promise<Row[]> {
  try {
    const text = await Deno.readTextFile(join(dir, "metrics.jsonl"));
    return text.split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw new Error(`Cannot read ${join(dir, "metrics.jsonl")}: ${(error as Error).message}`);
  }
}

/**
 * The run folder `--resume PATH` writes to: PATH itself, or, when PATH is one `checkpoint-N`
 * folder, the run folder holding it.
 *
 * @param path What `--resume` was given.
 * @returns The run folder.
 */
export function runFolderOf(path: string): string {
  const clean = path.replace(/\/+$/, "") || "/";
  return CHECKPOINT.test(basename(clean)) ? dirname(clean) : clean;
}

/** What a run writes beside its checkpoints (its `merged/` folder comes only after one). */
const RUN_LOGS = new Set(["config.yaml", "metrics.jsonl", "samples.jsonl", "curves.svg"]);

/**
 * Takes `dir` for a new run: locks it, then refuses it if it holds another run's files, unless
 * `overwrite` (`--overwrite_output_dir`) clears them first. A run that stopped before its first
 * checkpoint (only logs, perhaps a save's debris) has nothing to resume: its files are cleared
 * and the folder reused, with a notice.
 *
 * @param dir The output folder.
 * @param options `overwrite`: clear a previous run's files; `say`: where the reuse notice goes.
 * @returns The held lock.
 * @example
 * ```ts
 * import { claimNewRun } from "./run_dir.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/config.yaml`, "loss: dpo\n"); // a start that failed
 * const said: string[] = [];
 * using _lock = await claimNewRun(dir, { overwrite: false, say: (l) => said.push(l) });
 * if (!said[0]?.startsWith(`Output folder ${dir} held a run that stopped before`)) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export async function claimNewRun(
  dir: string,
  options: { overwrite: boolean; say?: (line: string) => void },
): Promise<OutputLock> {
  const lock = await OutputLock.acquire(dir);
  const files = await runFiles(dir);
  const unfinished = files.every((name) => RUN_LOGS.has(name) || DEBRIS.test(name));
  if (files.length > 0 && !options.overwrite && !unfinished) {
    lock.release();
    const shown = files.length > 4 ? `${files.slice(0, 4).join(", ")}, ...` : files.join(", ");
    throw new Error(
      `Output folder ${dir} already holds a run (${shown}): pass --resume ${dir} to continue it, ` +
        `or --overwrite_output_dir to clear it first`,
    );
  }
  if (files.length > 0 && unfinished && !options.overwrite) {
    options.say?.(
      `Output folder ${dir} held a run that stopped before its first checkpoint ` +
        `(${files.join(", ")}): nothing to resume, so this run starts it again`,
    );
  }
  if (files.length > 0) await clearRun(dir);
  return lock;
}

/**
 * Brings a resumed run's folder back to checkpoint `step`: removes the debris of interrupted
 * saves and checkpoints after `step` (another future of this run), and cuts `metrics.jsonl` and
 * `samples.jsonl` back to `step`, so every step is logged once.
 *
 * @param dir The run folder (locked by this process).
 * @param step The step of the checkpoint resumed from.
 * @returns One line per change made, for the console.
 */
export async function rewindRun(dir: string, step: number): Promise<string[]> {
  const notes: string[] = [];
  const debris = await cleanDebris(dir);
  if (debris.length) notes.push(`removed the debris of interrupted saves: ${debris.join(", ")}`);
  for (const later of (await checkpointSteps(dir)).filter((s) => s > step)) {
    await Deno.remove(join(dir, `checkpoint-${later}`), { recursive: true });
    notes.push(`removed checkpoint-${later}: it is newer than the step resumed from`);
  }
  return notes.concat(await cutLogs(dir, step));
}

/**
 * Removes the unreadable lines of a finished run's logs (a write cut short), which a resume that
 * has nothing to do would otherwise leave for the next reader to trip on.
 *
 * @param dir The run folder (locked by this process).
 * @returns One line per change made, for the console.
 * @example
 * ```ts
 * import { repairLogs } from "./run_dir.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/metrics.jsonl`, '{"step": 1}\n{"step": 2, "lo');
 * const [note] = await repairLogs(dir);
 * if (!note.endsWith("from metrics.jsonl: line 2")) throw new Error(note);
 * ```
 */
export async function repairLogs(dir: string): Promise<string[]> {
  return await cutLogs(dir, Infinity);
}

/** {@link truncateLog} on each log, with the notes of what went. */
async function cutLogs(dir: string, step: number): Promise<string[]> {
  let notes: string[] = [];
  for (const log of LOGS) {
    notes = notes.concat(logNotes(log, await truncateLog(join(dir, log), step), step));
  }
  return notes;
}
