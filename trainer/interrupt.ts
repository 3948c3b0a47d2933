/**
 * Graceful interrupt: the first SIGINT (Ctrl-C) or SIGTERM asks the run to stop after the
 * current step — it then writes a checkpoint, prints the resume command and exits 130 — and a
 * second one aborts at once.
 *
 * @module
 */

const SIGNALS: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];

/** Exit status of a run stopped by a signal (128 + SIGINT's number, as shells report it). */
export const INTERRUPTED_EXIT = 130;

/** Listens for SIGINT/SIGTERM while a run is live. */
export class Interrupt implements Disposable {
  #signal: Deno.Signal | null = null;
  #handlers = new Map<Deno.Signal, () => void>();

  /**
   * Starts listening.
   *
   * @param say Where the "stopping after this step" notice goes.
   * @returns The listener; dispose of it when the run ends.
   */
  static listen(say: (line: string) => void = (l) => console.error(l)): Interrupt {
    const interrupt = new Interrupt();
    for (const signal of SIGNALS) {
      const handler = () => {
        if (interrupt.#signal !== null) {
          console.error(`\n${signal} again: aborting without a checkpoint`);
          Deno.exit(INTERRUPTED_EXIT);
        }
        interrupt.#signal = signal;
        say(
          `\n${signal}: stopping after the current step and saving a checkpoint ` +
            `(${signal === "SIGINT" ? "Ctrl-C" : signal} again aborts at once)`,
        );
      };
      interrupt.#handlers.set(signal, handler);
      Deno.addSignalListener(signal, handler);
    }
    return interrupt;
  }

  /** The signal received, or null while none was. */
  get requested(): Deno.Signal | null {
    return this.#signal;
  }

  /** Stops listening (the default signal behaviour returns). */
  [Symbol.dispose](): void {
    for (const [signal, handler] of this.#handlers) Deno.removeSignalListener(signal, handler);
    this.#handlers.clear();
  }
}
