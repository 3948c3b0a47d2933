/**
 * A whole training step as compiled ONNX graphs: forward, loss, backward, clipping and the
 * optimizer update, with parameters and optimizer state as graph inputs and outputs.
 *
 * One micro-batch per step runs one fused graph. Gradient accumulation runs an "accumulate" graph
 * per micro-batch (summing gradients into buffers) and then an "apply" graph that averages them
 * and updates: with equal-size micro-batches and a mean loss, the result is the full batch's.
 * An update whose loss or gradient norm is not finite is discarded (the step's outputs are freed,
 * the current parameters and state kept) and reported, never applied. Clipping and the 1/n of
 * accumulation are scalar factors folded into the update, costing no pass over the gradients.
 *
 * @module
 */
import type * as ort from "onnxruntime-node";
import { grad } from "./autodiff.ts";
import { clipByGlobalNorm, type OptimizerConfig, stateSlots, update } from "./optim.ts";
import { type Device, type Feed, Program } from "./session.ts";
import { arrayFor, type HostTensor, input, type Tensor } from "./tensor.ts";

/** Options for {@linkcode TrainStep.create}. */
export interface TrainStepOptions {
  /** Scalar loss of one micro-batch (a mean over its examples). */
  loss: Tensor;
  /** Trainable parameters: graph inputs with static shapes. */
  params: Tensor[];
  /** Scalars reported each step, averaged over micro-batches. */
  metrics?: Record<string, Tensor>;
  /**
   * Optimizer and its hyperparameters.
   * @default { name: "adamw" }
   */
  optimizer?: OptimizerConfig;
  /** Global gradient-norm clipping threshold; 0 or absent: none. */
  maxGradNorm?: number;
  /**
   * Which parameters get weight decay.
   * @default matrices and embeddings (rank ≥ 2), not biases or norm scales, as HF Trainer
   */
  decay?: (param: Tensor) => boolean;
  /**
   * Where to run.
   * @default "cpu"
   */
  device?: Device;
}

/** What one optimizer step reports. */
export interface StepResult {
  /** Mean loss over the micro-batches. */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** True when the gradients were not finite and the update was skipped. */
  skipped: boolean;
  /** The requested metrics, averaged over micro-batches. */
  metrics: Record<string, number>;
}

/** Parameters and optimizer state, for checkpoints and resuming. */
export interface TrainState {
  /** Optimizer steps taken. */
  step: number;
  /** Parameter values by name. */
  params: Record<string, HostTensor>;
  /** Optimizer state by slot ("m", "v") then parameter name. */
  slots: Record<string, Record<string, HostTensor>>;
}

const next = (name: string) => `${name}::next`;
const slot = (name: string, s: string) => `${name}::${s}`;

/** A compiled train step holding the current parameters and optimizer state. */
export class TrainStep {
  #values = new Map<string, ort.Tensor | HostTensor>();
  #zeros = new Map<string, HostTensor>();
  #split?: Promise<{ accumulate: Program; apply: Program }>;
  #step = 0;

  private constructor(
    readonly options: TrainStepOptions,
    readonly fused: Program,
    readonly slots: string[],
    /** The backward graph, built once and shared by the fused and accumulation graphs. */
    private readonly grads: Tensor[],
  ) {}

  /**
   * Builds and compiles the fused step graph (the accumulation graphs are built on first use).
   *
   * @param options Loss, parameters, optimizer and device.
   * @returns A train step with no parameter values yet: call {@linkcode setParams}.
   * @example
   * ```ts
   * import { input, TrainStep } from "./mod.ts";
   * const w = input("w", [2]);
   * const step = await TrainStep.create({ loss: w.mul(w).sum(), params: [w] });
   * step.setParams({ w: { dtype: "float32", shape: [2], data: new Float32Array([1, -1]) } });
   * const { loss } = await step.step({}, { lr: 0.1 });
   * if (loss !== 2) throw new Error("unexpected");
   * ```
   */
  static async create(options: TrainStepOptions): Promise<TrainStep> {
    const config = options.optimizer ?? { name: "adamw" };
    for (const p of options.params) {
      if (p.op !== "Input" || !p.shape.every((d) => typeof d === "number")) {
        throw new Error(`Parameter ${p.name ?? p} must be an input with a static shape`);
      }
    }
    for (const [name, m] of Object.entries(options.metrics ?? {})) {
      if (m.rank !== 0) throw new Error(`Metric "${name}" must be a scalar, got ${m}`);
    }
    const grads = grad(options.loss, options.params);
    const outputs = applyGraph(options, config, grads);
    outputs.loss = options.loss;
    Object.assign(outputs, options.metrics ?? {});
    const fused = await Program.compile(outputs, {
      device: options.device,
      keepOnDevice: stateOutputs(options.params, stateSlots(config)),
    });
    return new TrainStep(options, fused, stateSlots(config), grads);
  }

  /** Names of the inputs a micro-batch must feed: the loss's inputs other than parameters. */
  get dataInputs(): string[] {
    const own = new Set(["lr", "step", ...this.#values.keys()]);
    for (const p of this.options.params) own.add(p.name!);
    return this.fused.inputs.map((s) => s.name).filter((name) => !own.has(name));
  }

  /** Optimizer steps taken so far (skipped updates do not count). */
  get stepCount(): number {
    return this.#step;
  }

  /**
   * Sets every parameter and zeroes the optimizer state.
   *
   * @param values Host values by parameter name.
   */
  setParams(values: Record<string, HostTensor>): void {
    const slots: Record<string, Record<string, HostTensor>> = {};
    for (const s of this.slots) slots[s] = {};
    for (const p of this.options.params) {
      // Fresh zeros, not the accumulators' cached ones: they are freed once replaced.
      for (const s of this.slots) slots[s][p.name!] = zeros(p);
    }
    this.loadState({ step: 0, params: values, slots });
  }

  /**
   * Restores parameters, optimizer state and the step count.
   *
   * @param state What {@linkcode readState} returned.
   */
  loadState(state: TrainState): void {
    for (const p of this.options.params) {
      const value = state.params[p.name!];
      if (!value) throw new Error(`No value for parameter "${p.name}"`);
      if (value.shape.join() !== p.shape.join() || value.dtype !== p.dtype) {
        throw new Error(
          `Parameter "${p.name}" is ${p}, got ${value.dtype}[${value.shape}]`,
        );
      }
      this.#values.set(p.name!, value);
      for (const s of this.slots) {
        const v = state.slots[s]?.[p.name!];
        if (!v) throw new Error(`No optimizer state "${s}" for parameter "${p.name}"`);
        this.#values.set(slot(p.name!, s), v);
      }
    }
    this.#step = state.step;
  }

  /**
   * One optimizer step over one or more equal-size micro-batches.
   *
   * @param batches Feeds of one micro-batch, or a list of them (gradient accumulation).
   * @param schedule `lr`: this step's learning rate.
   * @returns Loss, gradient norm, skip flag and metrics.
   */
  async step(
    batches: Record<string, Feed> | Record<string, Feed>[],
    schedule: { lr: number },
  ): Promise<StepResult> {
    const list = Array.isArray(batches) ? batches : [batches];
    if (list.length === 0) throw new Error("step() needs at least one micro-batch");
    const params = this.options.params;
    const optimizerFeeds: Record<string, number> = { lr: schedule.lr, step: this.#step + 1 };
    let outputs: Record<string, ort.Tensor>;
    let program = this.fused;
    const sums: Record<string, number> = {};
    if (list.length === 1) {
      const feeds = { ...list[0], ...this.#stateFeeds(), ...only(this.fused, optimizerFeeds) };
      outputs = await this.fused.runRaw(feeds);
      await this.#addScalars(this.fused, outputs, sums);
    } else {
      const { accumulate, apply } = await this.#splitPrograms();
      program = apply;
      let acc: Record<string, ort.Tensor | HostTensor> = {};
      for (const p of params) acc[slot(p.name!, "grad")] = this.#zero(p);
      for (const batch of list) {
        const paramFeeds = Object.fromEntries(
          params.map((p) => [p.name!, this.#values.get(p.name!)!]),
        );
        const out = await accumulate.runRaw({ ...batch, ...paramFeeds, ...acc });
        await this.#addScalars(accumulate, out, sums);
        const nextAcc: typeof acc = {};
        for (const p of params) nextAcc[slot(p.name!, "grad")] = out[next(slot(p.name!, "grad"))];
        dispose(Object.values(acc));
        acc = nextAcc;
      }
      const scalars = { ...optimizerFeeds, grad_scale: 1 / list.length };
      outputs = await apply.runRaw({ ...this.#stateFeeds(), ...acc, ...only(apply, scalars) });
      dispose(Object.values(acc));
    }
    const gradNorm = (await program.read(outputs.grad_norm)).data[0] as number;
    // A non-finite loss or gradient poisons every output: keep the current values instead.
    const skipped = !Number.isFinite(gradNorm) || !Number.isFinite(sums.loss);
    for (const [name] of this.#values) {
      const fresh = outputs[next(name)];
      if (skipped) {
        dispose([fresh]);
        continue;
      }
      dispose([this.#values.get(name)!]);
      this.#values.set(name, fresh);
    }
    if (!skipped) this.#step++;
    const { loss, ...metrics } = Object.fromEntries(
      Object.entries(sums).map(([k, v]) => [k, v / list.length]),
    );
    return { loss, gradNorm, skipped, metrics };
  }

  /**
   * The current parameters as feeds (possibly device tensors), for other programs that share the
   * weights without copying them: evaluation, generation. Valid until the next `step()`, which
   * may free device buffers it replaces.
   *
   * @returns Parameter values by name.
   */
  paramFeeds(): Record<string, Feed> {
    return Object.fromEntries(
      this.options.params.map((p) => [p.name!, this.#values.get(p.name!)!]),
    );
  }

  /**
   * Copies parameters and optimizer state to the host.
   *
   * @returns The state, loadable by {@linkcode loadState}.
   */
  async readState(): Promise<TrainState> {
    const state: TrainState = { step: this.#step, params: {}, slots: {} };
    for (const s of this.slots) state.slots[s] = {};
    for (const p of this.options.params) {
      state.params[p.name!] = await this.#read(p.name!);
      for (const s of this.slots) state.slots[s][p.name!] = await this.#read(slot(p.name!, s));
    }
    return state;
  }

  /** Frees the sessions. */
  async release(): Promise<void> {
    await this.fused.release();
    if (this.#split) {
      const { accumulate, apply } = await this.#split;
      await accumulate.release();
      await apply.release();
    }
  }

  async #read(name: string): Promise<HostTensor> {
    const v = this.#values.get(name)!;
    return isHost(v) ? v : await this.fused.read(v);
  }

  #stateFeeds(): Record<string, ort.Tensor | HostTensor> {
    return Object.fromEntries(this.#values);
  }

  #zero(p: Tensor): HostTensor {
    if (!this.#zeros.has(p.name!)) this.#zeros.set(p.name!, zeros(p));
    return this.#zeros.get(p.name!)!;
  }

  async #addScalars(
    program: Program,
    outputs: Record<string, ort.Tensor>,
    sums: Record<string, number>,
  ): Promise<void> {
    for (const name of ["loss", ...Object.keys(this.options.metrics ?? {})]) {
      const value = (await program.read(outputs[name])).data[0] as number;
      sums[name] = (sums[name] ?? 0) + value;
    }
  }

  #splitPrograms(): Promise<{ accumulate: Program; apply: Program }> {
    this.#split ??= (async () => {
      const { options } = this;
      const config = options.optimizer ?? { name: "adamw" };
      const grads = this.grads;
      const accumulated: Record<string, Tensor> = { loss: options.loss, ...options.metrics };
      const accNames: string[] = [];
      options.params.forEach((p, i) => {
        const name = slot(p.name!, "grad");
        accumulated[next(name)] = input(name, p.shape, p.dtype).add(grads[i]);
        accNames.push(next(name));
      });
      const accumulate = await Program.compile(accumulated, {
        device: options.device,
        keepOnDevice: accNames,
      });
      const summed = options.params.map((p) => input(slot(p.name!, "grad"), p.shape, p.dtype));
      const scale = input("grad_scale", [], options.loss.dtype);
      const apply = await Program.compile(applyGraph(options, config, summed, scale), {
        device: options.device,
        keepOnDevice: stateOutputs(options.params, stateSlots(config)),
      });
      return { accumulate, apply };
    })();
    return this.#split;
  }
}

/** Clipping and the optimizer update, as named outputs (`scale`: see `clipByGlobalNorm`). */
function applyGraph(
  options: TrainStepOptions,
  config: OptimizerConfig,
  grads: Tensor[],
  scale?: Tensor,
): Record<string, Tensor> {
  const dtype = options.params[0].dtype;
  const lr = input("lr", [], dtype);
  const step = input("step", [], dtype);
  const { norm, coefficient } = clipByGlobalNorm(grads, { maxNorm: options.maxGradNorm, scale });
  const decay = options.decay ?? ((p: Tensor) => p.rank >= 2);
  const outputs: Record<string, Tensor> = { grad_norm: norm };
  options.params.forEach((p, i) => {
    const state: Record<string, Tensor> = {};
    for (const s of stateSlots(config)) state[s] = input(slot(p.name!, s), p.shape, p.dtype);
    const updated = update(config, { param: p, grad: grads[i], state, decay: decay(p) }, {
      lr,
      step,
      gradScale: coefficient,
    });
    outputs[next(p.name!)] = updated.param;
    for (const s of Object.keys(state)) outputs[next(slot(p.name!, s))] = updated.state[s];
  });
  return outputs;
}

/** The scalar feeds `program` takes (SGD leaves `step` unused, so it is not an input). */
function only(program: Program, feeds: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(feeds).filter(([name]) => program.inputs.some((spec) => spec.name === name)),
  );
}

function stateOutputs(params: Tensor[], slots: string[]): string[] {
  return params.flatMap((p) => [next(p.name!), ...slots.map((s) => next(slot(p.name!, s)))]);
}

function zeros(p: Tensor): HostTensor {
  const shape = p.shape as number[];
  return { dtype: p.dtype, shape, data: arrayFor(p.dtype, shape.reduce((a, b) => a * b, 1)) };
}

function isHost(v: ort.Tensor | HostTensor): v is HostTensor {
  return !("location" in v);
}

/** Frees device buffers that are no longer fed anywhere. */
function dispose(values: (ort.Tensor | HostTensor)[]): void {
  for (const v of values) if (!isHost(v) && v.location === "gpu-buffer") v.dispose();
}
