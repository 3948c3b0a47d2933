/**
 * The page's train step, WASM in headless Chromium vs the CPU CLI's runtime, on the same
 * machine in one run: the same `PageRun` (embedded tiny model, DPO, configs/tiny.yaml: the
 * ultrafeedback sample, 8 pairs, max_length 128, the same batch order) stepped in the page on onnxruntime-web's WASM provider,
 * then on Deno with the native backend `deno task train` uses on cpu. Prints the median step time
 * of each after `--warmup` steps.
 *
 *   deno task bench:web [--steps 30] [--warmup 5]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Chromium } from "../tools/chromium.ts";
import { serveWeb } from "../web/serve.ts";
import { readYamlConfig, resolveConfig } from "../trainer/config.ts";
import { PageRun } from "../web/run.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { steps: { type: "string", default: "30" }, warmup: { type: "string", default: "5" } },
});
const steps = Number(values.steps), warmup = Number(values.warmup);
if (!(Number.isInteger(steps) && Number.isInteger(warmup) && steps > warmup && warmup >= 0)) {
  console.error("Invalid --steps/--warmup: expected integers with steps > warmup >= 0");
  Deno.exit(1);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// WASM in headless Chromium: the page itself, as a user runs it.
const stop = new AbortController();
const { url, finished } = await serveWeb({ port: 0, signal: stop.signal, quiet: true });
const browser = await Chromium.launch();
let page: { times: number[]; threads: number; version: string };
try {
  await browser.send("Page.navigate", { url });
  await browser.waitFor("globalThis.pageState?.status === 'ready'");
  await browser.evaluate(`(() => {
    document.getElementById("device").value = "cpu";
    document.getElementById("steps").value = "${steps}";
    document.getElementById("start").click();
  })()`);
  await browser.waitFor("['done', 'error'].includes(globalThis.pageState.status)", {
    timeoutMs: 600_000,
  });
  page = await browser.evaluate(`(() => {
    const s = globalThis.pageState;
    if (s.error) throw new Error(s.error);
    return { times: s.rows.map((r) => r.step_ms), threads: s.threads, version: navigator.userAgent };
  })()`);
} finally {
  await browser.close();
  stop.abort();
  await finished;
}

// The CLI's runtime: the same run on Deno (native onnxruntime, CPU).
const read = (f: string) => Deno.readTextFileSync(`model/tiny/${f}`);
const run = await PageRun.create({
  config: JSON.parse(read("config.json")),
  weights: Deno.readFileSync("model/tiny/model.safetensors"),
  tokenizer: Object.fromEntries(
    ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"].map((f) => [f, read(f)]),
  ),
}, {
  data: {
    text: Deno.readTextFileSync("data/samples/ultrafeedback_sample.jsonl"),
    name: "ultrafeedback_sample.jsonl",
  },
  settings: resolveConfig({
    yaml: await readYamlConfig("configs/tiny.yaml"),
    cli: { loss: "dpo", max_steps: String(steps) },
  }),
});
const native: number[] = [];
for (let i = 0; i < steps; i++) native.push((await run.advance()).row.step_ms);
await run.release();

const wasm = median(page.times.slice(warmup)), cpu = median(native.slice(warmup));
console.log(`chromium: ${page.version}`);
console.log(
  `WASM in headless Chromium (${page.threads} threads): median step ${wasm.toFixed(1)} ms`,
);
console.log(
  `CPU, native onnxruntime on Deno (the CLI's runtime): median step ${cpu.toFixed(1)} ms`,
);
console.log(`ratio WASM / native: ${(wasm / cpu).toFixed(1)}×`);
