/** One live run per output folder; the kernel frees the lock of a killed run (issue #12, case 1). */
import assert from "node:assert/strict";
import { OutputLock } from "../../trainer/output_lock.ts";

const MODULE = new URL("../../trainer/output_lock.ts", import.meta.url).href;

/** A second process that takes the lock on `dir`, says so, and waits to be killed. */
async function holder(dir: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { OutputLock } from "${MODULE}";
       await OutputLock.acquire(${JSON.stringify(dir)});
       console.log("locked");
       setInterval(() => {}, 1000);`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assert.equal(new TextDecoder().decode(value).trim(), "locked");
  reader.releaseLock();
  return child;
}

Deno.test({
  name: "OutputLock.acquire() refuses a folder another live process holds, naming its pid",
  ignore: Deno.permissions.querySync({ name: "run" }).state !== "granted",
  async fn() {
    const dir = await Deno.makeTempDir();
    const child = await holder(dir);
    await assert.rejects(
      OutputLock.acquire(dir),
      new RegExp(`^Error: Output folder ${dir} is in use by another run \\(pid ${child.pid}\\)`),
    );
    // kill -9: no cleanup code runs in the child, the kernel alone releases its lock.
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel();
    const lock = await OutputLock.acquire(dir);
    assert.equal((await Deno.readTextFile(`${dir}/run.lock`)).trim(), String(Deno.pid));
    lock.release();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("OutputLock.release() lets the next run in", async () => {
  const dir = await Deno.makeTempDir();
  const first = await OutputLock.acquire(dir);
  await assert.rejects(OutputLock.acquire(dir), /in use by another run/);
  first.release();
  first.release();
  (await OutputLock.acquire(dir)).release();
  await Deno.remove(dir, { recursive: true });
});
