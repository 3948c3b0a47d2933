/**
 * Numerically careful building blocks for ORPO's log-odds. ONNX has no `expm1` or `log1p`, so
 * these are built here from where-selected branches whose unselected side never feeds a NaN into
 * a gradient.
 *
 * @module
 */
import { div, type Tensor, where } from "../graph/mod.ts";

/** `e^x − 1`, accurate near 0 (value only: no gradient flows through it). */
function expm1(x: Tensor): Tensor {
  const u = x.exp();
  const one = u.eq(1);
  // Kahan's trick: u − 1 is exact near 1 and log u has the same rounding, so their ratio is
  // accurate to a few ulps where u − 1 alone has lost all digits.
  const kahan = where(one, x, u.sub(1).mul(x).div(where(one, 1, u.log())));
  return where(x.abs().lt(0.5), kahan, u.sub(1)).stopGradient();
}

/** `log(1 + y)` for y > −1, accurate near 0 (value only). */
function log1p(y: Tensor): Tensor {
  const u = y.add(1);
  const one = u.eq(1);
  return where(one, y, u.log().mul(y).div(where(one, 1, u.sub(1)))).stopGradient();
}

/**
 * `log(1 − e^x)` for x < 0, accurate in value and gradient at both ends (Mächler 2012, "Accurately
 * computing log(1 − exp(−|a|))"): near 0 via `log(−expm1(x))`, below −ln 2 via `log1p(−e^x)`.
 *
 * The gradient `−1 / expm1(−x)` is attached exactly (value and slope are computed separately and
 * joined as `v + (x − x̄)·v′` with x̄, v, v′ gradient-free), so it is ≈ 1/x near 0 and ≈ −e^x,
 * never NaN, for very negative x.
 *
 * @param x Strictly negative values (0 gives −∞ and a NaN gradient).
 * @returns `log(1 − e^x)`.
 */
export function log1mexp(x: Tensor): Tensor {
  const value = where(x.gt(-Math.LN2), expm1(x).neg().log(), log1p(x.exp().neg()));
  const slope = div(-1, expm1(x.neg()));
  return value.stopGradient().add(x.sub(x.stopGradient()).mul(slope.stopGradient()));
}
