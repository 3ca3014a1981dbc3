/**
 * Knowledge-distillation loss (Hinton et al. 2015; the survey's "distillation-assisted quantization"):
 * `alpha * CE(labels, student) + beta * T^2 * KL(softmax(teacher / T) || softmax(student / T))`, built from
 * lib/grad's {@link crossEntropyLoss}, {@link klDivLoss} (which already carries the `T^2`) and
 * {@link weightedLoss}. A term whose weight is 0 is left out and a weight of 1 adds no multiplication, so
 * `alpha = 0, beta = 1` is exactly `klDivLoss` (ZeroQ level 2 uses it that way) and `alpha = 1, beta = 0` exactly
 * `crossEntropyLoss`.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { crossEntropyLoss, klDivLoss, type LossTerm, weightedLoss } from "./losses.ts";

/** Options of {@link distillationLoss}. */
export interface DistillationLossOptions {
  /** Graph input (added if missing) with the teacher's logits `[N, classes]`; no gradient flows into it. */
  readonly teacher: string;
  /** Graph input with the integer class labels (needed when `alpha > 0`; default `"labels"`). */
  readonly labels?: string;
  /** Weight of the cross-entropy with the labels (default 0.5). */
  readonly alpha?: number;
  /** Weight of the softened KL term (default 0.5). */
  readonly beta?: number;
  /** Softmax temperature T (default 4). */
  readonly temperature?: number;
}

/**
 * The loss terms of knowledge distillation for `student` logits (see the module doc); pass them as
 * `buildGradientGraph`'s `loss`.
 *
 * @example
 * ```ts
 * import { distillationLoss } from "./distill_loss.ts";
 * const terms = distillationLoss("logits", { teacher: "teacher_logits", alpha: 0.5, beta: 0.5, temperature: 4 });
 * if (terms.length !== 2) throw new Error("bad");
 * if (distillationLoss("logits", { teacher: "t", alpha: 0, beta: 1 }).length !== 1) throw new Error("bad");
 * ```
 */
export function distillationLoss(student: string, options: DistillationLossOptions): LossTerm[] {
  const alpha = options.alpha ?? 0.5, beta = options.beta ?? 0.5, T = options.temperature ?? 4;
  for (const [k, v] of [["alpha", alpha], ["beta", beta]] as const) {
    if (!(v >= 0) || !Number.isFinite(v)) {
      throw new QuantlabError("INVALID_ARGUMENT", `distillationLoss ${k} must be a finite number >= 0, got ${v}`);
    }
  }
  if (alpha === 0 && beta === 0) {
    throw new QuantlabError("INVALID_ARGUMENT", "distillationLoss: alpha and beta are both 0 (no loss)");
  }
  const terms: LossTerm[] = [];
  if (alpha > 0) {
    const ce = crossEntropyLoss(student, options.labels ?? "labels");
    terms.push(alpha === 1 ? ce : weightedLoss(ce, alpha));
  }
  if (beta > 0) {
    const kl = klDivLoss(student, options.teacher, { temperature: T });
    terms.push(beta === 1 ? kl : weightedLoss(kl, beta));
  }
  return terms;
}
