/**
 * Gradient markers and learned-quantizer builders.
 *
 * A marker is an `Identity` node whose `doc_string` is `quantlab:stop_gradient` or `quantlab:grad_scale=<g>`:
 * the forward value passes unchanged (ONNX Runtime even removes the node), and {@link buildGradientGraph}
 * blocks the gradient or multiplies it by `g`. PyTorch writes these as `x.detach()` and
 * `(x - x * g).detach() + x * g`. Markers survive saving the model.
 *
 * {@link lsqFakeQuant} builds LSQ (Esser et al., 2020): `round(clip(x / s, Qn, Qp)) * s` with the step size `s`
 * behind a gradient-scale marker `g = 1 / sqrt(numel * Qp)` ({@link lsqGradScale}); with `Round`
 * straight-through, reverse mode then yields exactly LSQ's step-size gradient (`round(x/s) - x/s` inside the
 * grid, `Qn` or `Qp` outside, times `g`). {@link pactFakeQuant} builds PACT (Choi et al., 2018):
 * `y = clip(x, 0, alpha)`, quantized on `2^k - 1` levels with the scale `alpha / (2^k - 1)` behind a stop
 * marker, so `dy/dalpha = 1` where `x > alpha` and 0 elsewhere, as the paper's straight-through rule says.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { Emitter } from "./emitter.ts";

function marker(e: Emitter, x: string, doc: string): string {
  const y = e.op("Identity", [x]);
  const node = e.graph.node[e.graph.node.length - 1];
  node.docString = doc;
  return y;
}

/**
 * An Identity of `x` through which no gradient flows.
 *
 * @example
 * ```ts
 * import { Emitter } from "./emitter.ts";
 * import { markStopGradient } from "./markers.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * const g = emptyModel(17).graph;
 * g.input.push({ name: "x" });
 * markStopGradient(new Emitter(g, 17), "x");
 * if (g.node[0].docString !== "quantlab:stop_gradient") throw new Error("bad");
 * ```
 */
export function markStopGradient(e: Emitter, x: string): string {
  return marker(e, x, "quantlab:stop_gradient");
}

/**
 * An Identity of `x` whose gradient is multiplied by `g` on the way back.
 *
 * @example
 * ```ts
 * import { Emitter } from "./emitter.ts";
 * import { markGradScale } from "./markers.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * const g = emptyModel(17).graph;
 * g.input.push({ name: "s" });
 * markGradScale(new Emitter(g, 17), "s", 0.25);
 * if (g.node[0].docString !== "quantlab:grad_scale=0.25") throw new Error("bad");
 * ```
 */
export function markGradScale(e: Emitter, x: string, g: number): string {
  if (!Number.isFinite(g)) {
    throw new QuantlabError("INVALID_ARGUMENT", `gradient scale for "${x}" must be finite, got ${g}`);
  }
  return marker(e, x, `quantlab:grad_scale=${g}`);
}

/**
 * The integer grid `[Qn, Qp]` of a `bits`-bit signed or unsigned quantizer.
 *
 * @example
 * ```ts
 * import { lsqGrid } from "./markers.ts";
 * if (lsqGrid(4, true).join() !== "-8,7" || lsqGrid(8, false).join() !== "0,255") throw new Error("bad");
 * ```
 */
export function lsqGrid(bits: number, signed: boolean): [number, number] {
  if (!Number.isInteger(bits) || bits < 2 || bits > 16) {
    throw new QuantlabError("BITS_OUT_OF_RANGE", `LSQ/PACT bits must be an integer in 2..16, got ${bits}`);
  }
  return signed ? [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] : [0, 2 ** bits - 1];
}

/**
 * LSQ's gradient scale `1 / sqrt(numel * Qp)` (numel: weights in the tensor, or features per sample for
 * activations).
 *
 * @example
 * ```ts
 * import { lsqGradScale } from "./markers.ts";
 * if (Math.abs(lsqGradScale(100, 127) - 1 / Math.sqrt(12700)) > 1e-15) throw new Error("bad");
 * ```
 */
export function lsqGradScale(numel: number, qp: number): number {
  if (!(numel > 0) || !(qp > 0)) {
    throw new QuantlabError("INVALID_ARGUMENT", `lsqGradScale needs numel > 0 and Qp > 0, got ${numel}, ${qp}`);
  }
  return 1 / Math.sqrt(numel * qp);
}

/**
 * Append LSQ fake quantization of `x` with learned step size `s` (a scalar or a value broadcastable to `x`);
 * returns the output name. `gradScale` defaults to 1 (no marker).
 *
 * @example
 * ```ts
 * import { Emitter } from "./emitter.ts";
 * import { lsqFakeQuant } from "./markers.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * const g = emptyModel(17).graph;
 * g.input.push({ name: "x" }, { name: "s" });
 * lsqFakeQuant(new Emitter(g, 17), "x", "s", { bits: 4, signed: true, gradScale: 0.1 });
 * if (g.node.map((n) => n.opType).join() !== "Identity,Div,Clip,Round,Mul") throw new Error("bad");
 * ```
 */
export function lsqFakeQuant(
  e: Emitter,
  x: string,
  s: string,
  options: { bits: number; signed: boolean; gradScale?: number },
): string {
  const [qn, qp] = lsqGrid(options.bits, options.signed);
  const sg = options.gradScale === undefined || options.gradScale === 1 ? s : markGradScale(e, s, options.gradScale);
  const v = e.op("Clip", [e.div(x, sg), e.scalar(qn), e.scalar(qp)]);
  return e.mul(e.op("Round", [v]), sg);
}

/**
 * Append PACT: `clip(x, 0, alpha)` (alpha a learned scalar, shape `[]`) quantized to `bits` unsigned bits;
 * returns the output name.
 *
 * @example
 * ```ts
 * import { Emitter } from "./emitter.ts";
 * import { pactFakeQuant } from "./markers.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * const g = emptyModel(17).graph;
 * g.input.push({ name: "x" }, { name: "a" });
 * pactFakeQuant(new Emitter(g, 17), "x", "a", { bits: 4 });
 * if (!g.node.some((n) => n.docString === "quantlab:stop_gradient")) throw new Error("bad");
 * ```
 */
export function pactFakeQuant(e: Emitter, x: string, alpha: string, options: { bits: number }): string {
  const [, qp] = lsqGrid(options.bits, false);
  const y = e.op("Clip", [x, e.scalar(0), alpha]);
  const scale = e.div(markStopGradient(e, alpha), e.scalar(qp));
  return e.mul(e.op("Round", [e.div(y, scale)]), scale);
}
