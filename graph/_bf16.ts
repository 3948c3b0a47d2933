/**
 * bfloat16 ⇄ float32, bit-exact: widening is exact (the 16 bits are float32's top half), narrowing
 * rounds to nearest even. Constants of bfloat16 graphs and the CPU emulation of them read these.
 *
 * @module
 */

/** float32 values of bfloat16 bit patterns (exact). */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const view = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) view[i] = bits[i] << 16;
  return out;
}

/** bfloat16 bit patterns of float32 values, rounded to nearest even (NaN stays NaN). */
export function f32ToBf16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const view = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) {
    const x = view[i];
    if ((x & 0x7fffffff) > 0x7f800000) {
      out[i] = (x >>> 16) | 0x40; // Quiet NaN.
      continue;
    }
    out[i] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}
