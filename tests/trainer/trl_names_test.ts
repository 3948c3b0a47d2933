/**
 * The key table against TRL 1.13 itself: trainer/trl_defaults.json is dumped from TRL's and
 * transformers' config classes by tools/dump_trl_configs.py.
 */
import assert from "node:assert/strict";
import { ALIASES, KEYS, type KeySpec } from "../../trainer/config.ts";
import trl from "../../trainer/trl_defaults.json" with { type: "json" };

/** Every TRL key with its defaults and the classes they come from. */
const TRL = new Map<string, { owner: string; value: unknown }[]>();
for (const [owner, fields] of Object.entries(trl.classes)) {
  for (const [key, value] of Object.entries(fields)) {
    TRL.set(key, [...TRL.get(key) ?? [], { owner, value }]);
  }
}
const table = Object.entries(KEYS) as [string, KeySpec][];

Deno.test("trl_defaults.json is TRL 1.13 and transformers 5.17", () => {
  assert.match(trl.versions.trl, /^1\.13\./);
  assert.match(trl.versions.transformers, /^5\.17\./);
  assert.ok(TRL.has("per_device_train_batch_size") && TRL.has("simpo_gamma"));
  assert.ok(!TRL.has("warmup_ratio"), "transformers 5.17 dropped warmup_ratio");
  assert.ok(!Object.hasOwn(trl.classes.DPOConfig, "max_prompt_length"));
});

Deno.test("KEYS names and defaults every TRL key it has as TRL 1.13 does", () => {
  for (const [key, spec] of table) {
    if (!("trl" in spec)) continue;
    const found = TRL.get(key);
    assert.ok(found, `${key}: marked as TRL's but TRL 1.13 has no such key`);
    // A list of one (DPOConfig's loss_type ["sigmoid"]) stands for its element.
    const values = found.map(({ value }) =>
      Array.isArray(value) && value.length === 1 ? value[0] : value
    );
    assert.ok(
      values.some((v) => v === spec.trl),
      `${key}: trl ${JSON.stringify(spec.trl)} but TRL's defaults are ${
        found.map((f) => `${f.owner} ${JSON.stringify(f.value)}`).join(", ")
      }`,
    );
  }
});

Deno.test("KEYS has no own key that TRL names too, and no alias hides a TRL name", () => {
  for (const [key, spec] of table) {
    assert.ok("trl" in spec || !TRL.has(key), `${key} is TRL's key too: give it trl: <default>`);
  }
  for (const alias of Object.keys(ALIASES)) {
    assert.ok(!TRL.has(alias), `alias ${alias} is a TRL key: it must not be renamed`);
  }
});

Deno.test("KEYS says why each default that differs from TRL's does", () => {
  for (const [key, spec] of table) {
    if (!("trl" in spec) || spec.readBy === "loss" || spec.trl === spec.default) continue;
    if (key === "loss_type") continue; // ours is unset: --loss decides
    assert.ok(spec.differs, `${key}: default ${spec.default}, TRL ${spec.trl}, and no reason`);
  }
});
