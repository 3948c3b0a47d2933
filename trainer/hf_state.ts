/**
 * `trainer_state.json` in Hugging Face's schema (`transformers.TrainerState`), written into each
 * checkpoint so that `TrainerState.load_from_json` and the tools that read it (log-history
 * plotters, dashboards) see what they see from an HF run: the step, the schedule's settings and
 * the log history. Every field is one of `TrainerState`'s (it is built with `cls(**json)`, so an
 * unknown field is an error there). The run's own resume data lives in `run_state.json`.
 *
 * @module
 */
import type { MetricsRow } from "./log.ts";
import type { TrainConfig } from "./config.ts";

/** The fields of `transformers.TrainerState` (5.17) this trainer fills. */
export interface HfTrainerState {
  epoch: number;
  global_step: number;
  max_steps: number;
  logging_steps: number;
  eval_steps: number;
  save_steps: number;
  train_batch_size: number;
  num_train_epochs: number;
  num_input_tokens_seen: number;
  total_flos: number;
  log_history: Record<string, number>[];
  best_metric: number | null;
  best_global_step: number | null;
  best_model_checkpoint: string | null;
  is_local_process_zero: boolean;
  is_world_process_zero: boolean;
  is_hyper_param_search: boolean;
  trial_name: string | null;
  trial_params: null;
  stateful_callbacks: Record<string, never>;
}

/**
 * The HF trainer state of a run at `step`.
 *
 * @param config The run's config (its logging, evaluation and save intervals, batch size).
 * @param run `step`, `epoch`, `total` steps and the log rows up to now (metrics.jsonl's).
 * @returns The object to write as `trainer_state.json`.
 * @example
 * ```ts
 * import { hfTrainerState } from "./hf_state.ts";
 * import { resolveConfig } from "./config.ts";
 * const { config } = resolveConfig({});
 * const s = hfTrainerState(config, { step: 2, epoch: 0.5, total: 4, rows: [{ step: 1, loss: 0.7 }] });
 * if (s.global_step !== 2 || s.log_history[0].loss !== 0.7) throw new Error("unexpected");
 * ```
 */
export function hfTrainerState(
  config: TrainConfig,
  run: { step: number; epoch: number; total: number; rows: MetricsRow[] },
): HfTrainerState {
  return {
    epoch: run.epoch,
    global_step: run.step,
    max_steps: run.total,
    logging_steps: config.logging_steps,
    // HF's interval fields are always set: ours "0: only at the end" is HF's unset (its default).
    eval_steps: config.eval_steps || 500,
    save_steps: config.save_steps || 500,
    train_batch_size: config.per_device_train_batch_size,
    num_train_epochs: config.num_train_epochs,
    num_input_tokens_seen: 0,
    total_flos: 0,
    log_history: run.rows.filter((r) => r.step <= run.step),
    best_metric: null,
    best_global_step: null,
    best_model_checkpoint: null,
    is_local_process_zero: true,
    is_world_process_zero: true,
    is_hyper_param_search: false,
    trial_name: null,
    trial_params: null,
    stateful_callbacks: {},
  };
}
