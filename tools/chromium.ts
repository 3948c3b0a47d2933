/**
 * Headless Chromium driven over the Chrome DevTools Protocol on Deno's own WebSocket, for the
 * browser test (tests/web/page_test.ts), its screenshot and the page's benchmark. No npm driver:
 * playwright-core would bring its own Node-specific process and socket layers, and a browser
 * download step, for the handful of commands used here.
 *
 * @module
 */

/** A started headless Chromium with one page attached. */
export class Chromium {
  #id = 0;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #listeners: ((method: string, params: Record<string, unknown>) => void)[] = [];
  #session = "";

  private constructor(
    private readonly process: Deno.ChildProcess,
    private readonly socket: WebSocket,
    private readonly profile: string,
  ) {
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.id !== undefined) {
        const waiter = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error) waiter?.reject(new Error(`CDP: ${message.error.message}`));
        else waiter?.resolve(message.result);
      } else {
        for (const listen of this.#listeners) listen(message.method, message.params);
      }
    };
  }

  /** The Chromium binary: `$CHROMIUM`, else Debian's `chromium`. */
  static binary(): string {
    return Deno.env.get("CHROMIUM") ?? "chromium";
  }

  /**
   * Starts Chromium headless and opens a blank page.
   *
   * @returns The browser, attached to its page.
   */
  static async launch(): Promise<Chromium> {
    const profile = await Deno.makeTempDir({ prefix: "chromium-" });
    const args = [
      "--headless=new",
      "--remote-debugging-port=0",
      `--user-data-dir=${profile}`,
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--window-size=1200,900",
    ];
    // Chromium refuses to run as root with its sandbox on.
    if (Deno.uid() === 0) args.push("--no-sandbox");
    const process = new Deno.Command(Chromium.binary(), {
      args: [...args, "about:blank"],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const endpoint = await devToolsUrl(process.stderr);
    const socket = new WebSocket(endpoint);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error(`Cannot connect to Chromium at ${endpoint}`));
    });
    const browser = new Chromium(process, socket, profile);
    const { targetId } = await browser.send("Target.createTarget", { url: "about:blank" }) as {
      targetId: string;
    };
    const { sessionId } = await browser.send("Target.attachToTarget", {
      targetId,
      flatten: true,
    }) as { sessionId: string };
    browser.#session = sessionId;
    return browser;
  }

  /**
   * Sends a command, to the page (`page` true, the default) or to the browser.
   *
   * @param method E.g. `Page.navigate`.
   * @param params Its parameters.
   * @param page Whether it goes to the attached page.
   * @returns The command's result.
   */
  send(method: string, params: Record<string, unknown> = {}, page = true): Promise<unknown> {
    const id = ++this.#id;
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    this.#pending.set(id, { resolve, reject });
    const message: Record<string, unknown> = { id, method, params };
    if (page && this.#session) message.sessionId = this.#session;
    this.socket.send(JSON.stringify(message));
    return promise;
  }

  /**
   * Calls `listen` for every protocol event from now on.
   *
   * @param listen The listener.
   */
  on(listen: (method: string, params: Record<string, unknown>) => void): void {
    this.#listeners.push(listen);
  }

  /**
   * Evaluates an expression in the page (awaiting a promise) and returns its JSON value.
   *
   * @param expression JavaScript source.
   * @returns The value.
   */
  async evaluate<T>(expression: string): Promise<T> {
    const { result, exceptionDetails } = await this.send("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
    }) as { result: { value: T }; exceptionDetails?: { exception?: { description?: string } } };
    if (exceptionDetails) {
      throw new Error(`In the page: ${exceptionDetails.exception?.description ?? "exception"}`);
    }
    return result.value;
  }

  /**
   * Polls `expression` until it is truthy.
   *
   * @param expression JavaScript source.
   * @param options `timeoutMs` (default 60 s) and `what` for the timeout message.
   */
  async waitFor(expression: string, options: { timeoutMs?: number; what?: string } = {}) {
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    while (!(await this.evaluate<boolean>(expression))) {
      if (Date.now() > deadline) {
        throw new Error(`Timed out waiting for ${options.what ?? expression}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * A PNG screenshot of the page's viewport.
   *
   * @returns The PNG bytes.
   */
  async screenshot(): Promise<Uint8Array> {
    const { data } = await this.send("Page.captureScreenshot", { format: "png" }) as {
      data: string;
    };
    return Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  }

  /** Closes the browser and removes its profile. */
  async close(): Promise<void> {
    await this.send("Browser.close", {}, false).catch(() => {});
    this.socket.close();
    await this.process.status;
    await Deno.remove(this.profile, { recursive: true }).catch(() => {});
  }
}

/** Reads Chromium's stderr until it prints its DevTools WebSocket URL (and drains the rest). */
async function devToolsUrl(stderr: ReadableStream<Uint8Array>): Promise<string> {
  const lines = stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const deadline = setTimeout(() => lines.cancel(), 30_000);
  try {
    while (true) {
      const { value, done } = await lines.read();
      if (done) break;
      seen += value;
      const match = seen.match(/DevTools listening on (ws:\/\/\S+)/);
      if (match) {
        // Keep reading in the background so Chromium never blocks on a full pipe.
        (async () => {
          while (!(await lines.read()).done);
        })().catch(() => {});
        return match[1];
      }
    }
  } finally {
    clearTimeout(deadline);
  }
  throw new Error(`Chromium did not start: ${seen.slice(-500)}`);
}
