/**
 * MPI through Deno FFI: the ranks of a data-parallel job and the collectives on host memory it
 * needs (sum all-reduce in place, barrier, all-gather of bytes, abort). Loaded only by a process
 * that `mpiexec` started with more than one rank, so plain runs never need an MPI library.
 *
 * An implementation is one {@link MpiAbi} row: its library names and the values of its handles.
 * MPICH's handles are plain ints (from its `mpi.h`), so its row is constants; Open MPI's are
 * addresses of exported objects (`ompi_mpi_comm_world`, ...), which a second row would look up
 * with `Deno.UnsafePointer.of` on those symbols, and its handle parameters would be pointers.
 *
 * Calls block the JS thread (MPI is initialised single-threaded): a rank waiting for a slower one
 * is idle, and a rank that died ends the job through `mpiexec`, which kills the others.
 *
 * @module
 */

/** One MPI implementation's ABI: where its library is and the values of the handles used. */
export interface MpiAbi {
  /** Library names tried in order. */
  library: string[];
  MPI_COMM_WORLD: number;
  MPI_FLOAT: number;
  MPI_DOUBLE: number;
  MPI_BYTE: number;
  MPI_INT: number;
  MPI_SUM: number;
  /** `(void *) -1`. */
  MPI_IN_PLACE: bigint;
}

/** MPICH 4 (Debian's `mpich`, also Intel MPI and MVAPICH, which share its ABI). */
export const MPICH: MpiAbi = {
  library: ["libmpich.so.12", "libmpi.so.12", "libmpich.so"],
  MPI_COMM_WORLD: 0x44000000,
  MPI_FLOAT: 0x4c00040a,
  MPI_DOUBLE: 0x4c00080b,
  MPI_BYTE: 0x4c00010d,
  MPI_INT: 0x4c000405,
  MPI_SUM: 0x58000003,
  MPI_IN_PLACE: 0xffffffffffffffffn,
};

const P = "pointer" as const, B = "buffer" as const, I = "i32" as const;

const SYMBOLS = {
  MPI_Init: { parameters: [P, P], result: I },
  MPI_Finalize: { parameters: [], result: I },
  MPI_Comm_rank: { parameters: [I, B], result: I },
  MPI_Comm_size: { parameters: [I, B], result: I },
  MPI_Allreduce: { parameters: [P, P, I, I, I, I], result: I },
  MPI_Allgather: { parameters: [B, I, I, B, I, I, I], result: I },
  MPI_Allgatherv: { parameters: [B, I, I, B, B, B, I, I], result: I },
  MPI_Bcast: { parameters: [B, I, I, I, I], result: I },
  MPI_Barrier: { parameters: [I], result: I },
  MPI_Abort: { parameters: [I, I], result: I },
} as const;

/** Process-wide: MPI may be initialised once per process. */
let opened: Mpi | null = null;

/** This process as one rank of `MPI_COMM_WORLD`. */
export class Mpi {
  private constructor(
    private readonly lib: Deno.DynamicLibrary<typeof SYMBOLS>,
    private readonly abi: MpiAbi,
    /** This process's rank, 0 ≤ rank < size. */
    readonly rank: number,
    /** Ranks in the job. */
    readonly size: number,
  ) {}

  /** This process's rank once {@link init} ran, else null (a plain run). */
  static get current(): Mpi | null {
    return opened;
  }

  /**
   * Loads the MPI library and initialises MPI (once per process; later calls return the same).
   *
   * @param abi The implementation.
   * @returns This process's rank in the world.
   * @throws When no library of `abi` can be loaded: install `mpich` (the line says how).
   */
  static init(abi: MpiAbi = MPICH): Mpi {
    if (opened) return opened;
    let lib: Deno.DynamicLibrary<typeof SYMBOLS> | null = null;
    for (const name of abi.library) {
      try {
        lib = Deno.dlopen(name, SYMBOLS);
        break;
      } catch { /* the next name */ }
    }
    if (!lib) {
      throw new Error(
        `Cannot load MPI (tried ${abi.library.join(", ")}): install MPICH ` +
          "(apt-get install mpich libmpich-dev)",
      );
    }
    const fn = lib.symbols;
    ok(fn.MPI_Init(null, null), "MPI_Init");
    const cell = new Int32Array(1);
    ok(fn.MPI_Comm_rank(abi.MPI_COMM_WORLD, cell), "MPI_Comm_rank");
    const rank = cell[0];
    ok(fn.MPI_Comm_size(abi.MPI_COMM_WORLD, cell), "MPI_Comm_size");
    opened = new Mpi(lib, abi, rank, cell[0]);
    return opened;
  }

  /**
   * Sums `count` float32 values at `data` over every rank, in place.
   *
   * @param data Host memory (e.g. an onnxruntime CPU tensor's data).
   * @param count Elements.
   */
  sumFloat32(data: Deno.PointerValue, count: number): void {
    const inPlace = Deno.UnsafePointer.create(this.abi.MPI_IN_PLACE);
    const { MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD } = this.abi;
    ok(
      this.lib.symbols.MPI_Allreduce(inPlace, data, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
      "MPI_Allreduce",
    );
  }

  /**
   * Sums `values` over every rank, in place.
   *
   * @param values One entry per quantity, the same length on every rank.
   */
  sumFloat64(values: Float64Array<ArrayBuffer>): void {
    const inPlace = Deno.UnsafePointer.create(this.abi.MPI_IN_PLACE);
    const { MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD } = this.abi;
    const at = Deno.UnsafePointer.of(values);
    ok(
      this.lib.symbols.MPI_Allreduce(
        inPlace,
        at,
        values.length,
        MPI_DOUBLE,
        MPI_SUM,
        MPI_COMM_WORLD,
      ),
      "MPI_Allreduce",
    );
  }

  /**
   * Every rank's bytes, in rank order, on every rank.
   *
   * @param bytes This rank's part (any length).
   * @returns The parts of ranks 0…size-1.
   */
  allGather(bytes: Uint8Array<ArrayBuffer>): Uint8Array[] {
    const { MPI_INT, MPI_BYTE, MPI_COMM_WORLD } = this.abi;
    const fn = this.lib.symbols;
    const sizes = new Int32Array(this.size);
    ok(
      fn.MPI_Allgather(
        new Int32Array([bytes.length]),
        1,
        MPI_INT,
        sizes,
        1,
        MPI_INT,
        MPI_COMM_WORLD,
      ),
      "MPI_Allgather",
    );
    const offsets = new Int32Array(this.size);
    for (let r = 1; r < this.size; r++) offsets[r] = offsets[r - 1] + sizes[r - 1];
    const all = new Uint8Array(offsets[this.size - 1] + sizes[this.size - 1]);
    ok(
      fn.MPI_Allgatherv(
        bytes,
        bytes.length,
        MPI_BYTE,
        all,
        sizes,
        offsets,
        MPI_BYTE,
        MPI_COMM_WORLD,
      ),
      "MPI_Allgatherv",
    );
    return [...sizes].map((n, r) => all.subarray(offsets[r], offsets[r] + n));
  }

  /**
   * Rank `root`'s bytes on every rank (e.g. NCCL's unique id).
   *
   * @param bytes The buffer: filled on `root`, overwritten on the others (same length).
   * @param root The sending rank.
   */
  broadcast(bytes: Uint8Array<ArrayBuffer>, root = 0): void {
    const { MPI_BYTE, MPI_COMM_WORLD } = this.abi;
    ok(
      this.lib.symbols.MPI_Bcast(bytes, bytes.length, MPI_BYTE, root, MPI_COMM_WORLD),
      "MPI_Bcast",
    );
  }

  /** Waits until every rank has called it. */
  barrier(): void {
    ok(this.lib.symbols.MPI_Barrier(this.abi.MPI_COMM_WORLD), "MPI_Barrier");
  }

  /** Ends MPI in this process (every rank calls it once, last). */
  finalize(): void {
    ok(this.lib.symbols.MPI_Finalize(), "MPI_Finalize");
  }

  /**
   * Ends every rank of the job now (this rank failed while the others may wait on it).
   *
   * @param code The job's exit status.
   */
  abort(code: number): never {
    this.lib.symbols.MPI_Abort(this.abi.MPI_COMM_WORLD, code);
    Deno.exit(code);
  }
}

/** MPI returns `MPI_SUCCESS` (0) or an error class. */
function ok(code: number, call: string): void {
  if (code !== 0) throw new Error(`${call} failed with MPI error ${code}`);
}
