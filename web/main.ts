/// <reference lib="dom" />
// (Type-checked on its own by `deno task check`: the DOM types would clash with Deno's elsewhere.)
/**
 * The page's script: reads the controls, fetches the embedded model and data (or takes an
 * uploaded JSONL), runs {@linkcode PageRun} step by step, and draws what it reports. Everything a
 * test needs to read is mirrored in `globalThis.pageState`.
 *
 * @module
 */
import { parse as parseYaml } from "@std/yaml";
import { ALGORITHMS } from "../algorithms/mod.ts";
import { decodeUtf8 } from "../data/sources.ts";
import { webThreads } from "../runtime/web.ts";
import { resolveConfig } from "../trainer/config.ts";
import { evalKey } from "../trainer/log_window.ts";
import { type HeldOutScore, type MetricsRow, PageRun } from "./run.ts";

/** The embedded model's files and sample data, served beside the page. */
const MODEL = "/model/tiny";
const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];
const SAMPLE_DATA = "/data/samples/ultrafeedback_sample.jsonl";
/** The settings the controls do not set, as `deno task train` with no --config. */
const CONFIG = "configs/tiny.yaml";

/** What the page shows, readable by tests through `globalThis.pageState`. */
interface PageState {
  status: "loading" | "ready" | "training" | "paused" | "done" | "error";
  error?: string;
  provider?: string;
  threads?: number;
  crossOriginIsolated: boolean;
  rows: MetricsRow[];
  evals: MetricsRow[];
  heldOut: HeldOutScore[];
  samples: { step: number; prompt: string; completion: string }[];
  skipped?: string;
}

const state: PageState = {
  status: "loading",
  crossOriginIsolated: globalThis.crossOriginIsolated,
  rows: [],
  evals: [],
  heldOut: [],
  samples: [],
};
(globalThis as unknown as { pageState: PageState }).pageState = state;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const lossSelect = $<HTMLSelectElement>("loss");
const betaInput = $<HTMLInputElement>("beta");
const lrInput = $<HTMLInputElement>("lr");
const stepsInput = $<HTMLInputElement>("steps");
const deviceSelect = $<HTMLSelectElement>("device");
const upload = $<HTMLInputElement>("upload");
const startButton = $<HTMLButtonElement>("start");
const pauseButton = $<HTMLButtonElement>("pause");
const downloadButton = $<HTMLButtonElement>("download");

for (const algorithm of Object.values(ALGORITHMS)) {
  if (algorithm.online) continue;
  lossSelect.add(new Option(algorithm.name, algorithm.name));
}
lossSelect.value = "dpo";
const tinyYaml = parseYaml(await fetchText(`/${CONFIG}`)) as Record<string, unknown>;
lrInput.value = String(tinyYaml.learning_rate);
stepsInput.value = String(tinyYaml.max_steps);
const showBeta = () => {
  const beta = ALGORITHMS[lossSelect.value].defaults.beta;
  betaInput.disabled = beta === undefined;
  betaInput.value = beta === undefined ? "" : String(beta);
};
lossSelect.onchange = showBeta;
showBeta();

let run: PageRun | null = null;
let paused = false;

function setStatus(status: PageState["status"], text: string): void {
  state.status = status;
  $("status").textContent = text;
  $("status").className = status === "error" ? "error" : "";
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`Cannot fetch ${url}: ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function fetchText(url: string): Promise<string> {
  return new TextDecoder().decode(await fetchBytes(url));
}

/** The data to train on: the uploaded file, or the embedded sample. */
async function chosenData(): Promise<{ text: string; name: string }> {
  const file = upload.files?.[0];
  // Not file.text(): that replaces bytes that are not UTF-8 without a word.
  if (file) {
    return {
      text: decodeUtf8(new Uint8Array(await file.arrayBuffer()), file.name),
      name: file.name,
    };
  }
  return { text: await fetchText(SAMPLE_DATA), name: SAMPLE_DATA.split("/").pop()! };
}

async function start(): Promise<void> {
  if (run && state.status === "paused") {
    paused = false;
    return void loop();
  }
  await run?.release();
  Object.assign(state, { rows: [], evals: [], heldOut: [], samples: [] });
  setStatus("loading", "Compiling the train step…");
  startButton.disabled = true;
  const tokenizer: Record<string, string> = {};
  for (const f of TOKENIZER_FILES) tokenizer[f] = await fetchText(`${MODEL}/${f}`);
  const cli: Record<string, string> = {
    loss: lossSelect.value,
    learning_rate: lrInput.value,
    max_steps: stepsInput.value,
    device: deviceSelect.value,
  };
  if (!betaInput.disabled) cli.beta = betaInput.value;
  run = await PageRun.create({
    config: JSON.parse(await fetchText(`${MODEL}/config.json`)),
    weights: await fetchBytes(`${MODEL}/model.safetensors`),
    tokenizer,
  }, {
    data: await chosenData(),
    settings: resolveConfig({ yaml: tinyYaml, yamlName: CONFIG, cli }),
  });
  state.threads = webThreads();
  state.provider = run.session.device === "webgpu" ? "WebGPU" : "WASM";
  $("provider").textContent = state.provider === "WebGPU"
    ? "WebGPU"
    : `WASM, ${state.threads} thread${state.threads === 1 ? "" : "s"}` +
      (state.crossOriginIsolated ? "" : " (page not cross-origin isolated)");
  const { data } = run;
  $("data").textContent = `${data.train.length} train / ${data.eval.length} held-out examples`;
  state.skipped = data.skips.summary(data.train.length + data.eval.length);
  $("skips").textContent = state.skipped;
  await showEvaluation(await run.session.evaluate());
  paused = false;
  await loop();
}

async function loop(): Promise<void> {
  const current = run!;
  setStatus("training", "Training…");
  startButton.disabled = true;
  pauseButton.disabled = false;
  downloadButton.disabled = true;
  const total = current.session.schedule.total;
  while (!paused && current.stepCount < total) {
    const { row, evaluation } = await current.advance();
    state.rows.push(row);
    const loss = row.loss === undefined ? "skipped" : `loss ${row.loss.toFixed(4)}`;
    setStatus(
      "training",
      `Step ${current.stepCount} / ${total} · ${loss} · ${row.step_ms.toFixed(0)} ms/step`,
    );
    if (evaluation) await showEvaluation(evaluation);
    draw();
    // onnxruntime-web's WASM runs resolve without leaving the task: end it so the page repaints
    // and the Pause button is heard (a message, unlike a timer or a frame, is not throttled or
    // paused in a background tab).
    await new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = resolve;
      channel.port2.postMessage(null);
    });
  }
  const done = current.stepCount >= total;
  setStatus(done ? "done" : "paused", done ? `Done: ${current.stepCount} steps` : "Paused");
  startButton.disabled = false;
  startButton.textContent = done ? "Start" : "Resume";
  pauseButton.disabled = true;
  downloadButton.disabled = false;
}

/** Shows an evaluation row with the held-out scores and samples of the current policy. */
async function showEvaluation(row: MetricsRow | null): Promise<void> {
  const current = run!;
  if (row) state.evals.push(row);
  state.heldOut = await current.heldOutScores(4);
  const samples = await current.session.sample(2, { maxNewTokens: 32 });
  for (const s of samples) state.samples.push({ step: current.stepCount, ...s });
  draw();
}

async function download(): Promise<void> {
  const zip = await run!.checkpointZip();
  const url = URL.createObjectURL(
    new Blob([zip as Uint8Array<ArrayBuffer>], {
      type: "application/zip",
    }),
  );
  const link = document.createElement("a");
  link.href = url;
  link.download = `tiny-${run!.settings.algorithm.name}-step${run!.stepCount}.zip`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** An SVG line chart of one metric for the train rows (blue) and held-out rows (red). */
function chart(id: string, train: string, held: string): void {
  const series = [
    { points: state.rows.map((r) => [r.step, r[train]]), color: "#1f77b4" },
    { points: state.evals.map((r) => [r.step, r[held]]), color: "#d62728" },
  ].map((s) => ({ ...s, points: s.points.filter(([, y]) => Number.isFinite(y)) }));
  const all = series.flatMap((s) => s.points);
  const svg = $(id);
  if (all.length === 0) return void (svg.innerHTML = "");
  const W = 300, H = 150, pad = 28;
  let [x0, x1, y0, y1] = [0, 1, Infinity, -Infinity];
  for (const [x, y] of all) {
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  }
  if (y1 - y0 < 1e-9) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const sx = (x: number) => pad + ((x - x0) / (x1 - x0)) * (W - pad - 6);
  const sy = (y: number) => H - 16 - ((y - y0) / (y1 - y0)) * (H - 24);
  const lines = series.map((s) =>
    `<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${
      s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")
    }"/>` + (s.points.length === 1
      ? `<circle r="2.5" fill="${s.color}" cx="${sx(s.points[0][0])}" cy="${sy(s.points[0][1])}"/>`
      : "")
  );
  const label = (y: number) =>
    `<text x="2" y="${sy(y) + 4}" font-size="9" fill="#777">${y.toPrecision(3)}</text>`;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.innerHTML = `${label(y0)}${label(y1)}` +
    `<text x="${W - 40}" y="${H - 3}" font-size="9" fill="#777">step ${x1}</text>` +
    lines.join("");
}

function draw(): void {
  chart("chart-loss", "loss", evalKey("loss"));
  chart("chart-acc", "rewards/accuracies", evalKey("rewards/accuracies"));
  chart("chart-margin", "rewards/margins", evalKey("rewards/margins"));
  $("samples").innerHTML = "";
  for (const s of state.samples.slice(-4)) {
    const pre = document.createElement("pre");
    pre.textContent = `step ${s.step} · ${s.prompt.trim()}\n→ ${s.completion}`;
    $("samples").append(pre);
  }
  const table = $("scores");
  table.innerHTML = "<tr><th>prompt</th><th>Σ log π(chosen)</th><th>Σ log π(rejected)</th></tr>";
  for (const s of state.heldOut) {
    const tr = document.createElement("tr");
    for (const text of [String(s.row.prompt ?? "").slice(0, 60), s.chosen, s.rejected]) {
      const td = document.createElement("td");
      td.textContent = typeof text === "number" ? text.toFixed(5) : text;
      tr.append(td);
    }
    table.append(tr);
  }
}

function fail(error: unknown): void {
  state.error = (error as Error).message;
  setStatus("error", `Error: ${state.error}`);
  startButton.disabled = false;
  console.error(error);
}

startButton.onclick = () => start().catch(fail);
pauseButton.onclick = () => paused = true;
downloadButton.onclick = () => download().catch(fail);
setStatus("ready", "Ready: choose a loss and press Start");
