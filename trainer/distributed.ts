/**
 * Data-parallel runs as ranks of MPI: `deno task train --nproc_per_node N` starts N copies of
 * train.ts under MPICH's `mpiexec` (as `mpiexec -n N deno task train` does by hand, with a
 * hostfile for several machines); each copy joins the world and trains on its shard of every
 * batch, and the train step averages gradients over the ranks (`runtime/world.ts`).
 *
 *   global micro-batch k of the seeded order (per_device_train_batch_size × N examples)
 *     → rank r takes its every N-th example from the r-th, as torch's DistributedSampler
 *     → one all-reduce of the gradients (and scalars) per optimizer step
 *
 * The data position counts global micro-batches, so a run resumes under another world size with
 * the same global batch. MPI is loaded only when the world has more than one rank.
 *
 * @module
 */
import { join } from "node:path";
import { Mpi } from "../runtime/mpi.ts";
import { setIntraOpThreads } from "../runtime/native.ts";
import { mpiWorld, type World } from "../runtime/world.ts";
import { globalBatchSize } from "./batches.ts";
import type { TrainConfig } from "./config.ts";

/** The launcher's flag (torchrun's name): ranks on this machine. */
export const NPROC_FLAG = "--nproc_per_node";

/**
 * The folder where each rank keeps its count of collectives entered (`rank-<r>`), set by
 * {@link launch} for its watchdog.
 */
const HEARTBEAT_ENV = "DA_HEARTBEAT_DIR";

/** Where this process stands in a job, from the environment MPICH's `mpiexec` sets. */
export interface RankEnv {
  /** 0 ≤ rank < size. */
  rank: number;
  /** Ranks in the job. */
  size: number;
  /** This rank's index among the ranks on its machine. */
  localRank: number;
  /** Ranks on this machine. */
  localSize: number;
}

/**
 * This process's rank from MPICH's variables (`PMI_RANK`, `PMI_SIZE`, `MPI_LOCALRANKID`,
 * `MPI_LOCALNRANKS`); a single rank when they are absent.
 *
 * @param env The environment.
 * @returns The rank.
 * @throws Under Open MPI's `mpiexec` (not bound yet: use MPICH's).
 * @example
 * ```ts
 * import { rankEnv } from "./distributed.ts";
 * const r = rankEnv({ PMI_RANK: "1", PMI_SIZE: "2", MPI_LOCALRANKID: "1", MPI_LOCALNRANKS: "2" });
 * if (r.rank !== 1 || r.size !== 2) throw new Error("unexpected");
 * if (rankEnv({}).size !== 1) throw new Error("unexpected");
 * ```
 */
export function rankEnv(env: Record<string, string | undefined> = Deno.env.toObject()): RankEnv {
  if (env.OMPI_COMM_WORLD_SIZE && !env.PMI_SIZE) {
    throw new Error(
      "Started by Open MPI's mpiexec, which this trainer does not bind yet: use MPICH's " +
        "(mpiexec.mpich, Debian package mpich)",
    );
  }
  const int = (v: string | undefined, fallback: number) => v === undefined ? fallback : Number(v);
  const size = int(env.PMI_SIZE, 1);
  return {
    rank: int(env.PMI_RANK, 0),
    size,
    localRank: int(env.MPI_LOCALRANKID, 0),
    localSize: int(env.MPI_LOCALNRANKS, size),
  };
}

/**
 * Joins the job `mpiexec` started (nothing for a single rank): MPI initialised, onnxruntime's
 * threads split between the machine's ranks, and on CUDA this rank's GPU (its local rank) made
 * the only visible one before any CUDA call.
 *
 * @param device The run's device.
 * @returns The world, or null for a plain run.
 * @throws When the ranks on a machine outnumber the GPUs in `CUDA_VISIBLE_DEVICES`.
 */
export function joinWorld(device: string): World | null {
  const env = rankEnv();
  if (env.size <= 1) return null;
  if (device === "cuda") {
    const visible = Deno.env.get("CUDA_VISIBLE_DEVICES")?.split(",").filter(Boolean);
    if (visible && env.localRank >= visible.length) {
      throw new Error(
        `${env.localSize} ranks on this machine but CUDA_VISIBLE_DEVICES lists ` +
          `${visible.length} GPUs: pass --nproc_per_node ${visible.length} or fewer`,
      );
    }
    Deno.env.set("CUDA_VISIBLE_DEVICES", visible?.[env.localRank] ?? String(env.localRank));
  } else {
    const cores = navigator.hardwareConcurrency ?? 1;
    setIntraOpThreads(Math.max(1, Math.floor(cores / env.localSize)));
  }
  const beats = Deno.env.get(HEARTBEAT_ENV);
  return mpiWorld(Mpi.init(), { device: 0, heartbeat: beats && join(beats, `rank-${env.rank}`) });
}

/**
 * The config a resumed run uses under another world size: the per-device batch rescaled so the
 * global micro-batch (per-device batch × ranks) stays, and the data position, counted in global
 * micro-batches, means the same examples.
 *
 * @param config The resolved config (the saved run's per-device batch, unless overridden).
 * @param ranks `saved`: the checkpoint's world size; `world`: this run's (null: one rank).
 * @returns The config, and a line saying what changed (null when nothing did).
 * @throws When the global micro-batch does not split evenly over this run's ranks.
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * import { keepGlobalBatch } from "./distributed.ts";
 * const { config } = resolveConfig({ cli: { per_device_train_batch_size: "4" } });
 * const kept = keepGlobalBatch(config, { saved: 2, world: null });
 * if (kept.config.per_device_train_batch_size !== 8) throw new Error("unexpected");
 * ```
 */
export function keepGlobalBatch(
  config: TrainConfig,
  ranks: { saved: number; world: Pick<World, "size"> | null },
): { config: TrainConfig; notice: string | null } {
  const { saved } = ranks;
  const now = ranks.world?.size ?? 1;
  if (saved === now) return { config, notice: null };
  const before = config.per_device_train_batch_size;
  const global = globalBatchSize(config, saved);
  if (global % now !== 0) {
    throw new Error(
      `Cannot resume a ${saved}-rank run on ${now} ranks: its global micro-batch of ${global} ` +
        `examples does not split evenly; resume with ${NPROC_FLAG} dividing ${global}`,
    );
  }
  const after = global / now;
  return {
    config: { ...config, per_device_train_batch_size: after },
    notice: `Resume: ${saved} ranks → ${now}: per_device_train_batch_size ${before} → ${after} ` +
      `keeps the global batch of ${global}`,
  };
}

/**
 * The `--nproc_per_node N` of `args` (validated), and the other arguments.
 *
 * @param args Command-line arguments.
 * @returns `nproc` (null when absent) and `rest`.
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { takeNproc } from "./distributed.ts";
 * deepStrictEqual(takeNproc(["--nproc_per_node", "2", "--loss", "dpo"]), { nproc: 2, rest: ["--loss", "dpo"] });
 * ```
 */
export function takeNproc(args: string[]): { nproc: number | null; rest: string[] } {
  const at = args.findIndex((a) => a === NPROC_FLAG || a.startsWith(`${NPROC_FLAG}=`));
  if (at < 0) return { nproc: null, rest: args };
  const inline = args[at].includes("=");
  const raw = inline ? args[at].split("=")[1] : args[at + 1];
  const nproc = Number(raw);
  if (!Number.isInteger(nproc) || nproc < 1) {
    throw new Error(`Invalid ${NPROC_FLAG} ${raw}: expected a whole number of ranks ≥ 1`);
  }
  if (rankEnv().size > 1) {
    throw new Error(
      `${NPROC_FLAG} starts the ranks itself: under mpiexec drop it (mpiexec -n sets the ranks)`,
    );
  }
  return { nproc, rest: [...args.slice(0, at), ...args.slice(at + (inline ? 1 : 2))] };
}

/**
 * Runs `script args` as `nproc` ranks under `mpiexec` and waits: the job's exit status, and on a
 * failure one line naming the ranks that failed. A rank that dies ends the job (mpiexec stops the
 * others); one that stalls while the others wait on it for `timeout` seconds is named and the job
 * stopped (a watchdog on the ranks' counts of collectives entered).
 *
 * @param script The entry point each rank runs (train.ts).
 * @param options `args`: its arguments; `nproc`: ranks; `permissions`: the deno.json permission
 *   set the ranks run with; `timeout`: seconds (the config's `ddp_timeout`).
 * @returns The exit status (0 when every rank finished).
 * @throws When `mpiexec` is not installed.
 */
export async function launch(
  script: string,
  options: { args: string[]; nproc: number; permissions: string; timeout: number },
): Promise<number> {
  const deno = ["run", `-P=${options.permissions}`, script, ...options.args];
  const beats = await Deno.makeTempDir({ prefix: "da-ranks-" });
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("mpiexec", {
      args: ["-print-all-exitcodes", "-n", String(options.nproc), Deno.execPath(), ...deno],
      env: { [HEARTBEAT_ENV]: beats },
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new Error(
      `${NPROC_FLAG} ${options.nproc} needs mpiexec on PATH: install MPICH ` +
        "(apt-get install mpich libmpich-dev)",
    );
  }
  let stalled: string | null = null;
  const watchdog = watch(beats, { size: options.nproc, timeout: options.timeout }, (line) => {
    stalled = line;
    child.kill("SIGTERM"); // mpiexec then ends every rank
  });
  // mpiexec's summary line is on stdout, among the ranks' own output, which passes through.
  let codes = "";
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let pending = ""; // a partial line, held back until it ends
  for await (const chunk of child.stdout) {
    const lines = (pending + decoder.decode(chunk, { stream: true })).split("\n");
    pending = lines.pop()!;
    const shown = lines.filter((line) => {
      const summary = /Exit codes: (.*)/.exec(line);
      if (summary) codes = summary[1];
      return !summary;
    });
    if (shown.length) await Deno.stdout.write(encoder.encode(shown.join("\n") + "\n"));
  }
  if (pending) await Deno.stdout.write(encoder.encode(pending));
  const { code } = await child.status;
  clearInterval(watchdog);
  await Deno.remove(beats, { recursive: true });
  if (stalled) {
    console.error(`error: ${stalled}; the job was stopped`);
    return 1;
  }
  if (code !== 0) console.error(`error: ${failedRanks(codes, options.nproc) ?? "the job failed"}`);
  return code;
}

/** A rank's heartbeat (runtime/world.ts): collectives entered, inside one now, process id. */
interface Beat {
  calls: number;
  inside: boolean;
  pid: number;
}

/**
 * Checks the ranks' heartbeats every second. When none has changed for `timeout` seconds while a
 * rank waits inside a collective, the job is stuck, and `stop` gets a line naming the stalled
 * ranks: those behind the others' collective, or, when all are inside the same one, those that
 * `ps` shows stopped (T) or in uninterruptible sleep (D), else those that used no CPU time while
 * the others did (MPICH's waiting ranks poll) — for the ranks on this machine.
 */
function watch(
  dir: string,
  options: { size: number; timeout: number },
  stop: (line: string) => void,
): ReturnType<typeof setInterval> {
  const { size, timeout } = options;
  let last = "", since = performance.now(), busy = false;
  let atChange = new Map<number, Proc>();
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    const beats = Array.from({ length: size }, (_, r): Beat => {
      try {
        const [calls, state, pid] = Deno.readTextFileSync(join(dir, `rank-${r}`)).split(" ");
        return { calls: Number(calls), inside: state === "in", pid: Number(pid) };
      } catch {
        return { calls: 0, inside: false, pid: 0 }; // before its first collective
      }
    });
    const procs = await processes(beats.map((b) => b.pid).filter((pid) => pid > 0));
    busy = false;
    const now = JSON.stringify(beats.map((b) => [b.calls, b.inside]));
    if (now !== last) [last, since, atChange] = [now, performance.now(), procs];
    if (performance.now() - since < timeout * 1000 || !beats.some((b) => b.inside)) return;
    const top = beats.reduce((most, b) => Math.max(most, b.calls), 0);
    const ranksWhere = (test: (b: Beat, p?: Proc) => boolean) =>
      beats.flatMap((b, r) => test(b, procs.get(b.pid)) ? [r] : []);
    const idle = (b: Beat, p?: Proc) => p !== undefined && p.cpu === atChange.get(b.pid)?.cpu;
    const stalled = [
      ranksWhere((b) => b.calls < top || !b.inside),
      ranksWhere((_, p) => p?.state === "T" || p?.state === "D"),
      ranksWhere(idle).length < size ? ranksWhere(idle) : [],
    ].find((ranks) => ranks.length > 0) ?? [];
    clearInterval(timer);
    // A stopped process ignores mpiexec's SIGTERM until it is continued: end the stalled ranks
    // seen on this machine outright.
    // (All of them when none could be told apart: the job must end.)
    const pids = (stalled.length ? stalled : beats.map((_, r) => r))
      .flatMap((r) => procs.has(beats[r].pid) ? [String(beats[r].pid)] : []);
    if (pids.length) await new Deno.Command("kill", { args: ["-KILL", ...pids] }).output();
    const who = stalled.length ? stalled.map((r) => `rank ${r}`).join(", ") : "a rank";
    stop(`${who} of ${size} stalled: the others waited ${timeout} s on it (ddp_timeout)`);
  }, 1000);
  return timer;
}

/** What `ps` says of a process: its state letter and CPU seconds used. */
interface Proc {
  state: string;
  cpu: number;
}

/** State and CPU time of each of `pids` that runs on this machine. */
async function processes(pids: number[]): Promise<Map<number, Proc>> {
  const found = new Map<number, Proc>();
  if (pids.length === 0) return found;
  const ps = await new Deno.Command("ps", {
    args: ["-o", "pid=,state=,times=", "-p", pids.join(",")],
  }).output().catch(() => null);
  for (const line of new TextDecoder().decode(ps?.stdout).trim().split("\n")) {
    const [pid, state, cpu] = line.trim().split(/\s+/);
    if (state) found.set(Number(pid), { state, cpu: Number(cpu) });
  }
  return found;
}

/**
 * Which ranks failed, from mpiexec's `Exit codes: [host] s0,s1 [host2] ...` (wait statuses, in
 * rank order).
 *
 * @param codes The text after `Exit codes: `.
 * @param size Ranks.
 * @returns A line naming them, or null when the line says none.
 * @example
 * ```ts
 * import { failedRanks } from "./distributed.ts";
 * const line = failedRanks("[vm] 0,9", 2);
 * if (line !== "rank 1 of 2 was killed by signal 9; mpiexec stopped the others") throw new Error(line!);
 * ```
 */
export function failedRanks(codes: string, size: number): string | null {
  const statuses = [...codes.matchAll(/\[[^\]]*\]\s*([\d,]+)/g)]
    .flatMap((m) => m[1].split(",").map(Number));
  const failed = statuses.flatMap((status, rank) => {
    if (status === 0) return [];
    const signal = status & 0x7f;
    return [
      `rank ${rank} of ${size} ${
        signal ? `was killed by signal ${signal}` : `exited with status ${status >> 8}`
      }`,
    ];
  });
  return failed.length ? `${failed.join(", ")}; mpiexec stopped the others` : null;
}
