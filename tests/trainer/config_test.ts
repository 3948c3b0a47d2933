import assert from "node:assert/strict";
import { configToYaml, readYamlConfig, resolveConfig } from "../../trainer/config.ts";
import { parse } from "@std/yaml";

Deno.test("resolveConfig() applies defaults < algorithm < YAML < CLI", () => {
  const c = resolveConfig({
    algorithm: { beta: 2, gamma: 0.5 },
    yaml: { beta: 2.5, batch_size: 4, gamma: 0.3 },
    cli: { batch_size: "2", lr_scheduler: "cosine", group_by_length: "true" },
  });
  assert.equal(c.beta, 2.5);
  assert.equal(c.gamma, 0.3);
  assert.equal(c.batch_size, 2);
  assert.equal(c.lr_scheduler, "cosine");
  assert.equal(c.group_by_length, true);
  assert.equal(c.learning_rate, 5e-6);
});

Deno.test("resolveConfig() rejects unknown keys naming the valid ones", () => {
  assert.throws(
    () => resolveConfig({ cli: { bta: "0.1" } }),
    /Unknown config key "bta" \(CLI\): valid keys are loss, model, .*beta/,
  );
  assert.throws(() => resolveConfig({ yaml: { gamma: 1 } }), /Unknown config key "gamma" \(YAML\)/);
});

Deno.test("resolveConfig() rejects wrong types and out-of-range values", () => {
  assert.throws(
    () => resolveConfig({ cli: { beta: "0" } }),
    /Invalid beta: 0, expected a number > 0/,
  );
  assert.throws(
    () => resolveConfig({ cli: { learning_rate: "-1e-5" } }),
    /Invalid learning_rate: -0.00001, expected a number > 0/,
  );
  assert.throws(
    () => resolveConfig({ cli: { batch_size: "0" } }),
    /Invalid batch_size: 0, expected a number >= 1/,
  );
  assert.throws(() => resolveConfig({ cli: { batch_size: "2.5" } }), /Invalid batch_size: 2.5/);
  assert.throws(
    () => resolveConfig({ yaml: { beta: "high" } }),
    /Invalid beta: "high", expected a number/,
  );
  assert.throws(
    () => resolveConfig({ cli: { lr_scheduler: "step" } }),
    /Invalid lr_scheduler: "step", expected one of linear, cosine, constant/,
  );
  assert.throws(
    () => resolveConfig({ yaml: { seed: true } }),
    /Invalid seed: true, expected a integer/,
  );
});

Deno.test("configToYaml() round-trips through YAML", async () => {
  const c = resolveConfig({ algorithm: { label_smoothing: 0.1 }, cli: { max_steps: "7" } });
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/config.yaml`, configToYaml(c));
  assert.deepEqual(await readYamlConfig(`${dir}/config.yaml`), c);
  assert.deepEqual(parse(configToYaml(c)), c);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("configs/*.yaml all resolve against their algorithm's keys", async () => {
  const { algorithm } = await import("../../algorithms/mod.ts");
  for await (const entry of Deno.readDir("configs")) {
    const yaml = await readYamlConfig(`configs/${entry.name}`);
    const algo = algorithm(String(yaml.loss ?? "dpo"));
    const c = resolveConfig({ algorithm: { ...algo.defaults }, yaml });
    for (const [k, v] of Object.entries(yaml)) assert.equal(c[k], v, `${entry.name}: ${k}`);
  }
});

Deno.test("readYamlConfig() names the file and line of a YAML syntax error", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/bad.yaml`, "loss: dpo\nbeta: [0.1,\n");
  await assert.rejects(
    readYamlConfig(`${dir}/bad.yaml`),
    new RegExp(`^Error: Invalid config ${dir}/bad\\.yaml: .* at line 3, column 1$`),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("resolveConfig() says a YAML .inf or .nan is not finite", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/inf.yaml`, "beta: .inf\nlearning_rate: .nan\n");
  const yaml = await readYamlConfig(`${dir}/inf.yaml`);
  assert.throws(
    () => resolveConfig({ yaml: { beta: yaml.beta } }),
    /^Error: Invalid beta: Infinity, expected a finite number$/,
  );
  assert.throws(
    () => resolveConfig({ yaml: { learning_rate: yaml.learning_rate } }),
    /^Error: Invalid learning_rate: NaN, expected a finite number$/,
  );
  await Deno.remove(dir, { recursive: true });
});
