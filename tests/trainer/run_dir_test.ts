/** The output folder's bookkeeping: checkpoints kept, debris removed, logs cut back (issue #12, cases 4 and 11). */
import assert from "node:assert/strict";
import {
  checkpointSteps,
  cleanDebris,
  clearRun,
  pruneCheckpoints,
  repairLogs,
  rewindRun,
  runFiles,
  truncateLog,
} from "../../trainer/run_dir.ts";

async function folder(names: string[]): Promise<string> {
  const dir = await Deno.makeTempDir();
  for (const name of names) await Deno.mkdir(`${dir}/${name}`);
  return dir;
}

Deno.test("pruneCheckpoints() keeps the newest save_total_limit and never the resumed one", async () => {
  const dir = await folder([1, 2, 3, 4, 5].map((n) => `checkpoint-${n}`));
  assert.deepEqual(await pruneCheckpoints(dir, { limit: null }), []);
  assert.deepEqual(await pruneCheckpoints(dir, { limit: 3, keep: 1 }), [2, 3]);
  assert.deepEqual(await checkpointSteps(dir), [1, 4, 5]);
  assert.deepEqual(await pruneCheckpoints(dir, { limit: 1, keep: 1 }), [4]);
  assert.deepEqual(await checkpointSteps(dir), [1, 5]); // the kept one may exceed the limit
  assert.deepEqual(await pruneCheckpoints(dir, { limit: 1 }), [1]);
  assert.deepEqual(await checkpointSteps(dir), [5]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cleanDebris() removes interrupted saves only", async () => {
  const names = [
    "checkpoint-10",
    "checkpoint-20.partial",
    ".checkpoint-20.partial.tmp-a1b2",
    ".checkpoint-30.tmp-x.old",
    "checkpoint-7x",
    "metrics.jsonl.d",
  ];
  const dir = await folder(names);
  assert.deepEqual((await cleanDebris(dir)).sort(), [
    ".checkpoint-20.partial.tmp-a1b2",
    ".checkpoint-30.tmp-x.old",
    "checkpoint-20.partial",
  ]);
  assert.deepEqual(await runFiles(dir), ["checkpoint-10", "checkpoint-7x", "metrics.jsonl.d"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("truncateLog() keeps rows up to the checkpoint's step and counts unreadable lines apart", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/metrics.jsonl`;
  const rows = [0, 1, 2, 3, 2, 3, 4].map((step) => JSON.stringify({ step, loss: step }) + "\n");
  rows[1] = '{"step": 1, "lo\x00\x00\n'; // a corrupt middle line
  await Deno.writeTextFile(path, rows.join("") + '{"step": 5, "lo');
  assert.deepEqual(await truncateLog(path, 2), { after: 3, unreadable: [2, 8] });
  const steps = (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l).step);
  assert.deepEqual(steps, [0, 2, 2]);
  assert.deepEqual(await truncateLog(`${dir}/missing.jsonl`, 2), { after: 0, unreadable: [] });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("rewindRun() and repairLogs() say which rows and which unreadable lines they removed", async () => {
  const dir = await Deno.makeTempDir();
  const rows = [1, 2, 3, 4].map((step) => JSON.stringify({ step }));
  rows[1] = "garbage";
  await Deno.writeTextFile(`${dir}/metrics.jsonl`, rows.join("\n") + "\n");
  assert.deepEqual(await rewindRun(dir, 3), [
    "removed 1 unreadable line (not JSON: cut or corrupt) from metrics.jsonl: line 2",
    "removed 1 row after step 3 from metrics.jsonl",
  ]);
  await Deno.writeTextFile(`${dir}/metrics.jsonl`, '{"step": 3}\n{"step": 4, "lo', {
    append: true,
  });
  assert.deepEqual(await repairLogs(dir), [
    "removed 1 unreadable line (not JSON: cut or corrupt) from metrics.jsonl: line 4",
  ]);
  assert.deepEqual(await repairLogs(dir), []);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("clearRun() empties a folder but for its lock file", async () => {
  const dir = await folder(["checkpoint-1"]);
  await Deno.writeTextFile(`${dir}/metrics.jsonl`, "{}\n");
  await Deno.writeTextFile(`${dir}/run.lock`, "1\n");
  assert.deepEqual(await runFiles(dir), ["checkpoint-1", "metrics.jsonl"]);
  await clearRun(dir);
  assert.deepEqual(await runFiles(dir), []);
  assert.equal(await Deno.readTextFile(`${dir}/run.lock`), "1\n");
  await Deno.remove(dir, { recursive: true });
});
