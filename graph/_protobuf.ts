/**
 * A minimal protocol-buffers writer: just the wire types ONNX needs (varint, 32-bit float,
 * length-delimited). Messages are built as lists of byte chunks so that large weight buffers are
 * never copied until the final concatenation.
 *
 * @module
 */

/** An encoded message under construction. */
export class ProtoWriter {
  #chunks: Uint8Array[] = [];
  #scratch: number[] = [];
  #length = 0;

  /** Total encoded size in bytes. */
  get length(): number {
    return this.#length + this.#scratch.length;
  }

  #flush(): void {
    if (this.#scratch.length === 0) return;
    this.#chunks.push(Uint8Array.from(this.#scratch));
    this.#length += this.#scratch.length;
    this.#scratch = [];
  }

  #varint(value: number | bigint): void {
    // Negative int64s are encoded as 10-byte two's complement, as protobuf requires.
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.#scratch.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.#scratch.push(Number(v));
  }

  #tag(field: number, wireType: number): void {
    this.#varint((field << 3) | wireType);
  }

  /** Writes an int32/int64/enum field. */
  int(field: number, value: number | bigint): this {
    this.#tag(field, 0);
    this.#varint(value);
    return this;
  }

  /** Writes a 32-bit float field. */
  float(field: number, value: number): this {
    this.#tag(field, 5);
    const bytes = new Uint8Array(new Float32Array([value]).buffer);
    for (const b of bytes) this.#scratch.push(b);
    return this;
  }

  /** Writes a UTF-8 string field. */
  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** Writes a bytes field without copying `value`. */
  bytes(field: number, value: Uint8Array): this {
    this.#tag(field, 2);
    this.#varint(value.length);
    this.#flush();
    this.#chunks.push(value);
    this.#length += value.length;
    return this;
  }

  /** Writes a nested message field. */
  message(field: number, message: ProtoWriter): this {
    this.#tag(field, 2);
    this.#varint(message.length);
    message.#flush();
    this.#flush();
    // A loop, not push(...chunks): a large graph has more chunks than the call stack has room.
    for (const chunk of message.#chunks) this.#chunks.push(chunk);
    this.#length += message.#length;
    return this;
  }

  /** Writes a packed repeated int64 field. */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.#varint(v);
    inner.#flush();
    return this.bytes(field, inner.#chunks[0] ?? new Uint8Array());
  }

  /** Writes a packed repeated float field. */
  packedFloats(field: number, values: readonly number[]): this {
    return this.bytes(field, new Uint8Array(new Float32Array(values).buffer));
  }

  /** The encoded bytes. */
  finish(): Uint8Array {
    this.#flush();
    if (this.#chunks.length === 1) return this.#chunks[0];
    const out = new Uint8Array(this.#length);
    let offset = 0;
    for (const chunk of this.#chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}
