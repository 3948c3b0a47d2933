/** Model loading from folders and the HF cache, offline. */
import { equal, rejects } from "node:assert/strict";
import { loadModel, resolveModelDir } from "../../model/mod.ts";

Deno.test("resolveModelDir() names the id and the cache path when offline and not cached", async () => {
  const cache = await Deno.makeTempDir();
  await rejects(
    () => resolveModelDir("someorg/some-model", { offline: true, cacheDir: cache }),
    (e: Error) =>
      e.message.includes('"someorg/some-model"') &&
      e.message.includes(`${cache}/models--someorg--some-model`),
  );
  await Deno.remove(cache, { recursive: true });
});

Deno.test("loadModel() loads a Hub id from an HF-layout cache offline", async () => {
  const cache = await Deno.makeTempDir();
  const commit = "0123456789abcdef0123456789abcdef01234567";
  const root = `${cache}/models--org--tiny`;
  const snapshot = `${root}/snapshots/${commit}`;
  await Deno.mkdir(snapshot, { recursive: true });
  await Deno.mkdir(`${root}/refs`);
  await Deno.writeTextFile(`${root}/refs/main`, commit);
  for await (const f of Deno.readDir("model/tiny")) {
    await Deno.copyFile(`model/tiny/${f.name}`, `${snapshot}/${f.name}`);
  }
  const model = await loadModel("org/tiny", { offline: true, cacheDir: cache });
  equal(model.dir, snapshot);
  equal(model.config.model_type, "llama");
  await Deno.remove(cache, { recursive: true });
});

Deno.test("loadModel() explains a missing folder and missing weights", async () => {
  await rejects(() => loadModel("./no/such/folder"), /Model folder not found: .\/no\/such\/folder/);
  const dir = await Deno.makeTempDir();
  await Deno.copyFile("model/tiny/config.json", `${dir}/config.json`);
  await rejects(() => loadModel(dir), /No weights in .*: expected model.safetensors/);
  await Deno.remove(dir, { recursive: true });
});
