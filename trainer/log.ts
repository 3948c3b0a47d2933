/**
 * Where a run's numbers go: `metrics.jsonl` (one JSON object per logged step), the console (a
 * progress bar with ETA and live loss / accuracy on a terminal; otherwise plain lines, at most
 * about twenty per run; each evaluation on a line of its own when it is made), and optionally
 * Weights & Biases.
 *
 * @module
 */
import { join } from "node:path";
import { heldOut } from "./log_window.ts";

/** One logged row: the step plus metric values. */
export type MetricsRow = { step: number } & Record<string, number>;

/** A sink that also receives every row (e.g. wandb). */
export interface RowSink {
  /** Receives a row; failures are the sink's to handle. */
  log(row: MetricsRow): Promise<void> | void;
  /** Flushes at the end of the run. */
  close?(): Promise<void>;
}

/** Appends rows to `metrics.jsonl` and draws progress. */
export class MetricsLog {
  #file: Deno.FsFile;
  #path: string;
  #start = performance.now();
  #tty = Deno.stdout.isTerminal();
  #printed = 0;
  readonly rows: MetricsRow[] = [];

  private constructor(
    file: { handle: Deno.FsFile; path: string },
    readonly total: number,
    readonly sinks: RowSink[],
    readonly quiet: boolean,
  ) {
    this.#file = file.handle;
    this.#path = file.path;
  }

  /**
   * Opens (appending, for resumed runs) `dir/metrics.jsonl`.
   *
   * @param dir Output folder.
   * @param options `total` steps (for the ETA) and extra sinks.
   * @returns The log.
   */
  static async open(
    dir: string,
    options: { total: number; sinks?: RowSink[]; append?: boolean; quiet?: boolean },
  ): Promise<MetricsLog> {
    const path = join(dir, "metrics.jsonl");
    let handle: Deno.FsFile;
    try {
      await Deno.mkdir(dir, { recursive: true });
      handle = await Deno.open(path, {
        create: true,
        write: true,
        append: options.append ?? false,
        truncate: !(options.append ?? false),
      });
    } catch (error) {
      throw new Error(`Cannot open ${path}: ${(error as Error).message}`);
    }
    const { total, sinks = [], quiet = false } = options;
    return new MetricsLog({ handle, path }, total, sinks, quiet);
  }

  /**
   * Records a row everywhere.
   *
   * @param row The step's metrics.
   */
  async log(row: MetricsRow): Promise<void> {
    this.rows.push(row);
    try {
      // write() may write part of a buffer; a row written in part would be a torn line.
      await writeAll(this.#file, new TextEncoder().encode(JSON.stringify(row) + "\n"));
    } catch (error) {
      throw new Error(`Cannot write ${this.#path}: ${(error as Error).message}`);
    }
    for (const sink of this.sinks) await sink.log(row);
    if (this.quiet) return;
    const held = heldOut(row);
    if (held) this.#evaluation(held);
    else if (!("train_runtime" in row)) this.#progress(row); // the closing summary: no bar
  }

  #evaluation(row: MetricsRow): void {
    const shown = [
      ["loss", "loss"],
      ["pairwise accuracy", "pairwise_accuracy"],
      ["margins", "rewards/margins"],
    ].filter(([, k]) => row[k] !== undefined).map(([name, k]) => `${name} ${row[k].toFixed(4)}`);
    const line = `eval at step ${row.step}: ${shown.join(", ")}`;
    // On a terminal the progress bar holds the line: clear it first.
    if (this.#tty) Deno.stdout.writeSync(new TextEncoder().encode(`\r\x1b[K${line}\n`));
    else console.log(line);
  }

  #progress(row: MetricsRow): void {
    const done = row.step;
    const elapsed = (performance.now() - this.#start) / 1000;
    const eta = done > 0 ? (elapsed / done) * (this.total - done) : 0;
    const width = 24;
    const filled = Math.round((done / Math.max(1, this.total)) * width);
    const bar = "=".repeat(filled) + " ".repeat(width - filled);
    const acc = row["rewards/accuracies"];
    const loss = typeof row.loss === "number" ? row.loss.toFixed(4) : "(step skipped)";
    const text = `[${bar}] ${done}/${this.total} ETA ${clock(eta)} loss ${loss}` +
      (acc !== undefined ? ` acc ${acc.toFixed(2)}` : "");
    if (this.#tty) {
      Deno.stdout.writeSync(new TextEncoder().encode(`\r${text}`));
    } else if (
      this.#printed === 0 || done === this.total ||
      done >= this.#printed + Math.ceil(this.total / 20)
    ) {
      this.#printed = done; // a log file gets about twenty lines, not one per step
      console.log(text);
    }
  }

  /** Ends the progress line, closes the file and the sinks. */
  async close(): Promise<void> {
    if (this.#tty && !this.quiet) console.log();
    this.#file.close();
    for (const sink of this.sinks) await sink.close?.();
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
}

function clock(seconds: number): string {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
