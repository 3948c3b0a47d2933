/**
 * The CUDA provider's two routes, checked where there is no GPU: the plugin-EP functions of the
 * C API (bound by index, so a wrong index would call the wrong function) on the CPU's own EP
 * device, and the one-line errors of a provider that cannot load.
 */
import assert from "node:assert/strict";
import { input, toOnnx } from "../../graph/mod.ts";
import { appendCudaPlugin, appendEpDevice, epDevices } from "../../runtime/cuda.ts";
import { NativeProgram } from "../../runtime/native.ts";
import { check, ort, out } from "../../runtime/ort.ts";

Deno.test("epDevices() names the CPU provider's device (GetEpDevices, EpDevice_EpName)", () => {
  const names = epDevices(ort()).map((d) => d.name);
  assert.ok(names.includes("CPUExecutionProvider"), `devices: ${names}`);
});

Deno.test("appendEpDevice() gives a session the chosen device, which then runs a graph", async () => {
  const lib = ort();
  const cpu = epDevices(lib).find((d) => d.name === "CPUExecutionProvider")!;
  const x = input("x", [3]);
  const onnx = toOnnx({ y: x.mul(2).add(1) });
  const options = out((p) => check(lib, lib.fn.CreateSessionOptions(p)));
  let session: Deno.PointerValue;
  try {
    appendEpDevice(lib, options, cpu, {});
    const slot = new BigUint64Array(1);
    check(
      lib,
      await lib.fn.CreateSessionFromArray(
        lib.env,
        onnx.model as Uint8Array<ArrayBuffer>,
        BigInt(onnx.model.length),
        options,
        slot,
      ),
    );
    session = Deno.UnsafePointer.create(slot[0]);
  } finally {
    lib.fn.ReleaseSessionOptions(options);
  }
  const program = new NativeProgram(session, "cpu", onnx);
  const { y } = await program.run({
    x: { dtype: "float32", shape: [3], data: new Float32Array([1, 2, -3]) },
  });
  assert.deepEqual(Array.from(y.data as Float32Array), [3, 5, -5]);
  await program.release();
});

Deno.test("the plugin route names a provider file that is absent, and one that is not a library", async () => {
  const lib = ort();
  const dir = await Deno.makeTempDir();
  const provider = `${dir}/libonnxruntime_providers_cuda.so`;
  const attempt = (env: string) => {
    const options = out((p) => check(lib, lib.fn.CreateSessionOptions(p)));
    Deno.env.set("ORT_CUDA_PROVIDER", env);
    try {
      appendCudaPlugin(lib, options);
      return "";
    } catch (error) {
      return (error as Error).message;
    } finally {
      Deno.env.delete("ORT_CUDA_PROVIDER");
      lib.fn.ReleaseSessionOptions(options);
    }
  };
  assert.match(attempt(provider), new RegExp(`${provider}: absent`));
  await Deno.writeTextFile(provider, "not an ELF file");
  // onnxruntime's own dlopen failure, about the named file.
  assert.match(attempt(provider), /libonnxruntime_providers_cuda\.so/);
  await Deno.remove(dir, { recursive: true });
});
