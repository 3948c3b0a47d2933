/**
 * NCCL's binding where no NCCL is installed (this project's CI machines): one line naming the
 * libraries tried and the fix, not a bare dlopen error. Its all-reduce itself needs a GPU
 * (bench/cuda_smoke.ts, stage 6).
 */
import assert from "node:assert/strict";
import { Nccl } from "../../runtime/nccl.ts";

const hasNccl = (() => {
  try {
    Deno.dlopen("libnccl.so.2", {}).close();
    return true;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "Nccl.init without libnccl.so.2 names it and how to install it",
  ignore: hasNccl,
  fn() {
    assert.throws(
      () => Nccl.init({ rank: 0, size: 1, broadcast() {} }, 0),
      /^Error: Cannot load libnccl\.so\.2: install NCCL \(pip install nvidia-nccl-cu13, or apt libnccl2\): .*libnccl\.so\.2/,
    );
  },
});
