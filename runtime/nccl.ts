/**
 * NCCL through Deno FFI: the sum all-reduce of gradients in CUDA device memory, one communicator
 * per job made from a 128-byte unique id that rank 0 draws and MPI broadcasts.
 *
 * Stream order: onnxruntime's CUDA runs end with `SynchronizeBoundOutputs` (the gradients are
 * complete when a run returns); the all-reduces are queued on a stream of NCCL's own, and
 * {@link Nccl.synchronize} waits for it before the next onnxruntime run reads the sums.
 *
 * Untested on a GPU so far: no device was lent while it was written (BENCHMARKS.md, "Data
 * parallel").
 *
 * @module
 */
import type { Mpi } from "./mpi.ts";

/** `ncclUniqueId`: 128 opaque bytes, passed by value to `ncclCommInitRank`. */
const UNIQUE_ID = { struct: Array<"u8">(128).fill("u8") } as const;
const P = "pointer" as const, B = "buffer" as const, I = "i32" as const;

const NCCL = {
  ncclGetUniqueId: { parameters: [B], result: I },
  ncclCommInitRank: { parameters: [B, I, UNIQUE_ID, I], result: I },
  ncclAllReduce: { parameters: [P, P, "usize", I, I, P, P], result: I },
  ncclCommDestroy: { parameters: [P], result: I },
  ncclGetErrorString: { parameters: [I], result: P },
} as const;

const CUDART = {
  cudaSetDevice: { parameters: [I], result: I },
  cudaStreamCreate: { parameters: [B], result: I },
  cudaStreamSynchronize: { parameters: [P], result: I },
} as const;

/** `ncclFloat32` and `ncclSum` of nccl.h. */
const NCCL_FLOAT32 = 7, NCCL_SUM = 0;

/** This rank's NCCL communicator and the stream its all-reduces run on. */
export class Nccl {
  private constructor(
    private readonly nccl: Deno.DynamicLibrary<typeof NCCL>,
    private readonly cuda: Deno.DynamicLibrary<typeof CUDART>,
    private readonly comm: Deno.PointerValue,
    private readonly stream: Deno.PointerValue,
  ) {}

  /**
   * Joins every rank of `mpi` in one NCCL communicator on CUDA device `device`.
   *
   * @param mpi The job's ranks (carries the unique id from rank 0); a one-rank check may pass
   *   `{ rank: 0, size: 1, broadcast() {} }`.
   * @param device This rank's CUDA device (its local rank).
   * @returns The communicator.
   * @throws When `libnccl.so.2` or `libcudart.so` cannot be loaded, naming the fix.
   */
  static init(mpi: Pick<Mpi, "rank" | "size" | "broadcast">, device: number): Nccl {
    const nccl = open(
      ["libnccl.so.2"],
      NCCL,
      "NCCL (pip install nvidia-nccl-cu13, or apt libnccl2)",
    );
    const cuda = open(["libcudart.so.13", "libcudart.so.12"], CUDART, "the CUDA runtime");
    cudaOk(cuda.symbols.cudaSetDevice(device), "cudaSetDevice");
    const id = new Uint8Array(128);
    if (mpi.rank === 0) ncclOk(nccl, nccl.symbols.ncclGetUniqueId(id), "ncclGetUniqueId");
    mpi.broadcast(id, 0);
    const cell = new BigUint64Array(1);
    ncclOk(nccl, nccl.symbols.ncclCommInitRank(cell, mpi.size, id, mpi.rank), "ncclCommInitRank");
    const comm = Deno.UnsafePointer.create(cell[0]);
    cudaOk(cuda.symbols.cudaStreamCreate(cell), "cudaStreamCreate");
    return new Nccl(nccl, cuda, comm, Deno.UnsafePointer.create(cell[0]));
  }

  /**
   * Queues the in-place sum over ranks of `count` float32 values at device address `data`.
   *
   * @param data Device memory.
   * @param count Elements.
   */
  sumFloat32(data: Deno.PointerValue, count: number): void {
    ncclOk(
      this.nccl,
      this.nccl.symbols.ncclAllReduce(
        data,
        data,
        BigInt(count),
        NCCL_FLOAT32,
        NCCL_SUM,
        this.comm,
        this.stream,
      ),
      "ncclAllReduce",
    );
  }

  /** Waits until every queued all-reduce is done. */
  synchronize(): void {
    cudaOk(this.cuda.symbols.cudaStreamSynchronize(this.stream), "cudaStreamSynchronize");
  }

  /** Frees the communicator. */
  destroy(): void {
    ncclOk(this.nccl, this.nccl.symbols.ncclCommDestroy(this.comm), "ncclCommDestroy");
  }
}

/** The first of `names` that loads (newest first), or one line naming them all and the fix. */
function open<S extends Deno.ForeignLibraryInterface>(
  names: string[],
  symbols: S,
  what: string,
): Deno.DynamicLibrary<S> {
  const errors = [];
  for (const name of names) {
    try {
      return Deno.dlopen(name, symbols);
    } catch (error) {
      errors.push((error as Error).message);
    }
  }
  throw new Error(`Cannot load ${names.join(" or ")}: install ${what}: ${errors.join("; ")}`);
}

function ncclOk(lib: Deno.DynamicLibrary<typeof NCCL>, code: number, call: string): void {
  if (code === 0) return;
  const text = lib.symbols.ncclGetErrorString(code);
  const why = text ? Deno.UnsafePointerView.getCString(text) : `error ${code}`;
  throw new Error(`${call} failed: ${why}`);
}

function cudaOk(code: number, call: string): void {
  if (code !== 0) throw new Error(`${call} failed with CUDA error ${code}`);
}
