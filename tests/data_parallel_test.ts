/**
 * Data-parallel training (issue #20) with real processes under MPICH's mpiexec: two ranks with
 * half the batch each train like one rank with the whole batch; one set of files; resume under
 * the same and another world size; a rank killed with SIGKILL ends the job, named.
 *
 * Needs MPICH (`apt-get install mpich libmpich-dev`; `.ci/run` installs it).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { MetricsRow } from "../trainer/log.ts";

const TRAIN = new URL("../train.ts", import.meta.url).pathname;
// SGD: AdamW's update hardly depends on the gradient's scale, so a wrong 1/(ranks) would pass.
const FEW = [
  "--optim",
  "sgd",
  "--learning_rate",
  "0.05",
  "--max_steps",
  "3",
  "--eval_steps",
  "0",
  "--eval_samples",
  "16",
  "--save_steps",
  "0",
];

async function hasMpiexec(): Promise<boolean> {
  try {
    return (await new Deno.Command("mpiexec", { args: ["--version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

if (!await hasMpiexec()) {
  throw new Error("The data-parallel tests need mpiexec: apt-get install mpich libmpich-dev");
}

/** `deno task train ARGS` in a child process with its own reference cache (and `env`). */
async function train(args: string[], cache: string, env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", TRAIN, ...args],
    env: { DA_CACHE_DIR: cache, ...env },
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  const result = { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
  return result;
}

/**
 * The rows of a run's metrics.jsonl less what is measured, not computed: throughput and runtimes
 * (`tokens_per_s`, `eval_runtime`, `eval_samples_per_second`, ...), and HF's closing row, whose
 * `train_loss` covers one session's steps, so a resumed session's differs by design.
 */
async function rows(dir: string): Promise<MetricsRow[]> {
  const text = await Deno.readTextFile(join(dir, "metrics.jsonl"));
  const measured = (key: string) => /_per_s$|_runtime$|_per_second$/.test(key);
  return text.trim().split("\n").map((line): MetricsRow => JSON.parse(line))
    .filter((row) => !("train_runtime" in row))
    .map((row) =>
      Object.fromEntries(Object.entries(row).filter(([key]) => !measured(key))) as MetricsRow
    );
}

async function cacheKeys(cache: string): Promise<string[]> {
  const folder = join(cache, "ref_logps");
  const [file] = [...Deno.readDirSync(folder)];
  return Object.keys(JSON.parse(await Deno.readTextFile(join(folder, file.name))).values).sort();
}

const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

/** Training rows of `a` match `b`'s within `tol` (relative), step by step; eval accuracies equal. */
function assertSameRun(a: MetricsRow[], b: MetricsRow[], tol: number): void {
  assert.deepEqual(a.map((r) => r.step), b.map((r) => r.step));
  assert.ok(a.some((r) => "eval_loss" in r), "the runs end with a held-out evaluation");
  for (const [i, row] of a.entries()) {
    for (const key of ["loss", "grad_norm", "eval_loss"]) {
      assert.equal(key in row, key in b[i], `step ${row.step}: ${key} in one run only`);
      if (!(key in row)) continue;
      const diff = relative(row[key], b[i][key]);
      assert.ok(diff <= tol, `step ${row.step} ${key}: ${row[key]} vs ${b[i][key]} (${diff})`);
    }
    assert.equal(row["eval_pairwise_accuracy"], b[i]["eval_pairwise_accuracy"]);
  }
}

Deno.test("train --nproc_per_node 2 with half the batch matches one rank with the whole batch", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dp-" });
  const [one, two] = [join(dir, "one"), join(dir, "two")];
  const [cacheOne, cacheTwo] = [join(dir, "cache1"), join(dir, "cache2")];
  const single = await train(
    [...FEW, "--per_device_train_batch_size", "8", "--output_dir", one],
    cacheOne,
  );
  assert.equal(single.code, 0, single.stderr);
  const ranks = await train(
    ["--nproc_per_node", "2", ...FEW, "--per_device_train_batch_size", "4", "--output_dir", two],
    cacheTwo,
  );
  assert.equal(ranks.code, 0, ranks.stderr);
  const [a, b] = [await rows(two), await rows(one)];
  assertSameRun(a, b, 1e-4);
  assert.equal(a.filter((r) => "loss" in r).length, 3, "every step logged once, by rank 0 alone");
  assert.equal(ranks.stdout.match(/^Done: /gm)?.length, 1, "one summary");
  assert.deepEqual(
    (await Array.fromAsync(Deno.readDir(two))).map((e) => e.name).filter((n) =>
      n.startsWith("checkpoint-")
    ),
    ["checkpoint-3"],
  );
  // Each rank computed the reference log-probs of its shard; the saved cache holds them all.
  assert.deepEqual(await cacheKeys(cacheTwo), await cacheKeys(cacheOne));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train --nproc_per_node 2 resumes bitwise on 2 ranks and with the same global batch on 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dp-resume-" });
  const cache = join(dir, "cache");
  const full = join(dir, "full");
  const args = [...FEW, "--max_steps", "4", "--save_steps", "2", "--per_device_train_batch_size"];
  const first = await train(
    ["--nproc_per_node", "2", ...args, "4", "--output_dir", full],
    cache,
  );
  assert.equal(first.code, 0, first.stderr);
  const [two, one] = [join(dir, "two"), join(dir, "one")];
  for (const copy of [two, one]) {
    await new Deno.Command("cp", { args: ["-r", full, copy] }).output();
    await Deno.remove(join(copy, "checkpoint-4"), { recursive: true }); // continue from step 2
  }
  const again = await train(
    ["--nproc_per_node", "2", "--resume", join(two, "checkpoint-2")],
    cache,
  );
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(await rows(two), await rows(full));
  const single = await train(["--resume", join(one, "checkpoint-2")], cache);
  assert.equal(single.code, 0, single.stderr);
  assert.match(single.stderr, /per_device_train_batch_size 4 → 8 keeps the global batch of 8/);
  assertSameRun(await rows(one), await rows(full), 1e-4);
  await Deno.remove(dir, { recursive: true });
});

/**
 * A 2-rank job that trains until stopped, and the process id of its rank 1 (the train.ts process
 * whose environment says PMI_RANK=1 and whose arguments name its folder) once a step is logged.
 */
async function longJob(args: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "dp-long-" });
  const out = join(dir, "run");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", TRAIN, "--nproc_per_node", "2", ...FEW, "--max_steps", "100000"].concat(
      ["--output_dir", out, ...args],
    ),
    env: { DA_CACHE_DIR: join(dir, "cache") },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let rank1: number | null = null;
  while (rank1 === null) {
    await new Promise((r) => setTimeout(r, 500));
    // `ps e` appends each process's environment to its arguments.
    const ps = await new Deno.Command("ps", { args: ["eww", "-e", "-o", "pid=,args="] }).output();
    const line = new TextDecoder().decode(ps.stdout).split("\n").find((l) =>
      l.includes(out) && / PMI_RANK=1( |$)/.test(l)
    );
    if (line) rank1 = Number(line.trim().split(" ")[0]);
  }
  while (!(await Deno.readTextFile(join(out, "metrics.jsonl")).catch(() => "")).includes("loss")) {
    await new Promise((r) => setTimeout(r, 200));
  }
  /** Waits for the job's end: its exit code, the seconds it took, its stderr. */
  const end = async () => {
    const from = performance.now();
    // Should the job not end, end rank 1 after 90 s so that the test fails instead of hanging.
    const guard = setTimeout(() => Deno.kill(rank1!, "SIGKILL"), 90_000);
    const { code } = await child.status;
    clearTimeout(guard);
    const seconds = (performance.now() - from) / 1000;
    await Deno.remove(dir, { recursive: true });
    return { code, seconds, stderr: await stderr };
  };
  return { rank1, end };
}

Deno.test("train --nproc_per_node 2 exits non-zero within 60 s naming a rank killed with SIGKILL", async () => {
  const job = await longJob([]);
  Deno.kill(job.rank1, "SIGKILL");
  const { code, seconds, stderr } = await job.end();
  assert.notEqual(code, 0);
  assert.ok(seconds < 60, `the job took ${seconds} s to end`);
  assert.match(stderr, /error: rank 1 of 2 was killed by signal 9/);
});

Deno.test("train --nproc_per_node 2 stops a job whose rank 1 stalls, naming it, after ddp_timeout", async () => {
  const job = await longJob(["--ddp_timeout", "5"]);
  Deno.kill(job.rank1, "SIGSTOP");
  const { code, seconds, stderr } = await job.end();
  assert.notEqual(code, 0);
  assert.ok(seconds < 20, `the job took ${seconds} s to end`);
  assert.match(stderr, /error: rank 1 of 2 stalled: the others waited 5 s on it \(ddp_timeout\)/);
});

Deno.test("train --nproc_per_node rejects a bad count, or a machine without mpiexec, in one line", async () => {
  const cache = await Deno.makeTempDir();
  const bad = await train(["--nproc_per_node", "0"], cache);
  assert.equal(bad.code, 1);
  assert.equal(
    bad.stderr.trim(),
    "error: Invalid --nproc_per_node 0: expected a whole number of ranks ≥ 1",
  );
  const nowhere = await train(["--nproc_per_node", "2"], cache, { PATH: cache });
  assert.equal(nowhere.code, 1);
  assert.equal(
    nowhere.stderr.trim(),
    "error: --nproc_per_node 2 needs mpiexec on PATH: install MPICH (apt-get install mpich libmpich-dev)",
  );
});
