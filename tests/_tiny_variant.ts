/**
 * Test helper: temporary variants of the embedded tiny tokenizer (no chat template, a BOS-adding
 * post-processor...), so tokenizer edge cases are tested without any download.
 *
 * @module
 */

/** The embedded tiny tokenizer's folder. */
export const TINY = "model/tiny";

/** Copies the tiny tokenizer into a temp folder with edits to its two JSON files. */
export async function tinyVariant(
  edit: (tokenizer: Record<string, unknown>, config: Record<string, unknown>) => void,
): Promise<string> {
  const dir = await Deno.makeTempDir();
  const tokenizer = JSON.parse(await Deno.readTextFile(`${TINY}/tokenizer.json`));
  const config = JSON.parse(await Deno.readTextFile(`${TINY}/tokenizer_config.json`));
  edit(tokenizer, config);
  await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(tokenizer));
  await Deno.writeTextFile(`${dir}/tokenizer_config.json`, JSON.stringify(config));
  return dir;
}

/** The edit that makes the tokenizer add BOS (<|endoftext|>, id 508) like Llama's post-processor. */
export function addBos(tokenizer: Record<string, unknown>, config: Record<string, unknown>): void {
  config.bos_token = "<|endoftext|>";
  tokenizer.post_processor = {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: "<|endoftext|>", type_id: 0 } }, {
      Sequence: { id: "A", type_id: 0 },
    }],
    pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
    special_tokens: {
      "<|endoftext|>": { id: "<|endoftext|>", ids: [508], tokens: ["<|endoftext|>"] },
    },
  };
}
