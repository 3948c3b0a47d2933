/**
 * A whole training step as compiled graphs whose parameters and optimizer state stay in runtime
 * memory: a gradient graph (forward, loss, backward, global gradient norm) and an update graph
 * (AdamW or SGD), run one after the other.
 *
 * Per step only the batch goes in and only scalars (loss, metrics, gradient norm) come out. The
 * split is what makes in-place updates safe and skipping free: the host sees the loss and the
 * norm before anything is updated, so a non-finite step simply does not run the update graph,
 * and the update graph, whose only readers of each parameter and moment are that parameter's own
 * update, writes them in place (checked per output by `inPlaceSafe`). Clipping and the 1/n of
 * gradient accumulation are one scalar the host computes from the norm, folded into the update.
 *
 * Gradient accumulation runs the gradient graph on the first micro-batch and an "accumulate"
 * graph (gradient buffers += this micro-batch's) on the others: with equal-size micro-batches and
 * a mean loss, the result is the full batch's.
 *
 * Data parallel (`world`): between the two graphs every rank's gradient buffers are summed in
 * place (`runtime/world.ts`: MPI on host memory, NCCL on device memory) with the loss and metrics;
 * a small norm graph then reads the summed buffers (the global norm, not a sum of local ones), and
 * 1/(micro-batches × ranks) folds into the update's scalar, so every rank takes the same decision
 * and the same update.
 *
 * @module
 */
import { grad } from "../graph/autodiff.ts";
import { type OptimizerConfig, stateSlots, update } from "../graph/optim.ts";
import { sqrt, sumSquares } from "../graph/ops.ts";
import { arrayFor, type DType, type HostTensor, input, type Tensor } from "../graph/tensor.ts";
import { inPlaceSafe } from "./in_place.ts";
import type { World } from "./world.ts";
import {
  type Backend,
  type CompileOptions,
  type Device,
  type Feed,
  hostFeed,
  isValue,
  Program,
  type ResolvedDevice,
  type Value,
} from "./program.ts";

/** Options for {@linkcode TrainStep.create}. */
export interface TrainStepOptions {
  /** Scalar loss of one micro-batch (a mean over its examples). */
  loss: Tensor;
  /** Trainable parameters: graph inputs with static shapes. */
  params: Tensor[];
  /**
   * Graph inputs held in runtime memory but not trained (no gradient, no optimizer state), in
   * their own dtype — e.g. a LoRA model's frozen base weights in bfloat16. Set them with
   * {@linkcode TrainStep.setFrozen}.
   */
  frozen?: Tensor[];
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
  /**
   * Which binding runs the graphs.
   * @default "js" on webgpu, "native" elsewhere
   */
  backend?: Backend;
  /**
   * Write updated parameters, moments and accumulated gradients into their own buffers where
   * `inPlaceSafe` proves it safe; false: fresh buffers each step (the previous ones freed).
   * @default true
   */
  inPlace?: boolean;
  /** Native backend: profile every run of the step's graphs (see `CompileOptions.profile`). */
  profile?: string;
  /** Native backend: cache onnxruntime's optimized graphs here (see `CompileOptions.cacheDir`). */
  cacheDir?: string;
  /**
   * Native backend: every run of a stage binds the same buffers — the batch and the scalar feeds
   * are copied into buffers kept for them, and the scalars come out into kept buffers — which on
   * cuda lets onnxruntime capture each stage once as a CUDA graph and replay it (see
   * `CompileOptions.cudaGraph`). Needs every state output written in place.
   * @default false
   */
  fixedBuffers?: boolean;
  /** Native backend: sizes of the batch's symbolic dimensions (see `CompileOptions.staticDims`). */
  staticDims?: Record<string, number>;
  /**
   * Data parallel: the ranks whose gradients are summed (in place, between the gradient and the
   * update graph) and averaged; every rank then sees the same loss, norm and skip decision.
   */
  world?: World;
}

/** What one optimizer step reports. */
export interface StepResult {
  /** Mean loss over the micro-batches. */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** True when the loss or the gradients were not finite and the update was skipped. */
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
const gradOf = (name: string) => `${name}::grad`;

interface Compiled {
  program: Program;
  /** State output name → name of the resident value it becomes. */
  targets: Record<string, string>;
  /** The state outputs written into their resident value's own buffer. */
  inPlace: Set<string>;
}

/** A compiled train step holding the current parameters and optimizer state. */
export class TrainStep {
  /**
   * Resident values: parameters, optimizer slots, gradient buffers and frozen inputs by name;
   * host tensors (or zeros to allocate) until the next step uploads them.
   */
  #values = new Map<string, Value | HostTensor | Zeros>();
  #accumulate?: Promise<Compiled>;
  #norm?: Promise<Compiled>;
  #step = 0;
  /** With `fixedBuffers`: the kept buffer of each feed (`in:name`) and scalar output (`out:name`). */
  #fixed = new Map<string, Value>();

  private constructor(
    readonly options: TrainStepOptions,
    readonly slots: string[],
    /** The backward graph, built once and shared by the gradient and accumulation graphs. */
    private readonly grads: Tensor[],
    private readonly gradients: Compiled,
    private readonly apply: Compiled,
  ) {}

  /**
   * Builds and compiles the gradient and update graphs (the accumulation graph on first use).
   *
   * @param options Loss, parameters, optimizer and device.
   * @returns A train step with no parameter values yet: call {@linkcode setParams}.
   * @example
   * ```ts
   * import { input } from "../graph/mod.ts";
   * import { TrainStep } from "./mod.ts";
   * const w = input("w", [2]);
   * const step = await TrainStep.create({ loss: w.mul(w).sum(), params: [w] });
   * await step.setParams({ w: { dtype: "float32", shape: [2], data: new Float32Array([1, -1]) } });
   * const { loss } = await step.step({}, { lr: 0.1 });
   * if (loss !== 2) throw new Error("unexpected");
   * await step.release();
   * ```
   */
  static async create(options: TrainStepOptions): Promise<TrainStep> {
    const config = options.optimizer ?? { name: "adamw" };
    for (const p of [...options.params, ...options.frozen ?? []]) {
      if (p.op !== "Input" || !p.shape.every((d) => typeof d === "number")) {
        throw new Error(`Parameter ${p.name ?? p} must be an input with a static shape`);
      }
    }
    for (const [name, m] of Object.entries(options.metrics ?? {})) {
      if (m.rank !== 0) throw new Error(`Metric "${name}" must be a scalar, got ${m}`);
    }
    const grads = grad(options.loss, options.params);
    const gradOutputs: Record<string, Tensor> = {
      loss: options.loss,
      ...options.metrics,
      grad_norm: globalNorm(grads),
    };
    options.params.forEach((p, i) => gradOutputs[gradOf(p.name!)] = grads[i]);
    const compile = compileOptions(options);
    const gradients = await compiled(
      gradOutputs,
      compile,
      options,
      (name) => name.endsWith("::grad") ? name : undefined,
    );
    const apply = await compiled(
      updateGraph(options, config),
      compile,
      options,
      (name) => name.endsWith("::next") ? name.slice(0, -"::next".length) : undefined,
    );
    return new TrainStep(options, stateSlots(config), grads, gradients, apply);
  }

  /** Where the step runs. */
  get device(): ResolvedDevice {
    return this.gradients.program.device;
  }

  /** Names of the inputs a micro-batch must feed: the loss's inputs other than held values. */
  get dataInputs(): string[] {
    const held = new Set(
      [...this.options.params, ...this.options.frozen ?? []].map((p) => p.name!),
    );
    return this.gradients.program.inputs.map((s) => s.name).filter((n) => !held.has(n));
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
    this.#load(values, undefined, 0);
  }

  /**
   * Restores parameters, optimizer state and the step count.
   *
   * @param state What {@linkcode readState} returned.
   */
  loadState(state: TrainState): void {
    this.#load(state.params, state.slots, state.step);
  }

  /** Holds parameters and optimizer state (zeros when `slots` is absent). */
  #load(
    params: Record<string, HostTensor>,
    slots: Record<string, Record<string, HostTensor>> | undefined,
    step: number,
  ): void {
    for (const p of this.options.params) {
      const value = params[p.name!];
      if (!value) throw new Error(`No value for parameter "${p.name}"`);
      checkValue(p, value, "Parameter");
      for (const s of this.slots) {
        if (slots && !slots[s]?.[p.name!]) {
          throw new Error(`No optimizer state "${s}" for parameter "${p.name}"`);
        }
      }
    }
    for (const p of this.options.params) {
      this.#hold(p.name!, params[p.name!]);
      for (const s of this.slots) this.#hold(slot(p.name!, s), slots?.[s][p.name!] ?? zeros(p));
      if (!this.#values.has(gradOf(p.name!))) this.#hold(gradOf(p.name!), zeros(p));
    }
    this.#step = step;
  }

  /**
   * Sets the frozen inputs (see {@linkcode TrainStepOptions.frozen}), kept in their own dtype
   * (float16 and bfloat16 as bit patterns in a `Uint16Array`).
   *
   * @param values Host values by input name.
   */
  setFrozen(values: Record<string, HostTensor>): void {
    const frozen = this.options.frozen ?? [];
    for (const name of Object.keys(values)) {
      if (!frozen.some((f) => f.name === name)) {
        throw new Error(`"${name}" is not a frozen input of this step: declare it in frozen`);
      }
    }
    for (const f of frozen) {
      const value = values[f.name!];
      if (!value) throw new Error(`No value for frozen input "${f.name}"`);
      checkValue(f, value, "Frozen input");
    }
    for (const f of frozen) this.#hold(f.name!, values[f.name!]);
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
    if (!this.#values.has(this.options.params[0].name!)) {
      throw new Error("No parameter values: call setParams() or loadState() first");
    }
    await this.upload();
    const sums: Record<string, number> = {};
    let gradNorm = NaN;
    for (const [i, batch] of list.entries()) {
      const stage = i === 0 ? this.gradients : await this.#accumulation();
      const scalars = await this.#run(stage, batch);
      for (const [name, value] of Object.entries(scalars)) {
        if (name === "grad_norm") gradNorm = value / list.length;
        else sums[name] = (sums[name] ?? 0) + value;
      }
    }
    const world = this.options.world;
    // Averages over every rank's micro-batches (equal-size, so the mean of the global batch).
    const parts = list.length * (world?.size ?? 1);
    if (world && world.size > 1) gradNorm = await this.#reduce(world, sums) / parts;
    const { loss, ...metrics } = Object.fromEntries(
      Object.entries(sums).map(([k, v]) => [k, v / parts]),
    );
    // A non-finite loss or gradient would poison every parameter: the update is not run at all.
    const skipped = !Number.isFinite(gradNorm) || !Number.isFinite(loss);
    if (!skipped) {
      const clip = this.options.maxGradNorm
        ? Math.max(1, (gradNorm + 1e-6) / this.options.maxGradNorm)
        : 1;
      const scalars = { lr: schedule.lr, step: this.#step + 1, grad_scale: 1 / parts / clip };
      await this.#run(this.apply, only(this.apply.program, scalars));
      this.#step++;
    }
    return { loss, gradNorm, skipped, metrics };
  }

  /**
   * Sums the gradient buffers and the scalars `sums` over the ranks, in place.
   *
   * @returns The norm of the summed gradient (√Σg² of the sum, not a sum of the ranks' norms).
   */
  async #reduce(world: World, sums: Record<string, number>): Promise<number> {
    world.sumValues(this.options.params.map((p) => this.#values.get(gradOf(p.name!)) as Value));
    const names = Object.keys(sums);
    const values = Float64Array.from(names, (k) => sums[k]);
    world.sumNumbers(values);
    names.forEach((k, i) => sums[k] = values[i]);
    this.#norm ??= compiled(
      {
        grad_norm: globalNorm(
          this.options.params.map((p) => input(gradOf(p.name!), p.shape, p.dtype)),
        ),
      },
      compileOptions(this.options),
      this.options,
      () => undefined,
    );
    return (await this.#run(await this.#norm, {})).grad_norm;
  }

  /**
   * The parameters and frozen inputs as feeds, shared with other programs of the same backend
   * (evaluation, generation) without copies. Updated in place by later steps; with `inPlace:
   * false` a step replaces (and frees) them, so take them again after each step.
   *
   * @returns Values by input name.
   */
  paramFeeds(): Record<string, Feed> {
    const names = [...this.options.params, ...this.options.frozen ?? []].map((p) => p.name!);
    const feeds: Record<string, Feed> = {};
    for (const n of names) {
      const v = this.#values.get(n);
      if (v) feeds[n] = isZeros(v) ? hostZeros(v) : v;
    }
    return feeds;
  }

  /**
   * Copies parameters and optimizer state to the host (checkpoints only: a full read-back).
   *
   * @returns The state, loadable by {@linkcode loadState}.
   */
  async readState(): Promise<TrainState> {
    const state: TrainState = { step: this.#step, params: {}, slots: {} };
    for (const s of this.slots) state.slots[s] = {};
    const read = async (name: string) => {
      const v = this.#values.get(name)!;
      if (isZeros(v)) return hostZeros(v);
      return isResident(v) ? await this.gradients.program.read(v) : copy(v);
    };
    for (const p of this.options.params) {
      state.params[p.name!] = await read(p.name!);
      for (const s of this.slots) state.slots[s][p.name!] = await read(slot(p.name!, s));
    }
    return state;
  }

  /** Frees the sessions and every resident value. */
  async release(): Promise<void> {
    for (const v of this.#values.values()) if (isResident(v)) v.release();
    this.#values.clear();
    for (const v of this.#fixed.values()) v.release();
    this.#fixed.clear();
    await this.gradients.program.release();
    await this.apply.program.release();
    if (this.#accumulate) await (await this.#accumulate).program.release();
    if (this.#norm) await (await this.#norm).program.release();
  }

  /** Replaces the resident value `name` with `t` (uploaded by the next step). */
  #hold(name: string, t: HostTensor | Zeros): void {
    this.#release(name);
    this.#values.set(name, t);
  }

  #release(name: string): void {
    const old = this.#values.get(name);
    if (old && isResident(old)) old.release();
  }

  /**
   * Copies every value still on the host into runtime memory now (the first {@linkcode step}
   * does it otherwise). After it the step reads none of the host arrays it was given, so their
   * owner may free them.
   */
  async upload(): Promise<void> {
    const program = this.gradients.program;
    for (const [name, v] of this.#values) {
      if (isResident(v)) continue;
      this.#values.set(
        name,
        isZeros(v) ? await program.zeros(v.dtype, v.shape) : await program.upload(v),
      );
    }
  }

  /**
   * Runs one stage with the batch plus every resident value it reads, writes its state outputs
   * into their resident values (in place, or by replacing them), and returns its scalars.
   */
  async #run(stage: Compiled, feeds: Record<string, Feed>): Promise<Record<string, number>> {
    const { program, targets, inPlace } = stage;
    const fixed = this.options.fixedBuffers === true;
    const all: Record<string, Feed> = { ...feeds };
    for (const spec of program.inputs) {
      const held = this.#values.get(spec.name);
      if (held && !(spec.name in feeds)) all[spec.name] = held as Value;
      else if (fixed && spec.name in feeds && !isValue(feeds[spec.name])) {
        all[spec.name] = await this.#keep(
          program,
          `in:${spec.name}`,
          hostFeed(spec, all[spec.name] as HostTensor | number),
        );
      }
    }
    const into: Record<string, Value> = {};
    for (const output of inPlace) into[output] = this.#values.get(targets[output])! as Value;
    const scalars: Record<string, number> = {};
    if (fixed) {
      const outputs = program.outputs.filter((spec) => !(spec.name in targets));
      for (const spec of outputs) {
        into[spec.name] = await this.#keep(program, `out:${spec.name}`, hostFeed(spec, 0));
      }
      await program.runRaw(all, { into });
      for (const spec of outputs) {
        scalars[spec.name] = (await program.read(into[spec.name])).data[0] as number;
      }
      return scalars;
    }
    const raw = await program.runRaw(all, { into });
    try {
      for (const [name, value] of Object.entries(raw)) {
        const target = targets[name];
        if (target !== undefined) {
          // Out of place: the fresh buffer becomes the resident value.
          this.#release(target);
          this.#values.set(target, value);
          delete raw[name];
        } else scalars[name] = (await program.read(value)).data[0] as number;
      }
    } finally {
      for (const v of Object.values(raw)) v.release();
    }
    return scalars;
  }

  /**
   * The kept buffer `key` holding `t`: uploaded on first use, overwritten in place after (the
   * same address every run, as a captured CUDA graph needs).
   */
  async #keep(program: Program, key: string, t: HostTensor): Promise<Value> {
    const kept = this.#fixed.get(key);
    if (kept) {
      await program.write(kept, t);
      return kept;
    }
    const value = await program.upload(t);
    this.#fixed.set(key, value);
    return value;
  }

  #accumulation(): Promise<Compiled> {
    this.#accumulate ??= (async () => {
      const { options } = this;
      const outputs: Record<string, Tensor> = { loss: options.loss, ...options.metrics };
      const sums = options.params.map((p, i) =>
        input(gradOf(p.name!), p.shape, p.dtype).add(this.grads[i])
      );
      outputs.grad_norm = globalNorm(sums);
      options.params.forEach((p, i) => outputs[next(gradOf(p.name!))] = sums[i]);
      return await compiled(
        outputs,
        compileOptions(options),
        options,
        (name) => name.endsWith("::grad::next") ? name.slice(0, -"::next".length) : undefined,
      );
    })();
    return this.#accumulate;
  }
}

/**
 * Compiles `outputs` and decides, per state output, whether it is written into its resident value
 * (in place) or into a fresh buffer that replaces it.
 */
async function compiled(
  outputs: Record<string, Tensor>,
  compile: CompileOptions,
  options: TrainStepOptions,
  target: (output: string) => string | undefined,
): Promise<Compiled> {
  const targets: Record<string, string> = {};
  for (const name of Object.keys(outputs)) {
    const resident = target(name);
    if (resident !== undefined) targets[name] = resident;
  }
  const program = await Program.compile(outputs, {
    ...compile,
    keepOnDevice: Object.keys(targets),
  });
  const inPlace = new Set<string>();
  for (const [name, resident] of Object.entries(targets)) {
    // A buffer that no input of this graph reads can always be written; one that is read only
    // when the graph provably reads it before the write (and the caller allows it).
    const read = program.inputs.some((s) => s.name === resident);
    if (!read || (options.inPlace !== false && inPlaceSafe(outputs, resident, outputs[name]))) {
      inPlace.add(name);
    } else if (options.fixedBuffers) {
      await program.release();
      throw new Error(
        `fixedBuffers needs every state output written in place, and "${name}" is not` +
          (options.inPlace === false ? " (inPlace is false)" : ""),
      );
    }
  }
  return { program, targets, inPlace };
}

function compileOptions(options: TrainStepOptions): CompileOptions {
  const { device, backend, profile, cacheDir, staticDims } = options;
  return {
    device,
    backend,
    profile,
    cacheDir,
    staticDims,
    cudaGraph: options.fixedBuffers && device === "cuda",
  };
}

/** The update graph: parameters and optimizer state in, their next values out. */
function updateGraph(options: TrainStepOptions, config: OptimizerConfig): Record<string, Tensor> {
  const dtype = options.params[0].dtype;
  const lr = input("lr", [], dtype);
  const step = input("step", [], dtype);
  const gradScale = input("grad_scale", [], dtype);
  const decay = options.decay ?? ((p: Tensor) => p.rank >= 2);
  const outputs: Record<string, Tensor> = {};
  for (const p of options.params) {
    const state: Record<string, Tensor> = {};
    for (const s of stateSlots(config)) state[s] = input(slot(p.name!, s), p.shape, p.dtype);
    const g = input(gradOf(p.name!), p.shape, p.dtype);
    const updated = update(config, { param: p, grad: g, state, decay: decay(p) }, {
      lr,
      step,
      gradScale,
    });
    outputs[next(p.name!)] = updated.param;
    for (const s of Object.keys(state)) outputs[next(slot(p.name!, s))] = updated.state[s];
  }
  return outputs;
}

/** √(Σ g²) over every gradient, one read pass each. */
function globalNorm(grads: Tensor[]): Tensor {
  return sqrt(grads.map((g) => sumSquares(g)).reduce((a, b) => a.add(b)));
}

/** The scalar feeds `program` takes (SGD leaves `step` unused, so it is not an input). */
function only(program: Program, feeds: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(feeds).filter(([name]) => program.inputs.some((spec) => spec.name === name)),
  );
}

function checkValue(p: Tensor, value: HostTensor, what: string): void {
  if (value.shape.join() !== p.shape.join() || value.dtype !== p.dtype) {
    throw new Error(`${what} "${p.name}" is ${p}, got ${value.dtype}[${value.shape}]`);
  }
}

function copy(t: HostTensor): HostTensor {
  return { dtype: t.dtype, shape: [...t.shape], data: t.data.slice() };
}

/** A zero-filled tensor still to be allocated in runtime memory. */
interface Zeros {
  zeros: true;
  dtype: DType;
  shape: number[];
}

function zeros(p: Tensor): Zeros {
  return { zeros: true, dtype: p.dtype, shape: p.shape as number[] };
}

function isZeros(v: Value | HostTensor | Zeros): v is Zeros {
  return "zeros" in v;
}

function isResident(v: Value | HostTensor | Zeros): v is Value {
  return "backend" in v;
}

function hostZeros(z: Zeros): HostTensor {
  const n = z.shape.reduce((a, b) => a * b, 1);
  return { dtype: z.dtype, shape: [...z.shape], data: arrayFor(z.dtype, n) };
}
