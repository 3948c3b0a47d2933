/**
 * The architectures benchmarked (and checked against the CUDA kernel table) with random weights:
 * SmolLM2-135M, SmolLM2-360M and OLMo-2-0425-1B, from their config.json.
 *
 * @module
 */

const SMOLLM2 = {
  model_type: "llama",
  vocab_size: 49152,
  max_position_embeddings: 8192,
  rope_theta: 100000,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: true,
};
export const PRESETS: Record<string, Record<string, unknown>> = {
  "smollm2-135m": {
    ...SMOLLM2,
    hidden_size: 576,
    intermediate_size: 1536,
    num_hidden_layers: 30,
    num_attention_heads: 9,
    num_key_value_heads: 3,
  },
  "smollm2-360m": {
    ...SMOLLM2,
    hidden_size: 960,
    intermediate_size: 2560,
    num_hidden_layers: 32,
    num_attention_heads: 15,
    num_key_value_heads: 5,
  },
  "olmo2-1b": {
    model_type: "olmo2",
    hidden_size: 2048,
    intermediate_size: 8192,
    num_hidden_layers: 16,
    num_attention_heads: 16,
    num_key_value_heads: 16,
    vocab_size: 100352,
    max_position_embeddings: 4096,
    rope_theta: 500000,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: false,
  },
};
