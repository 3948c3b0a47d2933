/**
 * The tolerance measure the parity tests share.
 *
 * @module
 */
import type { HostTensor } from "../graph/mod.ts";

/** max |a − b| / max |b| over the elements. */
export function relativeDiff(a: HostTensor, b: HostTensor): number {
  let diff = 0, scale = 0;
  for (let i = 0; i < b.data.length; i++) {
    diff = Math.max(diff, Math.abs(Number(a.data[i]) - Number(b.data[i])));
    scale = Math.max(scale, Math.abs(Number(b.data[i])));
  }
  return diff / Math.max(scale, 1e-30);
}
