/** Model loading from folders and the HF cache, offline. */
import { equal, rejects } from "node:assert/strict";
import type { HostTensor } from "../../graph/mod.ts";
import { loadModel, resolveModelDir } from "../../model/mod.ts";
import { readSafetensors, serializeSafetensors } from "../../model/safetensors.ts";

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

/** A copy of the tiny model with `edit` applied to its config.json and weights. */
async function tinyCopy(
  edit: (config: Record<string, unknown>, tensors: Record<string, HostTensor>) => void,
): Promise<string> {
  const dir = await Deno.makeTempDir();
  for await (const f of Deno.readDir("model/tiny")) {
    await Deno.copyFile(`model/tiny/${f.name}`, `${dir}/${f.name}`);
  }
  const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  const { tensors } = await readSafetensors(`${dir}/model.safetensors`);
  edit(config, tensors);
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
  await Deno.writeFile(`${dir}/model.safetensors`, serializeSafetensors(tensors));
  return dir;
}

Deno.test("loadModel() refuses a config.json with fewer layers than the weights, naming both", async () => {
  const dir = await tinyCopy((config) => config.num_hidden_layers = 3);
  await rejects(
    () => loadModel(dir),
    (e: Error) =>
      e.message.startsWith(
        `Weights in ${dir}/model.safetensors that no layer of ${dir}/config.json`,
      ) &&
      e.message.includes("num_hidden_layers 3") &&
      e.message.includes("model.layers.3.") &&
      e.message.endsWith("config.json and the weights disagree"),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadModel() names both files when the config needs weights that are missing", async () => {
  const dir = await tinyCopy((config) => config.num_hidden_layers = 5);
  await rejects(
    () => loadModel(dir),
    new RegExp(
      `Missing weights in ${dir}/model\\.safetensors: model\\.layers\\.4\\..*needed by ${dir}/config\\.json \\(model_type llama, num_hidden_layers 5\\)`,
    ),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadModel() accepts a tied model's stored lm_head and rotary inv_freq buffers", async () => {
  const dir = await tinyCopy((_, tensors) => {
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"];
    tensors["model.layers.0.self_attn.rotary_emb.inv_freq"] = {
      dtype: "float32",
      shape: [16],
      data: new Float32Array(16),
    };
  });
  const model = await loadModel(dir);
  equal(model.config.num_hidden_layers, 4);
  equal("lm_head.weight" in model.weights, false);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadModel() names a config.json that is not JSON", async () => {
  const dir = await tinyCopy(() => {});
  await Deno.writeTextFile(`${dir}/config.json`, '{"model_type": "llama",');
  await rejects(
    () => loadModel(dir),
    new RegExp(`Invalid JSON in model config ${dir}/config\\.json: `),
  );
  await Deno.writeTextFile(`${dir}/config.json`, "[1]");
  await rejects(
    () => loadModel(dir),
    new RegExp(`Model config ${dir}/config\\.json must hold a JSON object`),
  );
  await Deno.remove(dir, { recursive: true });
});
