/**
 * The numerical helpers of algorithms/_math.ts: `logSigmoid` finite everywhere, and `log1mexp`
 * accurate in value and gradient near 0 and for very negative inputs, in float64 (against
 * Math.log(−Math.expm1(x)) and its derivative) and float32 (against the same, to float32
 * precision). Tolerances: 4e-16 relative in float64, 3e-7 relative in float32.
 */
import { ok } from "node:assert/strict";
import { log1mexp } from "../../algorithms/_math.ts";
import { logSigmoid } from "../../graph/mod.ts";
import { type DType, grad, input } from "../../graph/mod.ts";
import { Program } from "../../runtime/mod.ts";
import { gradcheck } from "../graph/_gradcheck.ts";
import { assertClose } from "./_check.ts";
import * as ref from "./_reference.ts";

async function valuesAndGrads(f: typeof log1mexp, xs: number[], dtype: DType) {
  const x = input("x", ["N"], dtype);
  const y = f(x);
  const [dx] = grad(y.sum(), [x]);
  const p = await Program.compile({ y, dx });
  const data = dtype === "float32" ? Float32Array.from(xs) : Float64Array.from(xs);
  const out = await p.run({ x: { dtype, shape: [xs.length], data } });
  await p.release();
  return {
    y: Array.from(out.y.data, Number),
    dx: Array.from(out.dx.data, Number),
    x: Array.from(data),
  };
}

const relClose = (got: number, want: number, tol: number, what: string) => {
  const diff = Math.abs(got - want) / Math.max(Math.abs(want), Number.MIN_VALUE);
  if (!(diff <= tol) && !(got === want)) {
    throw new Error(`${what}: got ${got}, expected ${want}, relative ${diff} > ${tol}`);
  }
};

const POINTS = [-1e-30, -1e-12, -1e-6, -1e-3, -0.3, -0.6931, -0.6932, -1, -5, -30, -80, -700];

Deno.test("log1mexp() matches Math.expm1/log1p values and the derivative −1/expm1(−x) in float64", async () => {
  const { y, dx, x } = await valuesAndGrads(log1mexp, POINTS, "float64");
  x.forEach((xi, i) => {
    relClose(y[i], ref.log1mexp(xi), 4e-16, `log1mexp(${xi})`);
    relClose(dx[i], -1 / Math.expm1(-xi), 4e-16, `log1mexp'(${xi})`);
  });
});

Deno.test("log1mexp() is accurate to float32 precision near 0 and finite far below", async () => {
  const { y, dx, x } = await valuesAndGrads(
    log1mexp,
    [...POINTS.slice(1, -1), -100, -1e4],
    "float32",
  );
  x.forEach((xi, i) => {
    ok(Number.isFinite(y[i]) && Number.isFinite(dx[i]), `finite at ${xi}: ${y[i]}, ${dx[i]}`);
    if (xi >= -80) {
      relClose(y[i], ref.log1mexp(xi), 3e-7, `log1mexp(${xi})`);
      relClose(dx[i], -1 / Math.expm1(-xi), 3e-7, `log1mexp'(${xi})`);
    }
  });
});

Deno.test("log1mexp() gradient matches finite differences in float64", async () => {
  await gradcheck((x) => log1mexp(x.abs().neg()), [{
    shape: [6],
    data: [-1e-3, -0.2, -0.69, -0.7, -3, -20],
  }], {
    h: 1e-9,
    tol: 1e-6,
  });
});

Deno.test("logSigmoid() is finite with the right slope for |x| beyond float64's e^x range", async () => {
  const xs = [-1e4, -800, -30, -1e-3, 0, 1e-3, 30, 800, 1e4];
  for (const dtype of ["float64", "float32"] as const) {
    const { y, dx } = await valuesAndGrads(logSigmoid, xs, dtype);
    xs.forEach((x, i) => {
      const tol = dtype === "float64" ? 1e-15 : 1e-7;
      assertClose(y[i], ref.logSigmoid(x), tol, `${dtype} logσ(${x})`);
      assertClose(dx[i], ref.sigmoid(-x), tol, `${dtype} logσ'(${x})`);
    });
  }
  await gradcheck((x) => logSigmoid(x), [{ shape: [6], data: [-40, -2, -0.1, 0.1, 2, 40] }]);
});
