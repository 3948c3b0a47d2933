/**
 * The ranks a train step averages its gradients over: a {@link World} sums values in place across
 * ranks. {@link mpiWorld} does it with MPI on host memory (onnxruntime's CPU tensors) and hands
 * device tensors to NCCL, whose communicator is made on first use from a unique id that rank 0
 * broadcasts over MPI.
 *
 * @module
 */
import type { Mpi } from "./mpi.ts";
import { NativeValue } from "./native.ts";
import { Nccl } from "./nccl.ts";
import type { Value } from "./program.ts";

/** The processes of one data-parallel job, as a train step sees them. */
export interface World {
  /** This process's rank, 0 ≤ rank < size. */
  readonly rank: number;
  /** Ranks in the job. */
  readonly size: number;
  /**
   * Sums each float32 value over the ranks, in place (every rank passes the same list).
   *
   * @param values Runtime values (host or device memory).
   */
  sumValues(values: Value[]): void;
  /**
   * Sums numbers over the ranks, in place.
   *
   * @param values The same count on every rank.
   */
  sumNumbers(values: Float64Array<ArrayBuffer>): void;
  /**
   * Every rank's bytes, in rank order, on every rank.
   *
   * @param bytes This rank's part (any length).
   * @returns The parts of ranks 0…size-1.
   */
  allGather(bytes: Uint8Array<ArrayBuffer>): Uint8Array[];
}

/**
 * The world of MPI's ranks: host values summed by `MPI_Allreduce`, device values by NCCL.
 *
 * @param mpi This process's rank (from `Mpi.init`).
 * @param options `device`: the CUDA device of this rank's values (its local rank); `heartbeat`: a
 *   file where the count of collectives entered is kept (see `trainer/distributed.ts`).
 * @returns The world.
 */
export function mpiWorld(
  mpi: Mpi,
  options: { device?: number; heartbeat?: string } = {},
): World {
  let nccl: Nccl | null = null;
  let calls = 0;
  // For a watchdog outside (trainer/distributed.ts): collectives entered, whether this rank is
  // inside one, and its process id.
  const beat = (inside: boolean) => {
    if (!options.heartbeat) return;
    // Written whole (a rename): a reader never sees a half-written line, even of a stopped rank.
    const tmp = `${options.heartbeat}.tmp`;
    Deno.writeTextFileSync(tmp, `${calls} ${inside ? "in" : "out"} ${Deno.pid}`);
    Deno.renameSync(tmp, options.heartbeat);
  };
  beat(false);
  const collective = <T>(call: () => T): T => {
    calls++;
    beat(true);
    const result = call();
    beat(false);
    return result;
  };
  return {
    rank: mpi.rank,
    size: mpi.size,
    sumValues(values: Value[]): void {
      collective(() => sumEach(values));
    },
    sumNumbers(values: Float64Array<ArrayBuffer>): void {
      collective(() => mpi.sumFloat64(values));
    },
    allGather(bytes: Uint8Array<ArrayBuffer>): Uint8Array[] {
      return collective(() => mpi.allGather(bytes));
    },
  };

  function sumEach(values: Value[]): void {
    for (const value of values) {
      if (!(value instanceof NativeValue) || value.dtype !== "float32") {
        throw new Error(
          `Cannot all-reduce a ${value.backend} ${value.dtype} value: ` +
            "data-parallel training needs the native backend's float32 gradients",
        );
      }
      const count = value.shape.reduce((a, b) => a * b, 1);
      if (!value.onDevice) mpi.sumFloat32(value.dataPointer, count);
      else {
        nccl ??= Nccl.init(mpi, options.device ?? 0);
        nccl.sumFloat32(value.dataPointer, count);
      }
    }
    nccl?.synchronize();
  }
}
