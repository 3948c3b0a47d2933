/**
 * `deno task merge`: a full Hugging Face model with a LoRA adapter folded in (W + (α/r)·B A),
 * as PEFT's `merge_and_unload()` gives, saved in the base model's dtype unless asked otherwise.
 *
 *     deno task merge --adapter out/run/checkpoint-40                    # → checkpoint-40-merged
 *     deno task merge --adapter DIR --base MODEL --output DIR --dtype float32
 *
 * `train --use_peft true --merge_adapter true` does the same for the final checkpoint.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadModel, resolveModelDir } from "./model/load.ts";
import { mergeLora } from "./model/lora.ts";
import { saveModel } from "./model/save.ts";
import { readSafetensorsLayout } from "./model/safetensors.ts";
import { weightFiles } from "./model/weights.ts";

/** Dtypes a merged model can be written in. */
type SaveDtype = "float32" | "bfloat16" | "float16";

/**
 * Merges the adapter folder `adapterDir` into its base model and writes the result to `outDir`.
 *
 * @param adapterDir A PEFT LoRA adapter folder (a LoRA run's checkpoint).
 * @param outDir Where the merged HF model goes (replaced if it exists).
 * @param options `base`: the base model (default: the adapter's base_model_name_or_path);
 *   `dtype`: stored dtype (default: the base checkpoint's own, float32 for other dtypes).
 * @returns `outDir`.
 */
export async function mergeAdapterFolder(
  adapterDir: string,
  outDir: string,
  options: { base?: string; dtype?: SaveDtype } = {},
): Promise<string> {
  const model = await loadModel(adapterDir, { base: options.base });
  if (!model.adapter) throw new Error(`No adapter_config.json in ${adapterDir}: not an adapter`);
  const baseId = options.base ?? model.adapter.baseModel;
  const [first] = await weightFiles(await resolveModelDir(baseId));
  const stored = Object.values(await readSafetensorsLayout(first))[0].dtype;
  const dtype = options.dtype ??
    (stored === "bfloat16" || stored === "float16" ? stored : "float32");
  await saveModel(outDir, {
    config: model.config,
    weights: mergeLora(model.weights, model.adapter),
  }, {
    dtype,
    tokenizerDir: adapterDir,
  });
  return outDir;
}

if (import.meta.main) {
  const usage = "Usage: deno task merge --adapter DIR [--base MODEL] [--output DIR] " +
    "[--dtype float32|bfloat16|float16]";
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log(usage);
    Deno.exit(0);
  }
  try {
    const { values } = parseArgs({
      args: Deno.args,
      strict: true,
      options: {
        adapter: { type: "string" },
        base: { type: "string" },
        output: { type: "string" },
        dtype: { type: "string" },
      },
    });
    if (!values.adapter) {
      throw new Error(`Missing --adapter: ${usage}`);
    }
    if (values.dtype && !["float32", "bfloat16", "float16"].includes(values.dtype)) {
      throw new Error(`Invalid --dtype ${values.dtype}: expected float32, bfloat16 or float16`);
    }
    const out = await mergeAdapterFolder(
      values.adapter,
      values.output ?? `${values.adapter.replace(/\/+$/, "")}-merged`,
      { base: values.base, dtype: values.dtype as SaveDtype | undefined },
    );
    console.log(`merged model: ${out}`);
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
