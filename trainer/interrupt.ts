/**
 * Graceful interrupt: the first SIGINT (Ctrl-C) or SIGTERM asks the run to stop after the
 * current step — it then writes a checkpoint, prints the resume command and exits 130 — and a
 * second one aborts at once.
 *
 * One Ctrl-C in a terminal arrives twice: the terminal signals the whole foreground process group
 * and `deno task` forwards the SIGINT it got to the run as well, milliseconds apart. So the same
 * signal again within {@link REPEAT_MS} is that one Ctrl-C, not a second press.
 *
 * @module
 */

const SIGNALS: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];

/** Exit status of a run stopped by a signal (128 + SIGINT's number, as shells report it). */
export const INTERRUPTED_EXIT = 130;

/**
 * Milliseconds within which the same signal again is one delivery more of the first (process group
 * and `deno task`), not a second press: far above their gap, below a person's double press.
 */
export const REPEAT_MS = 250;

/** Listens for SIGINT/SIGTERM while a run is live. */
export class Interrupt implements Disposable {
  #signal: Deno.Signal | null = null;
  #at = 0;
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
        const now = performance.now();
        if (interrupt.#signal === signal && now - interrupt.#at < REPEAT_MS) return;
        if (interrupt.#signal !== null) {
          console.error(`\n${signal} again: aborting without a checkpoint`);
          return interrupt.#abort();
        }
        interrupt.#signal = signal;
        interrupt.#at = now;
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

  /**
   * Ends the process by SIGINT's default action (status 130). Unlike `Deno.exit`, that runs no
   * exit-time destructors, which would tear onnxruntime down under a step still running on its
   * threads ("GetElementType is not implemented").
   */
  #abort(): void {
    if (Deno.build.os === "windows") Deno.exit(INTERRUPTED_EXIT);
    this[Symbol.dispose]();
    Deno.kill(Deno.pid, "SIGINT");
    // Only reached if another listener keeps SIGINT from ending the process.
    setTimeout(() => Deno.exit(INTERRUPTED_EXIT), 100);
  }

  /** Stops listening (the default signal behaviour returns). */
  [Symbol.dispose](): void {
    for (const [signal, handler] of this.#handlers) Deno.removeSignalListener(signal, handler);
    this.#handlers.clear();
  }
}
