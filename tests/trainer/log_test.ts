/** metrics.jsonl: a write that fails names the file (issue #23). */
import assert from "node:assert/strict";

Deno.test({
  name: "MetricsLog.log() names metrics.jsonl when the write fails (a full disk)",
  ignore: Deno.build.os !== "linux" ||
    Deno.permissions.querySync({ name: "run" }).state !== "granted",
  async fn() {
    const dir = await Deno.makeTempDir();
    // /dev/full answers every write with ENOSPC, as a full disk does (Deno lets only -A open it).
    await Deno.symlink("/dev/full", `${dir}/metrics.jsonl`);
    const log = new URL("../../trainer/log.ts", import.meta.url).href;
    const script = `import { MetricsLog } from "${log}";
const log = await MetricsLog.open("${dir}", { total: 1, append: true, quiet: true });
await log.log({ step: 1, loss: 0.5 }).catch((e) => console.error(e.message));`;
    const { stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", script],
      env: { DENO_NO_PROMPT: "1" },
    }).output();
    assert.match(
      new TextDecoder().decode(stderr),
      new RegExp(`^Cannot write ${dir}/metrics\\.jsonl: No space left on device`),
    );
    await Deno.remove(dir, { recursive: true });
  },
});
