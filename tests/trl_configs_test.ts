/**
 * TRL 1.13 recipes run unchanged: tests/fixtures/trl/*.yaml hold only TRL keys (TrlParser accepts
 * each: tools/dump_trl_configs.py), and train() reads them on the tiny model.
 */
import assert from "node:assert/strict";
import { train } from "../train.ts";

const cacheDir = await Deno.makeTempDir({ prefix: "da-cache-" });
Deno.env.set("DA_CACHE_DIR", cacheDir);

async function trainQuietly(args: string[]) {
  const out = await Deno.makeTempDir({ prefix: "da-trl-" });
  const result = await train([...args, "--output_dir", out], { quiet: true });
  await Deno.remove(out, { recursive: true });
  return result;
}

const recipes = [
  { file: "dpo.yaml", loss: "dpo", values: { beta: 0.1, lr_scheduler_type: "cosine" } },
  { file: "kto.yaml", loss: "kto", values: { desirable_weight: 1, eval_strategy: "no" } },
  { file: "cpo_simpo.yaml", loss: "simpo", values: { beta: 2, simpo_gamma: 0.5, cpo_alpha: 0 } },
];
for (const { file, loss, values } of recipes) {
  Deno.test(`train() runs TRL's ${file} on the tiny model as loss ${loss}`, async () => {
    const { config, rows } = await trainQuietly(["--config", `tests/fixtures/trl/${file}`]);
    assert.equal(config.loss, loss);
    const resolved: Record<string, unknown> = config;
    for (const [key, value] of Object.entries(values)) assert.equal(resolved[key], value, key);
    const trainRows = rows.filter((r) => "loss" in r);
    assert.deepEqual(trainRows.map((r) => r.step), [1, 2, 3]);
    assert.ok(trainRows.every((r) => Number.isFinite(r.loss)));
  });
}

Deno.test("train() --loss orpo --beta sets ORPO's λ: loss = NLL − β·mean log σ(log-odds ratio)", async () => {
  // One step from the same weights and batch: the NLL and the odds ratio are the same in both
  // runs, so the losses differ by exactly (0.5 − 0.1)·log_odds_ratio.
  const args = ["--loss", "orpo", "--max_steps", "1", "--eval_strategy", "no"];
  const [low, high] = await Promise.all([0.1, 0.5].map(async (beta) => {
    const { rows } = await trainQuietly([...args, "--beta", String(beta)]);
    return rows.find((r) => "loss" in r)!;
  }));
  assert.equal(high.nll_loss, low.nll_loss);
  assert.equal(high.log_odds_ratio, low.log_odds_ratio);
  const expected = -(0.5 - 0.1) * low.log_odds_ratio;
  const got = high.loss - low.loss;
  assert.ok(Math.abs(got - expected) < 1e-5, `loss difference ${got}, expected ${expected}`);
  assert.ok(Math.abs(got) > 1e-3, "β changed nothing");
});

Deno.test("train() with loss_type [sigmoid, sft] and loss_weights [0.8, 0.2] trains on 0.8·DPO + 0.2·NLL", async () => {
  // TRL's RPO-style recipe: the YAML lists as TRL's DPOConfig takes them.
  const dir = await Deno.makeTempDir({ prefix: "da-rpo-" });
  const recipe = `${dir}/rpo.yaml`;
  await Deno.writeTextFile(
    recipe,
    (await Deno.readTextFile("configs/tiny.yaml")) +
      "loss_type: [sigmoid, sft]\nloss_weights: [0.8, 0.2]\n",
  );
  const args = ["--max_steps", "2", "--eval_strategy", "no"];
  const [both, dpo, sft] = await Promise.all([
    trainQuietly(["--config", recipe, ...args]),
    trainQuietly(["--loss", "dpo", ...args]),
    trainQuietly(["--loss", "sft", ...args]),
  ]);
  await Deno.remove(dir, { recursive: true });
  assert.equal(both.config.loss, "dpo+sft");
  // Step 1's loss is computed before any update, from the same weights and batch in all three.
  const first = (r: typeof both) => r.rows.find((row) => row.step === 1)!.loss;
  const want = 0.8 * first(dpo) + 0.2 * first(sft);
  assert.ok(
    Math.abs(first(both) - want) <= 1e-6 * want,
    `dpo+sft ${first(both)} vs 0.8·${first(dpo)} + 0.2·${first(sft)} = ${want}`,
  );
  assert.ok(Number.isFinite(both.rows.find((row) => row.step === 2)!.loss));
});
