import assert from "node:assert/strict";
import { learningRate } from "../../trainer/schedule.ts";
import { resolveConfig } from "../../trainer/config.ts";
import { scheduleOf } from "../../trainer/run_config.ts";

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

Deno.test("scheduleOf() reads HF's cosine_with_min_lr: a cosine from the peak to min_lr_rate × peak", () => {
  const settings = (kwargs: Record<string, number>) =>
    resolveConfig({
      yaml: {
        max_steps: 10,
        warmup_steps: 0,
        learning_rate: 2,
        lr_scheduler_type: "cosine_with_min_lr",
        lr_scheduler_kwargs: kwargs,
      },
    }).config;
  // HF: factor = 0.5·(1 + cos(π·p)); rate = peak·(factor·(1 − r) + r). At p = ½: 2·(0.5·0.9 + 0.1).
  for (const kwargs of [{ min_lr_rate: 0.1 }, { min_lr: 0.2 }] as Record<string, number>[]) {
    const s = scheduleOf(settings(kwargs), 10);
    assert.ok(Math.abs(learningRate(s, 5) - 1.1) < 1e-12, `${JSON.stringify(kwargs)} at 5`);
    assert.ok(Math.abs(learningRate(s, 10) - 0.2) < 1e-12, `${JSON.stringify(kwargs)} at 10`);
  }
  assert.throws(() => scheduleOf(settings({}), 10), /set one of min_lr_rate and min_lr/);
});
