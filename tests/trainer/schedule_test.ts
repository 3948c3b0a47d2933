import assert from "node:assert/strict";
import { learningRate } from "../../trainer/schedule.ts";

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);

Deno.test("learningRate() warms up linearly from 0", () => {
  const s = { peak: 2e-5, total: 100, warmup: 10, kind: "constant" as const };
  close(learningRate(s, 0), 0);
  close(learningRate(s, 5), 1e-5);
  close(learningRate(s, 10), 2e-5);
  close(learningRate(s, 99), 2e-5);
});

Deno.test("learningRate() decays linearly and by half cosine to 0", () => {
  const linear = { peak: 1, total: 110, warmup: 10, kind: "linear" as const };
  close(learningRate(linear, 60), 0.5);
  close(learningRate(linear, 110), 0);
  const cosine = { ...linear, kind: "cosine" as const };
  close(learningRate(cosine, 60), 0.5); // cos(π/2) halfway
  close(learningRate(cosine, 35), 0.5 * (1 + Math.cos(Math.PI / 4)));
  close(learningRate(cosine, 110), 0);
});
