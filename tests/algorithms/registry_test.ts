/**
 * The registry, the contract checks (`requiredInputs`, `resolveHyperparameters`), `evaluateLoss`'s
 * errors, `deno task loss` for every algorithm, and every loss built in float32 (as training
 * builds it) agreeing with float64 to 1e-5 relative.
 */
import { deepStrictEqual, equal, ok, rejects, throws } from "node:assert/strict";
import {
  type Algorithm,
  algorithm,
  ALGORITHMS,
  evaluateLoss,
  requiredInputs,
  resolveHyperparameters,
} from "../../algorithms/mod.ts";
import { main } from "../../algorithms/cli.ts";
import { type HostTensor, input, type Tensor } from "../../graph/mod.ts";
import { Program } from "../../runtime/mod.ts";
import { assertClose, randomBatch } from "./_check.ts";

const EXAMPLE = "algorithms/example_input.json";
const NAMES = [
  "dpo",
  "cdpo",
  "ipo",
  "simpo",
  "orpo",
  "kto",
  "dpo_norm",
  "odpo",
  "rdpo",
  "bco",
  "hinge",
  "apo_zero",
  "nca",
  "rpo",
  "exo",
  "sppo",
  "apo_down",
  "discopop",
  "aot",
  "aot_unpaired",
  "sft",
  "online_dpo",
];

Deno.test("ALGORITHMS maps each --loss name to the module of that name", () => {
  deepStrictEqual(Object.keys(ALGORITHMS).sort(), [...NAMES].sort());
  for (const [name, a] of Object.entries(ALGORITHMS)) {
    equal(a.name, name);
    ok(["paired", "unpaired", "both"].includes(a.data), `${name}.data`);
    ok(typeof a.needsReference === "boolean" && typeof a.loss === "function", name);
    ok(typeof a.defaults === "object", `${name} has defaults`); // sft's is empty
  }
  deepStrictEqual(
    NAMES.filter((n) => !ALGORITHMS[n].needsReference),
    ["simpo", "orpo", "sft"],
  );
});

Deno.test("algorithm() names the known losses when the name is unknown", () => {
  throws(() => algorithm("dpop"), /Unknown loss "dpop": expected one of dpo, cdpo, ipo, simpo/);
  throws(() => algorithm("toString"), /Unknown loss "toString"/);
});

Deno.test("requiredInputs() lists data, reference and extra inputs", () => {
  const hp = (a: Algorithm) => a.defaults;
  deepStrictEqual(requiredInputs(ALGORITHMS.simpo, { kind: "paired", hp: hp(ALGORITHMS.simpo) }), [
    "policyChosenLogps",
    "policyRejectedLogps",
    "chosenLengths",
    "rejectedLengths",
  ]);
  deepStrictEqual(
    requiredInputs(ALGORITHMS.odpo, { kind: "paired", hp: hp(ALGORITHMS.odpo) }).slice(4),
    [
      "chosenLengths",
      "rejectedLengths",
      "chosenScores",
      "rejectedScores",
    ],
  );
  deepStrictEqual(requiredInputs(ALGORITHMS.kto, { kind: "unpaired", hp: hp(ALGORITHMS.kto) }), [
    "policyLogps",
    "referenceLogps",
    "lengths",
    "labels",
    "policyKlLogps",
    "referenceKlLogps",
  ]);
  deepStrictEqual(
    requiredInputs(ALGORITHMS.kto, {
      kind: "unpaired",
      hp: { ...hp(ALGORITHMS.kto), kl_estimate: "batch" },
    }),
    ["policyLogps", "referenceLogps", "lengths", "labels"],
  );
  throws(
    () => requiredInputs(ALGORITHMS.dpo, { kind: "unpaired", hp: hp(ALGORITHMS.dpo) }),
    /Loss "dpo" trains on paired data: got unpaired data/,
  );
});

Deno.test("resolveHyperparameters() parses strings and rejects unknown keys, wrong types and values out of range", () => {
  deepStrictEqual(resolveHyperparameters(ALGORITHMS.ipo, { beta: "0.5", ipo_average: "false" }), {
    beta: 0.5,
    ipo_average: false,
  });
  throws(
    () => resolveHyperparameters(ALGORITHMS.dpo, { gamma: 1 }),
    /Unknown hyperparameter "gamma" for loss "dpo": expected one of beta, label_smoothing/,
  );
  throws(
    () => resolveHyperparameters(ALGORITHMS.dpo, { beta: "big" }),
    /Invalid beta: "big", expected a number/,
  );
  throws(
    () => resolveHyperparameters(ALGORITHMS.ipo, { ipo_average: 1 }),
    /Invalid ipo_average: 1, expected a boolean/,
  );
  throws(
    () => resolveHyperparameters(ALGORITHMS.dpo, { beta: "0" }),
    /Invalid beta: 0, expected a number > 0/,
  );
});

Deno.test("evaluateLoss() names missing, unknown and mismatched inputs", async () => {
  const { chosen_scores: _s, ...noScores } = randomBatch(3, 1);
  await rejects(evaluateLoss("odpo", noScores), /Missing inputs for loss "odpo": chosen_scores$/);
  await rejects(
    evaluateLoss("dpo", { ...noScores, policy_chosen_logp: [1] }),
    /Unknown inputs: policy_chosen_logp:/,
  );
  await rejects(
    evaluateLoss("dpo", { ...noScores, chosen_lengths: [1, 2] }),
    /Input "chosen_lengths" has 2 values: expected 3/,
  );
  await rejects(
    evaluateLoss("simpo", { policy_logps: [-1], lengths: [1], labels: [1] }),
    /Loss "simpo" trains on paired data: got unpaired data/,
  );
});

Deno.test("deno task loss prints loss, metrics and grad for every algorithm", async () => {
  const example = JSON.parse(await Deno.readTextFile(EXAMPLE));
  for (const name of NAMES) {
    const printed = JSON.parse(await main(["--loss", name, "--input", EXAMPLE]));
    const direct = await evaluateLoss(name, example);
    deepStrictEqual(printed, direct);
    ok(Number.isFinite(printed.loss), name);
    equal(printed.grad.policy_chosen_logps.length, 4);
  }
  const ipo = JSON.parse(
    await main(["--loss", "ipo", "--beta", "0.5", "--ipo_average=false", "--input", EXAMPLE]),
  );
  equal(
    ipo.loss,
    (await evaluateLoss("ipo", example, { hyperparameters: { beta: 0.5, ipo_average: false } }))
      .loss,
  );
  await rejects(
    main(["--loss", "simpo", "--lambda", "1", "--input", EXAMPLE]),
    /--loss simpo takes --input and --beta, --simpo_gamma, --cpo_alpha/,
  );
  await rejects(main(["--input", EXAMPLE]), /Missing --loss: expected one of dpo/);
});

// Needs --allow-run (granted by `deno task test`); without it only the in-process run above.
Deno.test({
  name: "deno task loss runs as a command",
  ignore: Deno.permissions.querySync({ name: "run" }).state !== "granted",
}, async () => {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "loss", "--loss", "kto", "--kl_estimate", "batch", "--input", EXAMPLE],
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout, stderr } = await command.output();
  equal(code, 0, new TextDecoder().decode(stderr));
  const out = JSON.parse(new TextDecoder().decode(stdout));
  const example = JSON.parse(await Deno.readTextFile(EXAMPLE));
  equal(
    out.loss,
    (await evaluateLoss("kto", example, { hyperparameters: { kl_estimate: "batch" } })).loss,
  );
});

Deno.test("every loss built in float32 agrees with float64 to 1e-5", async () => {
  const example = JSON.parse(await Deno.readTextFile(EXAMPLE));
  const snake = (n: string) => n.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  for (const name of NAMES) {
    const a = ALGORITHMS[name];
    const inputs: Record<string, unknown> = {}, feeds: Record<string, HostTensor> = {};
    for (const n of requiredInputs(a, { kind: "paired", hp: a.defaults })) {
      inputs[n] = input(n, ["B"], "float32");
      feeds[n] = { dtype: "float32", shape: [4], data: Float32Array.from(example[snake(n)]) };
    }
    if (a.state) {
      inputs.state = Object.fromEntries(
        Object.keys(a.state.initial).map((k) => [k, input(k, [], "float32")]),
      );
      for (const [k, v] of Object.entries(a.state.initial)) {
        feeds[k] = { dtype: "float32", shape: [], data: Float32Array.of(v) };
      }
    }
    const { loss } = a.loss(inputs, a.defaults);
    const p = await Program.compile({ loss: loss as Tensor });
    const used = Object.fromEntries(p.inputs.map((s) => [s.name, feeds[s.name]]));
    const got = (await p.run(used)).loss.data[0] as number;
    await p.release();
    assertClose(got, (await evaluateLoss(name, example)).loss, 1e-5, `${name} float32`);
  }
});
