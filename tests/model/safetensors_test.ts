/** safetensors read/write and the 16-bit float conversions. */
import { deepStrictEqual, equal, throws } from "node:assert/strict";
import type { HostTensor } from "../../graph/mod.ts";
import {
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  toFloat32,
} from "../../model/mod.ts";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../model/_dtype.ts";

Deno.test("serializeSafetensors() round-trips every supported dtype", () => {
  const tensors: Record<string, HostTensor> = {
    a: { dtype: "float32", shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, 1e-8, -7]) },
    b: { dtype: "bfloat16", shape: [3], data: new Uint16Array([0x3f80, 0xc000, 0x0001]) },
    c: { dtype: "float16", shape: [1, 2], data: new Uint16Array([0x3c00, 0x7bff]) },
    d: { dtype: "int64", shape: [2], data: new BigInt64Array([5n, -1n]) },
    scalar: { dtype: "float32", shape: [], data: new Float32Array([42]) },
  };
  const bytes = serializeSafetensors(tensors, { format: "pt" });
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  equal(headerLength % 8, 0);
  const back = parseSafetensors(bytes);
  deepStrictEqual(back.metadata, { format: "pt" });
  for (const [name, t] of Object.entries(tensors)) deepStrictEqual(back.tensors[name], t);
});

Deno.test("parseSafetensors() rejects unsupported dtypes and bad offsets", () => {
  const header = (h: object) => {
    const json = new TextEncoder().encode(JSON.stringify(h));
    const out = new Uint8Array(8 + json.length + 8);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    return out;
  };
  throws(
    () => parseSafetensors(header({ x: { dtype: "U8", shape: [1], data_offsets: [0, 1] } }), "f"),
    /Unsupported dtype U8 of tensor "x" in f: expected F32/,
  );
  throws(
    () => parseSafetensors(header({ x: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }), "f"),
    /Tensor "x" has bad data offsets/,
  );
});

Deno.test("f32ToBf16() rounds to nearest even and bf16ToF32() is exact", () => {
  const values = new Float32Array([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -3.140625, Infinity]);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: the tie goes to the even mantissa (1);
  // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: it goes to 1 + 2^-6.
  deepStrictEqual([...bf16ToF32(f32ToBf16(values))], [1, 1, 1 + 2 ** -6, -3.140625, Infinity]);
  equal(Number.isNaN(bf16ToF32(f32ToBf16(new Float32Array([NaN])))[0]), true);
  equal(toFloat32({ dtype: "bfloat16", shape: [1], data: new Uint16Array([0xbf80]) }).data[0], -1);
});

Deno.test("f32ToBf16() rounds exactly as PyTorch's .bfloat16()", async () => {
  // tools/make_parity_fixtures.py stored llama_gqa's float32 weights and torch's bf16 rounding.
  const f32 = await readSafetensors("tests/fixtures/parity/llama_gqa/model.safetensors");
  const bf16 = await readSafetensors("tests/fixtures/parity/llama_gqa_bf16/model.safetensors");
  for (const [name, t] of Object.entries(f32.tensors)) {
    deepStrictEqual(f32ToBf16(t.data as Float32Array), bf16.tensors[name].data, name);
  }
});

Deno.test("f32ToF16() and f16ToF32() agree with IEEE half", () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [1e6, 0x7c00], // overflow → +∞
    [2 ** -24, 0x0001], // smallest subnormal
    [0.333251953125, 0x3555],
    [1 + 2 ** -11, 0x3c00], // a tie rounds to even
  ];
  for (const [value, bits] of cases) {
    equal(f32ToF16(new Float32Array([value]))[0], bits, `f32ToF16(${value})`);
  }
  deepStrictEqual(
    [...f16ToF32(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555, 0xfc00]))],
    [1, -2, 65504, 2 ** -24, 0.333251953125, -Infinity],
  );
});
