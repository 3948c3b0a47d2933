import assert from "node:assert/strict";
import { panelsFromRows, renderSvg } from "../../trainer/plot.ts";

Deno.test("renderSvg() draws one path per run and panel, with a legend", () => {
  const rows = (f: (s: number) => number) =>
    [1, 2, 3].map((step) => ({ step, loss: f(step), "rewards/accuracies": f(step) / 2 }));
  const panels = panelsFromRows({ dpo: rows((s) => 1 / s), ipo: rows((s) => 2 / s) }, [
    "loss",
    "rewards/accuracies",
  ]);
  const svg = renderSvg(panels, "compare <runs>");
  assert.equal(svg.match(/stroke-width="1.5"/g)?.length, 4);
  assert.match(svg, />dpo</);
  assert.match(svg, />ipo</);
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
