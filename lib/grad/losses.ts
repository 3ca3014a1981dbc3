/**
 * Losses as graph builders. A {@link LossTerm} is a function that receives a {@link LossContext} (an
 * {@link Emitter} over the graph being built plus helpers to name forward values and add inputs) and returns
 * the name of a scalar it added; {@link buildGradientGraph} sums the terms into the total loss.
 *
 * Built in: {@link crossEntropyLoss} (LogSoftmax + GatherElements, mean over the batch, as
 * `torch.nn.functional.cross_entropy`), {@link mseLoss} (mean over all elements, as `mse_loss`),
 * {@link klDivLoss} (distillation: `T^2 * kl_div(log_softmax(s/T), softmax(t/T), "batchmean")`, Hinton et al.
 * 2015; the T^2 keeps gradient magnitudes comparable across temperatures), {@link customLoss} and
 * {@link weightedLoss}.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { DataType } from "../onnx/tensor_data.ts";
import type { Emitter } from "./emitter.ts";

/** What a loss term gets to build its subgraph. */
export interface LossContext {
  /** Op helpers appending to the graph. */
  readonly e: Emitter;
  /** Check that a forward value (node output, graph input or initializer) exists; returns its name. */
  value(name: string): string;
  /** Whether a value exists in the graph. */
  has(name: string): boolean;
  /** Add a graph input (unless it exists); returns its name. `dims` may use -1 for the batch axis. */
  input(name: string, elemType?: number, dims?: readonly number[]): string;
  /** An Identity of `name` that stops gradients (e.g. a teacher's logits). */
  stopGradient(name: string): string;
}

/** A loss subgraph builder: returns the name of a scalar (shape `[]`) it added. */
export type LossTerm = (ctx: LossContext) => string;

/**
 * Softmax cross-entropy with integer class labels, mean over the batch: `-mean_n log_softmax(logits)[n, y_n]`.
 * `labels` is a graph input added if missing (`[N]`, int32 by default; int64 works too).
 *
 * @example
 * ```ts
 * import { crossEntropyLoss } from "./losses.ts";
 * const term = crossEntropyLoss("logits", "labels");
 * if (typeof term !== "function") throw new Error("bad");
 * ```
 */
export function crossEntropyLoss(
  logits: string,
  labels: string,
  options: { labelType?: "int32" | "int64" } = {},
): LossTerm {
  return (ctx) => {
    const e = ctx.e;
    const y = ctx.has(labels)
      ? labels
      : ctx.input(labels, options.labelType === "int64" ? DataType.INT64 : DataType.INT32, [-1]);
    const lsm = e.op("LogSoftmax", [ctx.value(logits)], { axis: 1 });
    const picked = e.op("GatherElements", [lsm, e.unsqueeze(y, [1])], { axis: 1 });
    return e.neg(e.reduceMean(picked, null, false));
  };
}

/**
 * Mean squared error over all elements, `mean((pred - target)^2)`. `target` is a graph input (float) added if
 * missing, or an existing value (then it gets no gradient).
 *
 * @example
 * ```ts
 * import { mseLoss } from "./losses.ts";
 * if (typeof mseLoss("y", "target") !== "function") throw new Error("bad");
 * ```
 */
export function mseLoss(pred: string, target: string): LossTerm {
  return (ctx) => {
    const e = ctx.e;
    const t = ctx.has(target) ? ctx.stopGradient(target) : ctx.input(target, DataType.FLOAT);
    const d = e.sub(ctx.value(pred), t);
    return e.reduceMean(e.mul(d, d), null, false);
  };
}

/**
 * Distillation loss: `T^2 * sum_n sum_c p_t (log p_t - log p_s) / N` with `p = softmax(logits / T)` over axis 1,
 * equal to PyTorch's `kl_div(log_softmax(s / T, 1), softmax(t / T, 1), reduction="batchmean") * T * T`. The
 * teacher logits (a graph input added if missing, or a forward value) get no gradient.
 *
 * @example
 * ```ts
 * import { klDivLoss } from "./losses.ts";
 * if (typeof klDivLoss("student", "teacher", { temperature: 4 }) !== "function") throw new Error("bad");
 * ```
 */
export function klDivLoss(student: string, teacher: string, options: { temperature?: number } = {}): LossTerm {
  const T = options.temperature ?? 1;
  if (!(T > 0) || !Number.isFinite(T)) {
    throw new QuantlabError("INVALID_ARGUMENT", `klDivLoss temperature must be a finite number > 0, got ${T}`);
  }
  return (ctx) => {
    const e = ctx.e;
    const t = ctx.has(teacher) ? ctx.stopGradient(teacher) : ctx.input(teacher, DataType.FLOAT);
    const invT = e.scalar(1 / T);
    const lt = e.op("LogSoftmax", [e.mul(t, invT)], { axis: 1 });
    const ls = e.op("LogSoftmax", [e.mul(ctx.value(student), invT)], { axis: 1 });
    const pt = e.op("Exp", [lt]);
    const perRow = e.reduceSum(e.mul(pt, e.sub(lt, ls)), [1], false);
    return e.mul(e.reduceMean(perRow, null, false), e.scalar(T * T));
  };
}

/**
 * A custom loss subgraph: `build(ctx)` adds nodes and returns the name of a scalar. ZeroQ's BatchNorm
 * statistics loss is one (see the tests for an example).
 *
 * @example
 * ```ts
 * import { customLoss } from "./losses.ts";
 * const l1 = customLoss((ctx) => ctx.e.reduceMean(ctx.e.op("Abs", [ctx.value("y")]), null, false));
 * if (typeof l1 !== "function") throw new Error("bad");
 * ```
 */
export function customLoss(build: (ctx: LossContext) => string): LossTerm {
  return build;
}

/**
 * Scale a loss term by a constant weight.
 *
 * @example
 * ```ts
 * import { mseLoss, weightedLoss } from "./losses.ts";
 * if (typeof weightedLoss(mseLoss("y", "t"), 0.5) !== "function") throw new Error("bad");
 * ```
 */
export function weightedLoss(term: LossTerm, weight: number): LossTerm {
  if (!Number.isFinite(weight)) {
    throw new QuantlabError("INVALID_ARGUMENT", `loss weight must be finite, got ${weight}`);
  }
  return (ctx) => ctx.e.mul(term(ctx), ctx.e.scalar(weight));
}
