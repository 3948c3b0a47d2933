/**
 * Training curves as a self-contained SVG: a grid of panels, one metric each with its own axis,
 * one line per run. Training series are drawn raw and faint with an exponential moving average
 * on top (TensorBoard's debiased EMA, its weight scaled to the number of points: none below
 * {@link MIN_SMOOTHED}, so a short run's few points are not dragged behind); held-out series as
 * dashed lines with a marker per evaluation. Axes carry labels and round ticks (1, 2 or 5 × 10ᵏ);
 * accuracies span 0–1 with a dotted line at chance (0.5). No plotting dependency: an SVG is text,
 * opens in any browser and renders on GitHub.
 *
 * @module
 */

/** One line: a run's values of a metric by step. */
export interface Series {
  /** Legend label. */
  name: string;
  /** (step, value) points, in step order. */
  points: [number, number][];
  /**
   * `train`: noisy per-step values, smoothed; `eval`: few points, marked; `exact`: a plain line
   * (a schedule, nothing to smooth). @default "train"
   */
  kind?: "train" | "eval" | "exact";
}

/** One panel: a metric and its lines. */
export interface Panel {
  /** Panel title. */
  title: string;
  /** Y-axis label. @default the title */
  yLabel?: string;
  /** Fixed y range, e.g. [0, 1] for accuracies. @default the data's, rounded out to ticks */
  range?: [number, number];
  /** A dotted horizontal line, e.g. chance (0.5) on accuracy panels. @default none */
  chance?: number;
  /** Lines drawn in it. */
  series: Series[];
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"];
/** Panel size and its plot area's margins. */
const [W, H] = [340, 250];
const [LEFT, RIGHT, TOP, BOTTOM] = [58, 14, 26, 40];
/** Panels per row. */
const COLUMNS = 3;
/** Fewer training points than this are drawn unsmoothed. */
const MIN_SMOOTHED = 20;

/**
 * Draws panels in a grid with one shared legend.
 *
 * @param panels Metrics to draw.
 * @param title Figure title.
 * @returns SVG document text.
 * @example
 * ```ts
 * import { renderSvg } from "./plot.ts";
 * const svg = renderSvg([{ title: "loss", series: [{ name: "dpo", points: [[1, 0.7], [2, 0.5]] }] }]);
 * if (!svg.startsWith("<svg") || !svg.includes(">step<")) throw new Error("unexpected");
 * ```
 */
export function renderSvg(panels: Panel[], title = ""): string {
  const names = [...new Set(panels.flatMap((p) => p.series.map((s) => s.name)))];
  const color = (name: string) => COLORS[names.indexOf(name) % COLORS.length];
  const head = title ? 30 : 6;
  const columns = Math.max(1, Math.min(COLUMNS, panels.length));
  const rows = Math.max(1, Math.ceil(panels.length / columns));
  const body = panels.map((p, i) => {
    const [x, y] = [(i % columns) * W, head + Math.floor(i / columns) * H];
    return `<g transform="translate(${x},${y})">${panel(p, color)}</g>`;
  }).join("");
  const legendY = head + rows * H + 6;
  const legend = names.map((n, i) =>
    `<g transform="translate(${LEFT + i * 120},${legendY})">` +
    `<rect width="14" height="3" y="6" fill="${color(n)}"/>` +
    `<text x="19" y="11" font-size="12">${escape(n)}</text></g>`
  ).join("");
  const key = `<text x="${columns * W - RIGHT}" y="${legendY + 11}" font-size="11" ` +
    `text-anchor="end" fill="#555">solid: training (EMA over ~1/${MIN_SMOOTHED} of the ` +
    `points, raw faint); dashed with dots: held-out</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${columns * W}" ` +
    `height="${legendY + 24}" font-family="DejaVu Sans, Arial, sans-serif">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    (title ? `<text x="${LEFT}" y="20" font-size="15">${escape(title)}</text>` : "") +
    body + legend + key + "</svg>\n";
}

function panel(p: Panel, color: (name: string) => string): string {
  const caption = `<text x="${LEFT}" y="16" font-size="13" font-weight="bold">${
    escape(p.title)
  }</text>`;
  const all = p.series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y));
  if (all.length === 0) {
    return caption + `<text x="${LEFT}" y="${H / 2}" font-size="12" fill="#888">no data</text>`;
  }
  const [xLo, xHi] = extent(all.map(([x]) => x));
  const [yLo, yHi] = p.range ?? extent(all.map(([, y]) => y));
  const [xs, ys] = [niceTicks(xLo, xHi), niceTicks(yLo, yHi)];
  const [x0, x1] = [xs[0], xs.at(-1)!], [y0, y1] = [ys[0], ys.at(-1)!];
  const [px0, px1, py0, py1] = [LEFT, W - RIGHT, H - BOTTOM, TOP];
  const sx = (x: number) => px0 + ((x - x0) / (x1 - x0 || 1)) * (px1 - px0);
  const sy = (y: number) => py0 - ((y - y0) / (y1 - y0 || 1)) * (py0 - py1);
  const grid =
    ys.map((y) =>
      `<line x1="${px0}" x2="${px1}" y1="${sy(y)}" y2="${sy(y)}" stroke="#eee"/>` +
      `<text x="${px0 - 5}" y="${sy(y) + 4}" font-size="11" text-anchor="end">${fmt(y)}</text>`
    ).join("") + xs.map((x) =>
      `<text x="${sx(x)}" y="${py0 + 15}" font-size="11" text-anchor="middle">${fmt(x)}</text>`
    ).join("");
  const axes = `<path d="M${px0},${py1}V${py0}H${px1}" fill="none" stroke="#444"/>` +
    `<text x="${(px0 + px1) / 2}" y="${H - 8}" font-size="12" text-anchor="middle">step</text>` +
    `<text transform="translate(13,${(py0 + py1) / 2}) rotate(-90)" font-size="12" ` +
    `text-anchor="middle">${escape(p.yLabel ?? p.title)}</text>`;
  const path = (points: [number, number][]) =>
    points.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
  const lines = p.series.map((s) => {
    const points = s.points.filter(([, y]) => Number.isFinite(y));
    const c = color(s.name);
    if (s.kind === "eval") {
      return `<path d="${path(points)}" fill="none" stroke="${c}" stroke-width="1.5" ` +
        `stroke-dasharray="5,3"/>` + points.map(([x, y]) =>
          `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3.5" fill="white" ` +
          `stroke="${c}" stroke-width="1.8"/>`
        ).join("");
    }
    if (s.kind === "exact") {
      return `<path d="${path(points)}" fill="none" stroke="${c}" stroke-width="2"/>`;
    }
    return `<path d="${path(points)}" fill="none" stroke="${c}" stroke-width="1" ` +
      `stroke-opacity="0.25"/>` +
      `<path d="${path(ema(points, smoothingFor(points.length)))}" fill="none" stroke="${c}" ` +
      `stroke-width="2"/>`;
  }).join("");
  const chance = p.chance === undefined
    ? ""
    : `<line x1="${px0}" x2="${px1}" y1="${sy(p.chance)}" y2="${
      sy(p.chance)
    }" stroke="#888" stroke-dasharray="2,3"/>` +
      `<text x="${px1 - 2}" y="${sy(p.chance) - 3}" font-size="10" text-anchor="end" ` +
      `fill="#888">chance</text>`;
  return caption + grid + axes + chance + `<g>${lines}</g>`;
}

/**
 * The EMA weight for a series of `n` points: 0 (raw) below {@link MIN_SMOOTHED} points, then
 * 1 − 20/n, an average over about a twentieth of the run (TensorBoard's default 0.8 at 100
 * points), so the smoothed line lags a fixed share of the run, never whole evaluations.
 *
 * @param n Points in the series.
 * @returns The weight of the past, in [0, 1).
 * @example
 * ```ts
 * import { smoothingFor } from "./plot.ts";
 * if (smoothingFor(12) !== 0 || smoothingFor(100) !== 0.8) throw new Error("unexpected");
 * ```
 */
export function smoothingFor(n: number): number {
  return n < MIN_SMOOTHED ? 0 : 1 - MIN_SMOOTHED / n;
}

/**
 * TensorBoard's debiased exponential moving average: early points are not pulled towards 0.
 *
 * @param points (x, y) points in x order.
 * @param smoothing Weight of the past, in [0, 1).
 * @returns The smoothed points.
 * @example
 * ```ts
 * import { ema } from "./plot.ts";
 * const s = ema([[1, 1], [2, 3]], 0.5);
 * // debiased: (0.5·0.5·1 + 0.5·3) / (1 − 0.5²) = 7/3
 * if (s[0][1] !== 1 || Math.abs(s[1][1] - 7 / 3) > 1e-12) throw new Error("unexpected");
 * ```
 */
export function ema(points: [number, number][], smoothing: number): [number, number][] {
  let last = 0;
  return points.map(([x, y], i) => {
    last = last * smoothing + (1 - smoothing) * y;
    return [x, last / (1 - smoothing ** (i + 1))];
  });
}

/**
 * Round ticks covering [lo, hi]: 1, 2 or 5 × 10ᵏ apart, about five of them.
 *
 * @param lo Smallest value.
 * @param hi Largest value.
 * @returns Tick values from at or below `lo` to at or above `hi`.
 * @example
 * ```ts
 * import { niceTicks } from "./plot.ts";
 * if (niceTicks(0.095, 0.807).join() !== "0,0.2,0.4,0.6,0.8,1") throw new Error("unexpected");
 * ```
 */
export function niceTicks(lo: number, hi: number): number[] {
  if (lo === hi) [lo, hi] = [lo - (Math.abs(lo) || 1) / 2, hi + (Math.abs(hi) || 1) / 2];
  const raw = (hi - lo) / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  // Multiplying integers by the step (not adding) keeps 0.1 + 0.2 rounding out of the labels.
  return Array.from({ length: last - first + 1 }, (_, i) => +((first + i) * step).toPrecision(12));
}

function extent(values: number[]): [number, number] {
  return [
    values.reduce((lo, v) => Math.min(lo, v), Infinity),
    values.reduce((hi, v) => Math.max(hi, v), -Infinity),
  ];
}

function fmt(v: number): string {
  if (v === 0) return "0";
  return Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3 ? v.toExponential(0) : String(v);
}

function escape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * The panels of runs' `metrics.jsonl` rows: one per metric, one series per run.
 *
 * @param runs Rows per run name (each row has `step` and metric values).
 * @param metrics Metric names, one panel each.
 * @param kind How to draw them (see {@linkcode Series}).
 * @returns Panels ready for {@linkcode renderSvg}; accuracies get the range [0, 1] and a chance
 *   line at 0.5.
 */
export function panelsFromRows(
  runs: Record<string, Record<string, number>[]>,
  metrics: string[],
  kind: Series["kind"] = "train",
): Panel[] {
  return metrics.map((title) => ({
    title,
    ...(/accurac/.test(title) ? { range: [0, 1] as [number, number], chance: 0.5 } : {}),
    series: Object.entries(runs).map(([name, rows]) => ({
      name,
      kind,
      points: rows.filter((r) => typeof r[title] === "number").map((r) => [r.step, r[title]]),
    })),
  }));
}
