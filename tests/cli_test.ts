/** One CLI style for every task: `--help` prints usage and exits 0; a bad flag is one line, exit 1. */
import assert from "node:assert/strict";

const TOOLS = [
  "train.ts",
  "compare.ts",
  "score.ts",
  "merge.ts",
  "data/cli.ts",
  "algorithms/cli.ts",
];

async function runTool(file: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", file, ...args] })
    .output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim();
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("every command prints usage for --help and one error line for an unknown flag", async () => {
  await Promise.all(TOOLS.map(async (file) => {
    const help = await runTool(file, ["--help"]);
    assert.equal(help.code, 0, `${file} --help: ${help.stderr}`);
    assert.match(help.stdout, /^Usage: deno task /, file);
    const needed = file === "compare.ts" ? ["--losses", "dpo"] : ["--loss", "dpo"];
    const bad = await runTool(file, ["--no_such_flag", "1", ...needed]);
    assert.equal(bad.code, 1, file);
    const lines = bad.stderr.split("\n").filter((l) => !l.startsWith("Warning"));
    assert.equal(lines.length, 1, `${file}: ${bad.stderr}`);
    assert.match(lines[0], /^error: .*no_such_flag/i, file);
  }));
});
