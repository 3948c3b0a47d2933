import assert from "node:assert/strict";
import { parse } from "@std/yaml";
import { algorithm, ALGORITHMS } from "../../algorithms/mod.ts";
import {
  configToYaml,
  helpText,
  KEYS,
  type KeySpec,
  lossOfType,
  readYamlConfig,
  resolveConfig,
} from "../../trainer/config.ts";

Deno.test("resolveConfig() applies table < algorithm < YAML < CLI", () => {
  const { config, origin } = resolveConfig({
    yaml: { loss: "simpo", beta: 2.5, per_device_train_batch_size: 4, simpo_gamma: 0.3 },
    yamlName: "run.yaml",
    cli: { per_device_train_batch_size: "2", lr_scheduler_type: "cosine" },
  });
  assert.equal(config.beta, 2.5);
  assert.equal(config.simpo_gamma, 0.3);
  assert.equal(config.cpo_alpha, 0); // simpo.ts's own default, not TRL's 1.0
  assert.equal(config.per_device_train_batch_size, 2);
  assert.equal(config.lr_scheduler_type, "cosine");
  assert.equal(config.learning_rate, 1e-6); // simpo.ts recommends it
  assert.equal(config.weight_decay, 0); // the table's
  assert.equal(config.label_smoothing, null); // simpo does not read it
  assert.equal(origin.beta, "run.yaml");
  assert.equal(origin.per_device_train_batch_size, "CLI");
  assert.equal(origin.learning_rate, "loss simpo");
});

Deno.test("resolveConfig() reads old names as their TRL names with a notice", () => {
  const { config, notices } = resolveConfig({
    yaml: { loss: "orpo", lambda: 0.5, batch_size: 4, lr_scheduler: "constant" },
    cli: { group_by_length: "true", optimizer: "adamw" },
  });
  assert.equal(config.beta, 0.5);
  assert.equal(config.per_device_train_batch_size, 4);
  assert.equal(config.lr_scheduler_type, "constant_with_warmup"); // ours kept its warmup
  assert.equal(config.train_sampling_strategy, "group_by_length");
  assert.equal(config.optim, "adamw_torch");
  assert.equal(notices.length, 5);
  assert.match(notices[0], /^Deprecated: "lambda" \(YAML\) is now "beta"$/);
});

Deno.test("resolveConfig() maps TRL's loss_type onto our losses", () => {
  assert.equal(resolveConfig({ yaml: { loss_type: ["sigmoid"] } }).config.loss, "dpo");
  assert.equal(resolveConfig({ yaml: { loss_type: "simpo" } }).config.loss, "simpo");
  assert.equal(resolveConfig({ yaml: { loss_type: "kto" } }).config.loss, "kto");
  assert.equal(lossOfType("robust"), "rdpo");
  assert.equal(lossOfType("nca_pair"), "nca");
  assert.equal(lossOfType("bco_pair"), "bco");
  assert.equal(lossOfType("sigmoid_norm"), "dpo_norm");
  assert.equal(lossOfType("exo_pair"), "exo");
  assert.equal(lossOfType("aot_unpaired"), "aot_unpaired");
  assert.throws(() => lossOfType("sigmoid_v2"), /Unsupported loss_type "sigmoid_v2"/);
});

Deno.test("resolveConfig() reads a loss_type list with loss_weights as TRL's weighted sum", () => {
  const { config, algorithm } = resolveConfig({
    yaml: { loss_type: ["sigmoid", "sft"], loss_weights: [0.8, 0.2] },
  });
  assert.equal(config.loss, "dpo+sft");
  assert.equal(algorithm.name, "dpo+sft");
  assert.equal(config.loss_weights, "0.8,0.2");
  assert.equal(config.beta, 0.1); // the terms share DPO's hyperparameters
  // TRL's default weights: all 1.
  assert.equal(resolveConfig({ yaml: { loss_type: ["ipo", "sft"] } }).config.loss_weights, "1,1");
  assert.throws(
    () => resolveConfig({ cli: { loss: "dpo+online_dpo" } }),
    /Invalid loss_type dpo\+online_dpo: "online_dpo" generates its own pairs/,
  );
  assert.throws(
    () => resolveConfig({ yaml: { loss_weights: [1] } }),
    /"loss_weights" \(YAML\) is not read by loss "dpo": .*a loss_type list, e.g. \[sigmoid, sft\]/,
  );
  assert.throws(
    () => resolveConfig({ yaml: { loss: "ipo", loss_type: "sigmoid" } }),
    /Conflicting loss \(YAML\): loss "ipo" but loss_type "sigmoid" means "dpo"/,
  );
  // The CLI's --loss wins over the YAML's loss_type.
  assert.equal(
    resolveConfig({ yaml: { loss_type: "sigmoid" }, cli: { loss: "ipo" } }).config.loss,
    "ipo",
  );
});

Deno.test("resolveConfig() rejects unknown keys suggesting the closest", () => {
  assert.throws(
    () => resolveConfig({ cli: { bta: "0.1" } }),
    /Unknown config key "bta" \(CLI\): did you mean "beta"\?/,
  );
  assert.throws(
    () => resolveConfig({ yaml: { learning_rte: 1e-5 } }),
    /did you mean "learning_rate"\?/,
  );
  assert.throws(
    () => resolveConfig({ yaml: { log_evry: 8 } }),
    /did you mean "logging_steps"\?/, // via the old name log_every
  );
  assert.throws(() => resolveConfig({ yaml: { zzzzzz: 1 } }), /"zzzzzz" \(YAML\): --help lists/);
});

Deno.test("resolveConfig() rejects values the algorithm does not read", () => {
  assert.throws(
    () => resolveConfig({ cli: { loss: "kto", simpo_gamma: "1" } }),
    /Config key "simpo_gamma" \(CLI\) is not read by loss "kto": remove it, or use a loss that reads it \(simpo\)/,
  );
  assert.throws(
    () => resolveConfig({ cli: { loss: "simpo", ref_model: "x" } }),
    /"ref_model" \(CLI\) is not read by loss "simpo"/,
  );
  // TRL's default of a key the loss does not read is accepted (a TRL YAML lists them).
  const { config, notices } = resolveConfig({ yaml: { loss: "kto", simpo_gamma: 0.5 } });
  assert.equal(config.simpo_gamma, null);
  assert.match(notices[0], /^Ignored: simpo_gamma 0.5 \(YAML\)/);
});

Deno.test("resolveConfig() rejects LoRA keys without use_peft, as other values nothing reads", () => {
  for (const [key, value] of [["lora_r", "8"], ["lora_alpha", "8"], ["merge_adapter", "true"]]) {
    assert.throws(
      () => resolveConfig({ cli: { [key]: value } }),
      new RegExp(
        `^Error: Config key "${key}" \\(CLI\\) is read only with use_peft: true: ` +
          "set use_peft \\(--use_peft\\), or remove it$",
      ),
    );
    assert.equal(resolveConfig({ cli: { [key]: value, use_peft: "true" } }).notices.length, 0);
  }
  // A TRL YAML lists ModelConfig's defaults whether or not it trains adapters.
  const { notices } = resolveConfig({ yaml: { lora_dropout: 0.05, lora_r: 16 } });
  assert.deepEqual(notices, [
    "Ignored: lora_dropout 0.05 (YAML): TRL's default, read only with use_peft",
  ]);
});

Deno.test("resolveConfig() rejects wrong types and out-of-range values", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ beta: "0" }, /Invalid beta: 0, expected a number > 0/],
    [{ learning_rate: "-1e-5" }, /Invalid learning_rate: -0.00001, expected a number > 0/],
    [{ per_device_train_batch_size: "2.5" }, /Invalid per_device_train_batch_size: 2.5/],
    [{ beta: "high" }, /Invalid beta: "high", expected a number/],
    [
      { beta: "1e308" },
      /^Error: Invalid beta: 1e\+308, expected at most 3\.4e38 \(float32's largest\)$/,
    ],
    [
      { lr_scheduler_type: "step" },
      /expected one of linear, cosine, cosine_with_min_lr, constant, constant_with_warmup/,
    ],
    [{ max_steps: "0" }, /Invalid max_steps: 0, expected -1 \(by epochs\) or a number >= 1/],
    [{ label_smoothing: "0.7" }, /Invalid label_smoothing: 0.7, expected a number in \[0, 0.5\)/],
  ];
  for (const [cli, error] of cases) assert.throws(() => resolveConfig({ cli }), error);
  assert.throws(
    () => resolveConfig({ yaml: { seed: true } }),
    /Invalid seed: true, expected a integer/,
  );
});

Deno.test("configToYaml() round-trips through resolveConfig()", async () => {
  const { config } = resolveConfig({ cli: { loss: "cdpo", max_steps: "7" } });
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/config.yaml`, configToYaml(config));
  const again = resolveConfig({ yaml: await readYamlConfig(`${dir}/config.yaml`) });
  assert.deepEqual(again.config, config);
  assert.equal(parse(configToYaml(config)) !== null, true);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("KEYS holds every algorithm's hyperparameters, and only theirs as per-loss keys", () => {
  // A loss_type list's weighted sum (dpo+sft) owns loss_weights.
  const all = [...Object.values(ALGORITHMS), algorithm("dpo+sft")];
  const own = new Set(all.flatMap((a) => Object.keys(a.defaults)));
  const perLoss = Object.entries(KEYS).filter(([, s]) => (s as KeySpec).readBy === "loss");
  assert.deepEqual(new Set(perLoss.map(([k]) => k)), own);
  for (const [key, spec] of Object.entries(KEYS) as [string, KeySpec][]) {
    if (spec.readBy !== "loss") continue;
    for (const a of all) {
      if (!Object.hasOwn(a.defaults, key)) continue;
      // Each algorithm default passes the key's own check.
      assert.doesNotThrow(() =>
        resolveConfig({ cli: { loss: a.name, [key]: String(a.defaults[key]) } })
      );
    }
  }
});

Deno.test("helpText() shows each key's value, origin and TRL's default where ours differs", () => {
  const resolved = resolveConfig({
    yaml: { max_length: 128 },
    yamlName: "configs/tiny.yaml",
    cli: { loss: "simpo" },
  });
  const help = helpText(resolved);
  assert.match(
    help,
    /--max_length +prompt \+ completion tokens \(.*\) \(128, from configs\/tiny.yaml\)/,
  );
  assert.match(help, /--beta .*\(2, from loss simpo\) \[TRL: 0.1\]/);
  assert.match(help, /--truncation_mode .*\("keep_end"\) \[TRL: "keep_start"; ours: /);
  assert.doesNotMatch(help, /--ref_model/); // simpo has no reference model
  assert.doesNotMatch(help, /--label_smoothing/);
});

Deno.test("configs/*.yaml all resolve, each value as written", async () => {
  for await (const entry of Deno.readDir("configs")) {
    const yaml = await readYamlConfig(`configs/${entry.name}`);
    const { config, notices } = resolveConfig({ yaml });
    assert.deepEqual(notices, [], entry.name);
    const values: Record<string, unknown> = config;
    for (const [k, v] of Object.entries(yaml)) assert.equal(values[k], v, `${entry.name}: ${k}`);
    algorithm(config.loss);
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

Deno.test("resolveConfig() says a YAML .inf or .nan is not finite, naming the file", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/inf.yaml`;
  await Deno.writeTextFile(file, "beta: .inf\nlearning_rate: .nan\n");
  const yaml = await readYamlConfig(file);
  assert.throws(
    () => resolveConfig({ yaml: { beta: yaml.beta }, yamlName: file }),
    new RegExp(`^Error: Invalid beta: Infinity, expected a finite number \\(in ${file}\\)$`),
  );
  assert.throws(
    () => resolveConfig({ yaml: { learning_rate: yaml.learning_rate } }),
    /^Error: Invalid learning_rate: NaN, expected a finite number \(in YAML\)$/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("resolveConfig() takes TRL's bf16 from YAML and the CLI, and refuses fp16 naming bf16", () => {
  assert.equal(resolveConfig({ yaml: { bf16: true } }).config.bf16, true);
  assert.equal(resolveConfig({ cli: { bf16: "true" } }).config.bf16, true);
  assert.equal(resolveConfig({}).config.bf16, false);
  assert.throws(
    () => resolveConfig({ yaml: { fp16: true }, yamlName: "run.yaml" }),
    /^Error: Unsupported fp16: true \(run.yaml\): use bf16: true/,
  );
  assert.throws(() => resolveConfig({ cli: { bf16: "yes" } }), /Invalid bf16: "yes"/);
});

Deno.test("resolveConfig() suggests the key a left-out word was meant for, train before eval", () => {
  assert.throws(
    () => resolveConfig({ yaml: { per_device_batch_size: 4 } }),
    /Unknown config key "per_device_batch_size" \(YAML\): did you mean "per_device_train_batch_size" or "per_device_eval_batch_size"\?/,
  );
  assert.throws(
    () => resolveConfig({ cli: { lerning_rate: "1e-5" } }),
    /did you mean "learning_rate"\? /,
  );
  assert.throws(
    () => resolveConfig({ cli: { zzz: "1" } }),
    /"zzz" \(CLI\): --help lists every key$/,
  );
});

Deno.test("resolveConfig() accepts TRL recipe keys with their meaning here, or names the equivalent", () => {
  const { config, notices } = resolveConfig({
    yaml: {
      eval_on_start: true,
      eval_strategy: "epoch",
      lr_scheduler_type: "cosine_with_min_lr",
      lr_scheduler_kwargs: { min_lr_rate: 0.1 },
      gradient_checkpointing_kwargs: { use_reentrant: false },
      use_peft: true,
      lora_target_modules: ["q_proj", "v_proj"],
      model_init_kwargs: { dtype: "float32" },
      dataset_test_split: "test",
      report_to: ["wandb"],
    },
  });
  assert.equal(config.min_lr_rate, 0.1);
  assert.equal(config.lora_target_modules, "q_proj,v_proj");
  assert.equal(config.dataset_test_split, "test");
  assert.equal(config.report_to, "wandb");
  assert.equal(config.eval_strategy, "epoch");
  assert.match(notices.join("\n"), /gradient_checkpointing_kwargs .*compiled into the step/);
  assert.throws(
    () => resolveConfig({ yaml: { dtype: "bfloat16" } }),
    /Unsupported dtype: "bfloat16" \(YAML\): .*use bf16: true/,
  );
  assert.throws(
    () => resolveConfig({ yaml: { lr_scheduler_kwargs: { num_cycles: 2 } } }),
    /Unsupported lr_scheduler_kwargs key "num_cycles" \(YAML\)/,
  );
  assert.throws(
    () => resolveConfig({ yaml: { report_to: "tensorboard" } }),
    /Invalid report_to: "tensorboard", expected one of none, wandb/,
  );
  // An empty report_to list is HF's none.
  assert.equal(resolveConfig({ yaml: { report_to: [] } }).config.report_to, "none");
});
