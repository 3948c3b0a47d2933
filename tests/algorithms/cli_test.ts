/** `deno task loss` refuses what `train` refuses: one line naming the input, key or file (issue #12, case 9). */
import { rejects } from "node:assert/strict";
import { main } from "../../algorithms/cli.ts";
import { train } from "../../train.ts";

const dir = await Deno.makeTempDir({ prefix: "da-loss-cli-" });
const PAIRED = {
  policy_chosen_logps: [-10, -12],
  policy_rejected_logps: [-11, -13],
  reference_chosen_logps: [-10.5, -12.5],
  reference_rejected_logps: [-10.5, -12.5],
  chosen_lengths: [5, 6],
  rejected_lengths: [4, 7],
};
const UNPAIRED = {
  policy_logps: [-10, -12],
  reference_logps: [-11, -12],
  lengths: [5, 6],
  labels: [1, 0],
  policy_kl_logps: [-11, -13],
  reference_kl_logps: [-11, -13],
};

async function input(name: string, data: unknown): Promise<string> {
  const path = `${dir}/${name}.json`;
  await Deno.writeTextFile(path, typeof data === "string" ? data : JSON.stringify(data));
  return path;
}

Deno.test("deno task loss refuses non-finite inputs", async () => {
  // JSON has no Infinity, but 1e999 parses to it.
  const file = await input("inf", JSON.stringify(PAIRED).replace("-10,", "-1e999,"));
  await rejects(
    main(["--loss", "dpo", "--input", file]),
    /Input "policy_chosen_logps"\[0\] is -Infinity: expected a finite number \(--input .*inf\.json\)/,
  );
});

Deno.test("deno task loss refuses zero and negative lengths", async () => {
  for (const loss of ["ipo", "simpo", "dpo_norm"]) {
    for (const length of [0, -3]) {
      const file = await input(`len_${loss}`, { ...PAIRED, rejected_lengths: [4, length] });
      await rejects(
        main(["--loss", loss, "--input", file]),
        new RegExp(`Input "rejected_lengths"\\[1\\] is ${length}: expected a token count > 0`),
      );
    }
  }
  const file = await input("len_kto", { ...UNPAIRED, lengths: [0, 6] });
  await rejects(main(["--loss", "kto", "--input", file]), /Input "lengths"\[0\] is 0/);
});

Deno.test("deno task loss refuses KTO labels other than 0 and 1", async () => {
  for (const label of [0.5, 7]) {
    const file = await input("labels", { ...UNPAIRED, labels: [1, label] });
    await rejects(
      main(["--loss", "kto", "--input", file]),
      new RegExp(`Input "labels"\\[1\\] is ${label}: expected 0 \\(undesirable\\) or 1`),
    );
  }
});

Deno.test("deno task loss refuses the beta values train refuses, with the same message", async () => {
  const file = await input("ok", PAIRED);
  for (const beta of ["-1", "0"]) {
    const fromTrain = await train(["--loss", "dpo", "--beta", beta], { quiet: true }).catch((e) =>
      e
    );
    await rejects(main(["--loss", "dpo", `--beta=${beta}`, "--input", file]), {
      message: fromTrain.message,
    });
  }
});

Deno.test("deno task loss names the --input file it cannot parse", async () => {
  const file = await input("broken", "{ not json");
  await rejects(
    main(["--loss", "dpo", "--input", file]),
    /Invalid JSON in --input .*broken\.json: /,
  );
  await rejects(
    main(["--loss", "dpo", "--input", `${dir}/missing.json`]),
    /Cannot read --input .*missing\.json: /,
  );
  await rejects(
    main(["--loss", "dpo", "--input", await input("list", [1, 2])]),
    /--input .*list\.json must hold a JSON object of input arrays/,
  );
});
