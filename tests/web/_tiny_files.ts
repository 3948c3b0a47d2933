/**
 * Test helper: the embedded tiny model's files and sample data, read as the page fetches them.
 *
 * @module
 */
import { readYamlConfig, resolveConfig, type Resolved } from "../../trainer/config.ts";
import type { ModelFiles } from "../../web/run.ts";

/** The tokenizer files the page serves for the embedded model. */
export const TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
];

/** model/tiny's files. */
export async function tinyFiles(): Promise<ModelFiles> {
  const tokenizer: Record<string, string> = {};
  for (const f of TOKENIZER_FILES) tokenizer[f] = await Deno.readTextFile(`model/tiny/${f}`);
  return {
    config: JSON.parse(await Deno.readTextFile("model/tiny/config.json")),
    weights: await Deno.readFile("model/tiny/model.safetensors"),
    tokenizer,
  };
}

/**
 * The config the page resolves: configs/tiny.yaml under the controls' values.
 *
 * @param cli The controls' values, e.g. `{ loss: "dpo", max_steps: "30" }`.
 * @returns The resolved config.
 */
export async function tinySettings(cli: Record<string, string>): Promise<Resolved> {
  const yaml = await readYamlConfig("configs/tiny.yaml");
  return resolveConfig({ yaml, yamlName: "configs/tiny.yaml", cli });
}
