/**
 * The page in headless Chromium: 30 DPO steps of the embedded model on the WASM provider, then
 * the downloaded checkpoint scored by `deno task score`'s code.
 *
 * Without Chromium the test is ignored (and Deno reports it as such); CI sets
 * `REQUIRE_BROWSER=1`, which turns a missing Chromium into a failure. `UPDATE_SCREENSHOT=1`
 * rewrites web/screenshot.png from the page mid-training.
 *
 * @module
 */
import { equal, ok } from "node:assert/strict";
import { unzipSync } from "fflate";
import { score } from "../../score.ts";
import { serveWeb } from "../../web/serve.ts";
import { Chromium } from "../../tools/chromium.ts";

function hasChromium(): boolean {
  try {
    return new Deno.Command(Chromium.binary(), { args: ["--version"], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const available = hasChromium();
const required = Deno.env.get("REQUIRE_BROWSER") === "1";

interface PageState {
  status: string;
  error?: string;
  provider?: string;
  threads?: number;
  crossOriginIsolated: boolean;
  rows: Record<string, number>[];
  evals: Record<string, number>[];
  heldOut: { row: Record<string, unknown>; chosen: number; rejected: number }[];
}

Deno.test({
  name: "web page trains 30 DPO steps on WASM and its checkpoint scores as the page shows",
  ignore: !available && !required,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    if (!available) {
      throw new Error(
        `REQUIRE_BROWSER=1 but "${Chromium.binary()}" cannot run: apt-get install -y chromium, ` +
          "or set CHROMIUM to a Chromium binary",
      );
    }
    const stop = new AbortController();
    const { url, finished } = await serveWeb({ port: 0, signal: stop.signal, quiet: true });
    const browser = await Chromium.launch();
    const downloads = await Deno.makeTempDir({ prefix: "page-download-" });
    try {
      await browser.send("Browser.setDownloadBehavior", {
        behavior: "allow",
        downloadPath: downloads,
        eventsEnabled: true,
      }, false);
      const downloaded = Promise.withResolvers<void>();
      browser.on((method, params) => {
        if (method === "Browser.downloadProgress" && params.state === "completed") {
          downloaded.resolve();
        }
      });
      await browser.send("Page.navigate", { url });
      const read = () => browser.evaluate<PageState>("globalThis.pageState");
      await browser.waitFor("globalThis.pageState?.status === 'ready'", { what: "the page" });
      await browser.evaluate(`(() => {
        document.getElementById("loss").value = "dpo";
        document.getElementById("loss").dispatchEvent(new Event("change"));
        document.getElementById("device").value = "cpu";
        document.getElementById("steps").value = "30";
        document.getElementById("start").click();
      })()`);
      const failed = "['done', 'error'].includes(globalThis.pageState.status)";
      if (Deno.env.get("UPDATE_SCREENSHOT") === "1") {
        await browser.waitFor(`globalThis.pageState.rows.length >= 18 || ${failed}`, {
          timeoutMs: 150_000,
        });
        await Deno.writeFile("web/screenshot.png", await browser.screenshot());
      }
      await browser.waitFor(failed, { timeoutMs: 150_000, what: "30 steps" });
      const state = await read();
      equal(state.error, undefined);
      equal(state.status, "done");
      equal(state.provider, "WASM");
      ok(state.crossOriginIsolated, "COOP/COEP headers make the page cross-origin isolated");
      ok((state.threads ?? 0) >= 1);
      equal(state.rows.length, 30);
      const accuracy = state.evals.map((r) => r["eval_rewards/accuracies"]);
      const [first, last] = [accuracy[0], accuracy[accuracy.length - 1]];
      ok(last > first, `held-out reward accuracy ${first} → ${last}: expected a rise`);

      await browser.evaluate(`document.getElementById("download").click()`);
      await downloaded.promise;
      const [zipName] = [...Deno.readDirSync(downloads)].map((e) => e.name);
      ok(zipName.endsWith(".zip"), zipName);
      const checkpoint = `${downloads}/checkpoint`;
      await Deno.mkdir(checkpoint);
      for (
        const [name, bytes] of Object.entries(
          unzipSync(await Deno.readFile(`${downloads}/${zipName}`)),
        )
      ) {
        await Deno.writeFile(`${checkpoint}/${name}`, bytes);
      }
      const rows = `${downloads}/held_out.jsonl`;
      await Deno.writeTextFile(rows, state.heldOut.map((s) => JSON.stringify(s.row)).join("\n"));
      ok(state.heldOut.length >= 4);
      const { lines } = await score(["--model", checkpoint, "--data", rows, "--max_length", "128"]);
      equal(lines.length, state.heldOut.length);
      let worst = 0;
      lines.forEach((line, i) => {
        const cli = JSON.parse(line);
        for (const side of ["chosen", "rejected"] as const) {
          worst = Math.max(worst, Math.abs(cli[side].logp_sum - state.heldOut[i][side]));
        }
      });
      ok(worst <= 1e-4, `page vs deno task score: max |Δ Σ log π| = ${worst}`);
    } finally {
      await browser.close();
      stop.abort();
      await finished;
      await Deno.remove(downloads, { recursive: true });
    }
  },
});
