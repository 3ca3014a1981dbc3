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
  BatchNormalization: (c) => {
    if (attrInt(c.node, "training_mode", 0) === 1) {
      unsupported(c.node, 'training_mode=1 (build with batchNorm: "train" to use batch statistics)');
    }
    return batchNormInferenceGrad(c);
  },
};
