/**
 * Training curves as a self-contained SVG: one panel per metric, one line per run. No plotting
 * dependency — an SVG is text, opens in any browser and renders on GitHub.
 *
 * @module
 */

/** One line: a run's values of a metric by step. */
export interface Series {
  /** Legend label. */
  name: string;
  /** (step, value) points, in step order. */
  points: [number, number][];
}

/** One panel: a metric and its lines. */
export interface Panel {
  /** Panel title (the metric name). */
  title: string;
  /** Lines drawn in it. */
  series: Series[];
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"];
const [W, H, PAD] = [360, 240, 44];

/**
 * Draws panels side by side.
 *
 * @param panels Metrics to draw.
 * @param title Figure title.
 * @returns SVG document text.
 * @example
 * ```ts
 * import { renderSvg } from "./plot.ts";
 * const svg = renderSvg([{ title: "loss", series: [{ name: "dpo", points: [[1, 0.7], [2, 0.5]] }] }]);
 * if (!svg.startsWith("<svg")) throw new Error("unexpected");
 * ```
 */
export function renderSvg(panels: Panel[], title = ""): string {
  const names = [...new Set(panels.flatMap((p) => p.series.map((s) => s.name)))];
  const color = (name: string) => COLORS[names.indexOf(name) % COLORS.length];
  const top = title ? 28 : 8;
  const legend = names.map((n, i) =>
    `<g transform="translate(${PAD + i * 110},${top + H + 8})">` +
    `<rect width="12" height="3" y="5" fill="${color(n)}"/>` +
    `<text x="16" y="11" font-size="11">${escape(n)}</text></g>`
  ).join("");
  const body = panels.map((p, i) =>
    `<g transform="translate(${i * W},${top})">${panel(p, color)}</g>`
  ).join("");
  const width = Math.max(1, panels.length) * W;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${top + H + 28}" ` +
    `font-family="sans-serif">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    (title ? `<text x="${PAD}" y="18" font-size="14">${escape(title)}</text>` : "") +
    body + legend + "</svg>\n";
}

function panel(p: Panel, color: (name: string) => string): string {
  const all = p.series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y));
  if (all.length === 0) return `<text x="${PAD}" y="${H / 2}" font-size="11">no data</text>`;
  const [x0, x1] = extent(all.map(([x]) => x));
  const [y0, y1] = extent(all.map(([, y]) => y));
  const sx = (x: number) => PAD + ((x - x0) / (x1 - x0 || 1)) * (W - PAD - 12);
  const sy = (y: number) => H - PAD + 20 - ((y - y0) / (y1 - y0 || 1)) * (H - PAD - 8);
  const lines = p.series.map((s) => {
    const d = s.points.filter(([, y]) => Number.isFinite(y))
      .map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
    return `<path d="${d}" fill="none" stroke="${color(s.name)}" stroke-width="1.5"/>`;
  }).join("");
  const ticks = [y0, (y0 + y1) / 2, y1].map((y) =>
    `<text x="${PAD - 4}" y="${sy(y) + 4}" font-size="10" text-anchor="end">${fmt(y)}</text>`
  ).join("");
  const xTicks = [x0, x1].map((x) =>
    `<text x="${sx(x)}" y="${H - 6}" font-size="10" text-anchor="middle">${fmt(x)}</text>`
  ).join("");
  const axes = `<path d="M${PAD},8V${H - 24}H${W - 12}" fill="none" stroke="#888"/>`;
  return `<text x="${PAD}" y="4" font-size="12" dominant-baseline="hanging">${
    escape(p.title)
  }</text>${axes}${ticks}${xTicks}${lines}`;
}

function extent(values: number[]): [number, number] {
  return [
    values.reduce((lo, v) => Math.min(lo, v), Infinity),
    values.reduce((hi, v) => Math.max(hi, v), -Infinity),
  ];
}

function fmt(v: number): string {
  return Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0)
    ? v.toExponential(1)
    : +v.toFixed(3) + "";
}

function escape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * The panels of a run's `metrics.jsonl` rows for the given metric names.
 *
 * @param runs Rows per run name (each row has `step` and metric values).
 * @param metrics Metric names, one panel each.
 * @returns Panels ready for {@linkcode renderSvg}.
 */
export function panelsFromRows(
  runs: Record<string, Record<string, number>[]>,
  metrics: string[],
): Panel[] {
  return metrics.map((title) => ({
    title,
    series: Object.entries(runs).map(([name, rows]) => ({
      name,
      points: rows.filter((r) => typeof r[title] === "number").map((r) => [r.step, r[title]]),
    })),
  }));
}
