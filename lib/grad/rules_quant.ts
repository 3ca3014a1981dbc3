/**
 * Gradient rules for fake quantization in QDQ form and for BatchNormalization in inference mode.
 *
 * `QuantizeLinear -> DequantizeLinear` is differentiated as one unit (the integer tensor between them carries
 * no gradient): the input gets the straight-through estimator with the clip mask of PyTorch's
 * `fake_quantize_per_{tensor,channel}_affine` (1 where `round(x / s) + zp` lies in `[qmin, qmax]`, else 0), and
 * the scale gets the LSQ gradient `sum(dY * (y - mask * x) / s)`: `round(x/s) - x/s` inside the grid and
 * `qmin - zp` / `qmax - zp` outside (Esser et al., 2020, eq. 3; the LSQ gradient scale is a separate marker).
 * A DequantizeLinear of a constant integer tensor gives its scale `sum(dY * y / s)`. Zero points get none.
 *
 * @module
 */
import { attrFloat, attrInt } from "../onnx/graph.ts";
import { DataType } from "../onnx/tensor_data.ts";
import { type GradRule, type RuleContext, unsupported } from "./rule.ts";

/**
 * Integer grid `[qmin, qmax]` of a quantized element type.
 *
 * @example
 * ```ts
 * import { gridOf } from "./rules_quant.ts";
 * import { DataType } from "../onnx/tensor_data.ts";
 * if (gridOf(DataType.INT8).join() !== "-128,127" || gridOf(undefined).join() !== "0,255") throw new Error("bad");
 * ```
 */
export function gridOf(elemType: number | undefined): [number, number] {
  switch (elemType ?? DataType.UINT8) {
    case DataType.UINT8:
      return [0, 255];
    case DataType.INT8:
      return [-128, 127];
    case DataType.UINT16:
      return [0, 65535];
    case DataType.INT16:
      return [-32768, 32767];
    case DataType.INT32:
      return [-2147483648, 2147483647];
  }
  throw new Error(`no integer grid for element type ${elemType}`);
}

/** Reshape a per-channel parameter `[C]` so it broadcasts along `axis` of a rank-`rank` tensor. */
function alongAxis(c: RuleContext, p: string, axis: number, rank: number): string {
  const ps = c.shape(p);
  if (ps.length === 0 || (ps.length === 1 && ps[0] === 1)) return p;
  return c.e.reshape(p, [ps[0], ...new Array(rank - axis - 1).fill(1)]);
}

function scaleGrad(c: RuleContext, perElem: string, s: string, axis: number, rank: number): string {
  const ss = c.shape(s);
  if (ss.length === 0 || (ss.length === 1 && ss[0] === 1)) return c.e.reshape(c.e.reduceSum(perElem, null, false), ss);
  const axes = Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis);
  return c.e.reduceSum(perElem, axes, false);
}

function dequantizeGrad(c: RuleContext): (string | undefined)[] {
  const n = c.node;
  const [q, s, zp] = n.input;
  const dy = c.dy(0)!;
  const y = n.output[0];
  const rank = c.shape(y).length;
  let axis = attrInt(n, "axis", 1);
  if (axis < 0) axis += rank;
  const sb = alongAxis(c, s, axis, rank);
  const qn = c.producer(q);
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (zp && c.needs(2)) unsupported(n, "zero points have no gradient (they are integers)");
  if (qn?.opType === "QuantizeLinear") {
    const [x, qs, qzp] = qn.input;
    if (qs !== s || (qzp ?? "") !== (zp ?? "")) {
      unsupported(n, `straight-through needs the QuantizeLinear "${qn.name}" to share its scale and zero point`);
    }
    const needX = c.needsValue(x), needS = c.needs(1);
    if (!needX && !needS) return out;
    const [qmin, qmax] = gridOf(c.elemType(q));
    let v = c.e.op("Round", [c.e.div(x, sb)]);
    if (zp) v = c.e.add(v, c.e.cast(alongAxis(c, zp, axis, rank), DataType.FLOAT));
    const mask = c.e.op("And", [
      c.e.op("GreaterOrEqual", [v, c.e.scalar(qmin)]),
      c.e.op("LessOrEqual", [v, c.e.scalar(qmax)]),
    ]);
    if (needX) c.addGrad(x, c.e.where(mask, dy, c.e.scalar(0)));
    if (needS) {
      const inside = c.e.where(mask, x, c.e.scalar(0));
      out[1] = scaleGrad(c, c.e.div(c.e.mul(dy, c.e.sub(y, inside)), sb), s, axis, rank);
    }
    return out;
  }
  if (c.needs(1)) out[1] = scaleGrad(c, c.e.div(c.e.mul(dy, y), sb), s, axis, rank);
  return out;
}

function batchNormInferenceGrad(c: RuleContext): (string | undefined)[] {
  const n = c.node;
  const [x, scale, , mean, variance] = n.input;
  const dy = c.dy(0)!;
  const xs = c.shape(x);
  const C = xs[1];
  const bshape = [C, ...new Array(xs.length - 2).fill(1)];
  const axes = [0, ...Array.from({ length: xs.length - 2 }, (_, i) => i + 2)];
  const eps = attrFloat(n, "epsilon", 1e-5);
  const inv = c.e.op("Reciprocal", [c.e.op("Sqrt", [c.e.add(variance, c.e.scalar(eps))])]); // [C]
  const out: (string | undefined)[] = [undefined, undefined, undefined, undefined, undefined];
  if (c.needs(0)) out[0] = c.e.mul(dy, c.e.reshape(c.e.mul(scale, inv), bshape));
  const needXc = c.needs(1) || c.needs(4);
  const xc = needXc ? c.e.sub(x, c.e.reshape(mean, bshape)) : "";
  if (c.needs(1)) out[1] = c.e.reduceSum(c.e.mul(c.e.mul(dy, xc), c.e.reshape(inv, bshape)), axes, false);
  const sdy = c.needs(2) || c.needs(3) ? c.e.reduceSum(dy, axes, false) : "";
  if (c.needs(2)) out[2] = sdy;
  if (c.needs(3)) out[3] = c.e.neg(c.e.mul(sdy, c.e.mul(scale, inv)));
  if (c.needs(4)) {
    const inv3 = c.e.mul(inv, c.e.mul(inv, inv));
    const t = c.e.reduceSum(c.e.mul(dy, xc), axes, false);
    out[4] = c.e.mul(t, c.e.mul(scale, c.e.mul(inv3, c.e.scalar(-0.5))));
  }
  return out;
}

/**
 * Training-mode BatchNormalization as the compiler emits it for `batchNorm: "train"` (outputs y, running mean, running
 * var; batch statistics when momentum is 0). Gradient graphs contain it, so double backprop (exact Hessian-vector
 * products) differentiates it: y's dependence on x through the batch mean and variance is the usual BN backward, the
 * running outputs `m * input + (1 - m) * batch statistic` add `(1 - m) dMean / M` and `(1 - m) dVar * 2 (x - mean) / M`
 * to dx and `m` times their gradients to the running inputs. Not a hot path, so it keeps x - mean explicitly.
 */
function batchNormTrainingGrad(c: RuleContext): (string | undefined)[] {
  const n = c.node, e = c.e;
  const [x, scale] = n.input;
  const dy = c.dy(0), dMean = n.output[1] ? c.dy(1) : undefined, dVar = n.output[2] ? c.dy(2) : undefined;
  const xs = c.shape(x);
  const C = xs[1];
  const axes = [0, ...Array.from({ length: xs.length - 2 }, (_, i) => i + 2)];
  const eps = attrFloat(n, "epsilon", 1e-5), momentum = attrFloat(n, "momentum", 0.9);
  const count = e.div(e.cast(e.op("Size", [x]), DataType.FLOAT), e.scalar(C));
  const mean = e.div(e.reduceSum(x, axes, false), count);
  const ones = e.constF(new Float32Array(C).fill(1), [C]), zeros = e.constF(new Float32Array(C), [C]);
  const xc = e.channelAffine(x, ones, e.neg(mean), C);
  const variance = e.div(e.reduceSumSquare(xc, axes, false), count);
  const inv = e.op("Reciprocal", [e.op("Sqrt", [e.add(variance, e.scalar(eps))])]);
  const a = e.mul(scale, inv);
  const out: (string | undefined)[] = [undefined, undefined, undefined, undefined, undefined];
  const sdy = dy ? e.reduceSum(dy, axes, false) : undefined;
  const sdyxc = dy ? e.reduceSum(e.mul(dy, xc), axes, false) : undefined;
  if (c.needs(1) && sdyxc) out[1] = e.mul(sdyxc, inv);
  if (c.needs(2) && sdy) out[2] = sdy;
  const keep = e.scalar(1 - momentum);
  if (c.needs(0)) {
    // dx = a * dy + shift + k * xc, per channel.
    let shift: string = zeros, k: string = zeros;
    if (sdy && sdyxc) {
      shift = e.neg(e.div(e.mul(a, sdy), count));
      k = e.neg(e.div(e.mul(e.mul(a, e.mul(inv, inv)), sdyxc), count));
    }
    if (dMean) shift = e.add(shift, e.div(e.mul(keep, dMean), count));
    if (dVar) k = e.add(k, e.div(e.mul(e.mul(keep, dVar), e.scalar(2)), count));
    const fromXc = e.channelAffine(xc, k, shift, C);
    out[0] = dy ? e.add(e.channelAffine(dy, a, zeros, C), fromXc) : fromXc;
  }
  if (c.needs(3) && dMean) out[3] = e.mul(dMean, e.scalar(momentum));
  if (c.needs(4) && dVar) out[4] = e.mul(dVar, e.scalar(momentum));
  return out;
}

/**
 * Rules by op type.
 *
 * @example
 * ```ts
 * import { QUANT_RULES } from "./rules_quant.ts";
 * if (typeof QUANT_RULES.DequantizeLinear !== "function" || typeof QUANT_RULES.QuantizeLinear !== "function") {
 *   throw new Error("bad");
 * }
 * ```
 */
export const QUANT_RULES: Record<string, GradRule> = {
  DequantizeLinear: dequantizeGrad,
  // The integer output carries no gradient; DequantizeLinear routes it to the input (see above).
  QuantizeLinear: () => [undefined, undefined, undefined],
  BatchNormalization: (c) =>
    attrInt(c.node, "training_mode", 0) === 1 || c.node.output.filter(Boolean).length > 1
      ? batchNormTrainingGrad(c)
      : batchNormInferenceGrad(c),
};
