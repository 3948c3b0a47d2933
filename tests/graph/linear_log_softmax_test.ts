/** The chunked LM-head log-probs: value, float64 gradients, and no rows × V tensor. */
import assert from "node:assert/strict";
import { grad, type HostTensor, input, linearLogSoftmaxAt, reachable } from "../../graph/mod.ts";
import { Program } from "../../runtime/mod.ts";
import { gradcheck, rng } from "./_gradcheck.ts";

const labels = [9, 0, 4, 3, 9, 7]; // rows 2×3 over V = 10: first, last and middle chunks

Deno.test("linearLogSoftmaxAt() equals log softmax(h Wᵀ) at the labels, in float64", async () => {
  const random = rng(3);
  const hData = Array.from({ length: 6 * 4 }, () => random() * 4 - 2);
  const wData = Array.from({ length: 10 * 4 }, () => random() * 4 - 2);
  const h = input("h", [2, 3, 4], "float64");
  const w = input("w", [10, 4], "float64");
  const y = input("y", [2, 3], "int64");
  const program = await Program.compile({ logp: linearLogSoftmaxAt(h, w, y, { chunk: 3 }) });
  const feeds: Record<string, HostTensor> = {
    h: { dtype: "float64", shape: [2, 3, 4], data: Float64Array.from(hData) },
    w: { dtype: "float64", shape: [10, 4], data: Float64Array.from(wData) },
    y: { dtype: "int64", shape: [2, 3], data: BigInt64Array.from(labels, BigInt) },
  };
  const { logp } = await program.run(feeds);
  await program.release();
  // Worked in plain JavaScript: z = W h, log p = z_y − log Σ e^z.
  for (let r = 0; r < 6; r++) {
    const z = Array.from(
      { length: 10 },
      (_, v) => [0, 1, 2, 3].reduce((s, d) => s + hData[r * 4 + d] * wData[v * 4 + d], 0),
    );
    const expected = z[labels[r]] - Math.log(z.reduce((s, v) => s + Math.exp(v), 0));
    const got = logp.data[r] as number;
    assert.ok(Math.abs(got - expected) < 1e-12, `row ${r}: ${got} vs ${expected}`);
  }
});

Deno.test("linearLogSoftmaxAt() gradients match float64 finite differences", async () => {
  const f = (
    h: ReturnType<typeof input>,
    w: ReturnType<typeof input>,
    y: ReturnType<typeof input>,
  ) => linearLogSoftmaxAt(h, w, y, { chunk: 3 });
  const worst = await gradcheck(f, [
    { shape: [2, 3, 4], declared: ["N", "T", 4] },
    { shape: [10, 4] },
    { shape: [2, 3], declared: ["N", "T"], constant: { dtype: "int64", data: labels } },
  ]);
  assert.ok(worst < 1e-6);
});

Deno.test("linearLogSoftmaxAt() keeps no rows × V tensor: the largest per-row block is a chunk", () => {
  const h = input("h", ["M", 4]);
  const w = input("w", [10, 4]);
  const logp = linearLogSoftmaxAt(h, w, input("y", ["M"], "int64"), { chunk: 3 });
  const [dh, dw] = grad(logp.sum(), [h, w]);
  const perRow = (shape: readonly (number | string)[]) =>
    shape.includes("M") ? shape.filter((d) => d !== "M").reduce<number>((a, d) => a * +d, 1) : 0;
  const widest = Math.max(...reachable([logp, dh, dw]).map((t) => perRow(t.shape)));
  assert.equal(widest, 4, "rows carry at most D = 4 values (chunks 3): no 10-wide logits");
});
