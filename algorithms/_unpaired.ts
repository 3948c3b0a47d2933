/**
 * Paired data seen as unpaired: for losses that take either (`data: "both"`), each pair becomes
 * two labelled completions, the chosen one desirable and the rejected one undesirable, as the
 * KTO paper does with preference datasets.
 *
 * @module
 */
import { concat, zerosLike } from "../graph/mod.ts";
import type { PairedInputs, PairedReference, UnpairedInputs, UnpairedReference } from "./types.ts";

/** Either kind of input, with reference log-probs. */
export type EitherInputs =
  | (PairedInputs & PairedReference)
  | (UnpairedInputs & UnpairedReference);

/**
 * Unpaired inputs of `2B` completions (chosen rows first) from paired ones; unpaired inputs
 * pass through unchanged.
 *
 * @param x Paired or unpaired inputs.
 * @returns Unpaired inputs.
 */
export function asUnpaired(x: EitherInputs): UnpairedInputs & UnpairedReference {
  if ("policyLogps" in x) return x;
  const ones = zerosLike(x.policyChosenLogps).add(1);
  return {
    policyLogps: concat([x.policyChosenLogps, x.policyRejectedLogps], 0),
    referenceLogps: concat([x.referenceChosenLogps, x.referenceRejectedLogps], 0),
    lengths: concat([x.chosenLengths, x.rejectedLengths], 0),
    labels: concat([ones, ones.sub(1)], 0),
  };
}
