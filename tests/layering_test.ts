/**
 * The house's shape as a contract (DESIGN.md's layers): nothing below `trainer/` imports
 * `trainer/` or `web/`, and every training run is a `Session`: `TrainStep.create` is called only
 * by trainer/session.ts, plus what exercises the runtime itself (its tests, the engine benchmark
 * of bare transformer blocks, the CUDA smoke check, and the tool that pretrains the tiny fixture
 * model).
 */
import { deepStrictEqual } from "node:assert/strict";
import { relative } from "node:path";

const ROOT = new URL("../", import.meta.url).pathname;
const LOWER = ["graph", "runtime", "model", "data", "algorithms", "judges"];
const CREATES_STEPS = [
  "trainer/session.ts",
  "runtime/train_step.ts", // its own doc example
  "bench/engine.ts",
  "bench/cuda_smoke.ts", // the runtime on CUDA, stage by stage
  "tools/make_tiny_model.ts",
];

async function sources(dir: string, into: string[] = []): Promise<string[]> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory && entry.name !== "node_modules" && !entry.name.startsWith(".")) {
      await sources(path, into);
    } else if (entry.isFile && path.endsWith(".ts")) into.push(path);
  }
  return into;
}

/** Every module a file names in `import ... from "x"`, `export ... from "x"` or `import("x")`. */
function imports(code: string): string[] {
  const found = code.matchAll(/(?:from\s*|import\s*\(\s*|^import\s+)["']([^"']+)["']/gm);
  return [...found].map((m) => m[1]);
}

Deno.test("graph/, runtime/, model/, data/, algorithms/ and judges/ import neither trainer/ nor web/", async () => {
  const upward: string[] = [];
  for (const folder of LOWER) {
    for (const file of await sources(`${ROOT}${folder}`)) {
      for (const spec of imports(await Deno.readTextFile(file))) {
        if (/(^|\/)(trainer|web)\//.test(spec)) upward.push(`${relative(ROOT, file)} → ${spec}`);
      }
    }
  }
  deepStrictEqual(upward, []);
});

Deno.test("TrainStep.create is called only by the session (and by what tests the runtime)", async () => {
  const callers: string[] = [];
  for (const file of await sources(ROOT.replace(/\/$/, ""))) {
    const path = relative(ROOT, file);
    if (path.startsWith("tests/") || CREATES_STEPS.includes(path)) continue;
    if ((await Deno.readTextFile(file)).includes("TrainStep.create(")) callers.push(path);
  }
  deepStrictEqual(callers, []);
});
