import assert from "node:assert/strict";
import { createRequire } from "node:module";
// Test-only: named here, not in deno.json, so `deno task train` does not install it.
// deno-lint-ignore no-import-prefix
import { initWasm, Resvg } from "npm:@resvg/resvg-wasm@2.6.2";
import { ema, niceTicks, panelsFromRows, renderSvg } from "../../trainer/plot.ts";

/** The d attributes of the svg's paths drawn with stroke-width `w`. */
const paths = (svg: string, w: string) =>
  [...svg.matchAll(new RegExp(`<path d="([^"]*)"[^>]*stroke-width="${w}"`, "g"))].map((m) => m[1]);

Deno.test("niceTicks() gives round steps of 1, 2 or 5 × 10ᵏ covering the range", () => {
  assert.deepEqual(niceTicks(0.095, 0.807), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0, 60), [0, 20, 40, 60]);
  assert.deepEqual(niceTicks(-14.5, 3), [-15, -10, -5, 0, 5]);
  assert.deepEqual(niceTicks(1e-6, 5e-4), [0, 1e-4, 2e-4, 3e-4, 4e-4, 5e-4]);
  assert.deepEqual(niceTicks(2, 2), [1, 1.5, 2, 2.5, 3]);
});

Deno.test("ema() is TensorBoard's debiased moving average", () => {
  const ys = [4, 0, 2, 2];
  // Independent form: a weighted mean of the points so far, weights s^(age), normalised.
  const expected = ys.map((_, i) => {
    const w = ys.slice(0, i + 1).map((_, j) => 0.8 ** (i - j));
    return ys.slice(0, i + 1).reduce((a, y, j) => a + w[j] * y, 0) / w.reduce((a, b) => a + b);
  });
  const got = ema(ys.map((y, i) => [i, y]), 0.8).map(([, y]) => y);
  got.forEach((y, i) => assert.ok(Math.abs(y - expected[i]) < 1e-12, `${y} vs ${expected[i]}`));
});

const rows = (f: (s: number) => number) =>
  [1, 2, 3, 4].map((step) => ({ step, loss: f(step), "rewards/accuracies": f(step) / 4 }));

Deno.test("renderSvg() labels axes, smooths training lines and marks held-out points", () => {
  const train = panelsFromRows({ dpo: rows((s) => 1 / s), ipo: rows((s) => 2 / s) }, [
    "loss",
    "rewards/accuracies",
  ]);
  const held = panelsFromRows({ dpo: rows((s) => s / 8) }, ["loss"], "eval");
  const svg = renderSvg([...train, ...held], "compare <runs>");
  assert.equal(svg.match(/>step</g)?.length, 3);
  assert.equal(svg.match(/stroke-opacity="0.25"/g)?.length, 4); // raw, faint
  assert.equal(svg.match(/stroke-width="2"/g)?.length, 4); // their EMAs
  assert.equal(svg.match(/<circle /g)?.length, 4); // one marker per held-out point
  assert.deepEqual(train[1].range, [0, 1]); // accuracies span 0–1
  assert.match(svg, /compare &lt;runs&gt;/);
  assert.ok(!svg.includes("NaN"));
});

Deno.test("renderSvg() skips non-finite values and marks empty panels", () => {
  const svg = renderSvg([
    { title: "loss", series: [{ name: "a", points: [[1, NaN], [2, 1], [3, 0.5]] }] },
    { title: "empty", series: [] },
  ]);
  assert.ok(!svg.includes("NaN"));
  assert.match(svg, /no data/);
});

Deno.test("renderSvg() output renders to a PNG with each run's line in its colour", async () => {
  const wasm = createRequire(import.meta.url).resolve("@resvg/resvg-wasm/index_bg.wasm");
  await initWasm(await Deno.readFile(wasm));
  const panels = panelsFromRows({ dpo: rows((s) => 1 / s), ipo: rows((s) => 2 / s) }, ["loss"]);
  const image = new Resvg(renderSvg(panels, "loss")).render();
  const png = image.asPng();
  assert.deepEqual([...png.slice(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
  const pixels = image.pixels; // a copy out of wasm memory on each access: take it once
  const count = (rgb: [number, number, number]) => {
    let n = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      const d = [0, 1, 2].map((c) => Math.abs(pixels[i + c] - rgb[c]));
      if (Math.max(...d) < 8) n++;
    }
    return n;
  };
  assert.ok(count([0x1f, 0x77, 0xb4]) > 50, "dpo's blue line"); // COLORS[0]
  assert.ok(count([0xd6, 0x27, 0x28]) > 50, "ipo's red line"); // COLORS[1]
});

Deno.test("renderSvg() smooths only series long enough to need it, and marks chance on accuracies", () => {
  const noisy = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ step: i + 1, loss: i % 2, "rewards/accuracies": 0.9 }));
  const short = renderSvg(panelsFromRows({ dpo: noisy(12) }, ["loss"]));
  // Below 20 points the solid line is the raw line: an EMA would lag the few points there are.
  assert.deepEqual(paths(short, "2"), paths(short, "1"));
  const long = renderSvg(panelsFromRows({ dpo: noisy(200) }, ["loss"]));
  assert.notDeepEqual(paths(long, "2"), paths(long, "1"));
  const accuracy = renderSvg(panelsFromRows({ dpo: noisy(5) }, ["rewards/accuracies", "loss"]));
  assert.equal(accuracy.match(/>chance</g)?.length, 1); // on the accuracy panel only
});
