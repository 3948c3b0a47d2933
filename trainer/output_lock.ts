/**
 * Ownership of an output folder: a run holds an exclusive OS lock on `<output_dir>/run.lock` for
 * as long as it lives. The kernel drops the lock when the process ends, however it ends (even
 * `kill -9`), so a dead run never leaves a stale lock and `--resume` just works, while a second
 * live run on the same folder is refused with the first one's pid.
 *
 * @module
 */
import { join } from "node:path";

/** The lock file's name inside an output folder. */
export const LOCK_FILE = "run.lock";

/** A held lock on an output folder. */
export class OutputLock implements Disposable {
  private constructor(readonly dir: string, readonly file: Deno.FsFile) {}

  /**
   * Takes the lock on `dir` (creating the folder), or fails naming the run that holds it.
   *
   * @param dir The output folder.
   * @returns The held lock; release it with `release()` or `using`.
   * @example
   * ```ts
   * import { OutputLock } from "./output_lock.ts";
   * const dir = await Deno.makeTempDir();
   * using _lock = await OutputLock.acquire(dir);
   * const second = await OutputLock.acquire(dir).catch((e) => e);
   * if (!/in use by another run \(pid \d+\)/.test(second.message)) throw new Error("unexpected");
   * ```
   */
  static async acquire(dir: string): Promise<OutputLock> {
    await Deno.mkdir(dir, { recursive: true });
    const path = join(dir, LOCK_FILE);
    const file = await Deno.open(path, { read: true, write: true, create: true });
    if (!await file.tryLock(true)) {
      file.close();
      const pid = (await Deno.readTextFile(path).catch(() => "")).trim() || "unknown";
      throw new Error(
        `Output folder ${dir} is in use by another run (pid ${pid}): wait for it to end, ` +
          `stop it, or pass another --output_dir`,
      );
    }
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
    return new OutputLock(dir, file);
  }

  /** Releases the lock (closing the file releases it too). */
  release(): void {
    try {
      this.file.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error; // already released
    }
  }

  /** Same as {@linkcode release}, for `using`. */
  [Symbol.dispose](): void {
    this.release();
  }
}
