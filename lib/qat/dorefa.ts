/**
 * DoReFa-Net weights (Zhou et al. 2016, Section 2.3; the authors' tensorpack `dorefa.py` `fw`): a `k`-bit weight
 * is `2 quantize_k(tanh(w) / (2 max|tanh(w)|) + 1/2) - 1`, with `quantize_k(x) = round((2^k - 1) x) / (2^k - 1)`
 * straight-through and the gradient of `max|tanh(w)|` reaching its arg-max (TensorFlow's and PyTorch's max
 * gradients; split evenly among ties).
 *
 * Departure: the paper's values lie in `[-1, 1]` because a BatchNorm follows every layer in its networks; here BN
 * is folded into the weights (or kept frozen), so each weight tensor keeps a fixed per-tensor scale `s0 = max|W|`
 * of its starting values: `w_q = s0 (2 quantize_k(.) - 1)`. The `2^k` levels `s0 (2j - n) / n` (`n = 2^k - 1`,
 * `j = 0..n`) are integer codes `2j - n` (odd, in `[-n, n]`) at scale `s0 / n`, so export is an ordinary symmetric
 * int8 QDQ weight (its `bits` is `k + 1`: odd codes need the sign bit; zero is not a level). The training graph
 * computes `(2 round(n x) - n) * (s0 / n)`, the same float product DequantizeLinear computes. Latent weights are not
 * clipped (tanh bounds them).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Emitter } from "../grad/emitter.ts";
import { markStopGradient } from "../grad/markers.ts";
import { GraphBuilder, indexGraph, topologicalOrder } from "../onnx/graph.ts";
import { DataType, tensorValues } from "../onnx/tensor_data.ts";
import type { TrainableModel } from "../ptq/materialize.ts";
import type { QuantParams } from "../quant/params.ts";

/** A DoReFa-quantized weight: its bits and export grid. */
export interface DorefaWeight {
  /** Weight bits `k` (`2^k` levels). */
  readonly bits: number;
  /** The fixed per-tensor scale `s0` (max|W| of the starting weights). */
  readonly range: number;
  /** Export grid: symmetric, codes in `[-n, n]`, scale `s0 / n`, `bits` = k + 1. */
  readonly params: QuantParams;
  /** The training graph's value holding the quantized weight. */
  readonly output: string;
}

/**
 * The export grid of a `bits`-bit DoReFa weight with range `s0`.
 *
 * @example
 * ```ts
 * import { dorefaGrid } from "./dorefa.ts";
 * const p = dorefaGrid(2, 0.6);
 * if (p.qmin !== -3 || p.qmax !== 3 || Math.abs(p.scale[0] - 0.2) > 1e-7 || p.bits !== 3) throw new Error("bad");
 * ```
 */
export function dorefaGrid(bits: number, range: number): QuantParams {
  if (!Number.isInteger(bits) || bits < 1 || bits > 7) {
    throw new QuantlabError("INVALID_ARGUMENT", `DoReFa weights take 1-7 bits (int8 export), got ${bits}`);
  }
  if (!(range > 0 && Number.isFinite(range))) {
    throw new QuantlabError("INVALID_ARGUMENT", `DoReFa range must be > 0, got ${range}`);
  }
  const n = 2 ** bits - 1;
  return {
    bits: bits + 1,
    signed: true,
    symmetric: true,
    range: "full",
    qmin: -n,
    qmax: n,
    scale: new Float32Array([Math.fround(range / n)]),
    zeroPoint: new Int32Array([0]),
    granularity: { kind: "tensor" },
  };
}

/**
 * DoReFa-quantized values of latent weights `w` (float64 tanh, float32 result). QAT exports the values ONNX Runtime
 * computed in the training graph instead (its tanh differs in the last bits, which can move a value across a
 * rounding boundary); this is the reference.
 *
 * @example
 * ```ts
 * import { dorefaGrid, dorefaValues } from "./dorefa.ts";
 * const v = dorefaValues(new Float32Array([-2, 0.01, 3]), dorefaGrid(1, 1));
 * if (v.join() !== "-1,1,1") throw new Error(v.join());
 * ```
 */
export function dorefaValues(w: Float32Array, grid: QuantParams): Float32Array {
  const n = grid.qmax;
  let m = 0;
  for (let i = 0; i < w.length; i++) m = Math.max(m, Math.abs(Math.fround(Math.tanh(w[i]))));
  const out = new Float32Array(w.length);
  if (m === 0) return out;
  const s = grid.scale[0];
  for (let i = 0; i < w.length; i++) {
    const x = Math.fround(Math.fround(Math.fround(Math.tanh(w[i])) / Math.fround(2 * m)) + 0.5);
    const v = Math.fround(x * n);
    const r = (v + 6755399441055744) - 6755399441055744; // round half to even
    out[i] = Math.fround((2 * r - n) * s);
  }
  return out;
}

/**
 * Replace the STE fake quantizer (`QuantizeLinear -> DequantizeLinear`) of every learnable uniform weight of
 * `trainable` below 8 bits with DoReFa's, at the weight's planned bits (8-bit layers, e.g. the first and last, keep
 * STE: odd codes up to +-255 do not fit int8). Returns the new trainable model (those weights no longer
 * clamped to a grid; their `qdq.weightParams` the DoReFa export grid, so bias quantization uses it) and the
 * DoReFa weights by name.
 *
 * @example
 * ```ts ignore
 * const { trainable: t, dorefa } = dorefaWeights(materializeTrainable(state, { weights: "ste" }));
 * ```
 */
export function dorefaWeights(
  trainable: TrainableModel,
): { trainable: TrainableModel; dorefa: Map<string, DorefaWeight> } {
  const m = trainable.model.clone();
  const g = m.graph;
  const b = new GraphBuilder(g);
  const e = new Emitter(g, m.opset(), b);
  const inits = indexGraph(g).initializers;
  const dorefa = new Map<string, DorefaWeight>();
  const weights = new Map(trainable.weights);
  const weightParams = new Map(trainable.qdq.weightParams);
  const drop = new Set<number>();
  for (const [w, info] of trainable.weights) {
    if (info.params.bits > 7) continue; // 8-bit layers (e.g. the first and last) keep STE: int8 holds no odd codes
    const qi = g.node.findIndex((n) => n.opType === "QuantizeLinear" && n.input[0] === w);
    const di = qi < 0
      ? -1
      : g.node.findIndex((n) => n.opType === "DequantizeLinear" && n.input[0] === g.node[qi].output[0]);
    if (qi < 0 || di < 0) continue;
    const values = tensorValues(inits.get(w)!) as Float32Array;
    let range = 0;
    for (let i = 0; i < values.length; i++) range = Math.max(range, Math.abs(values[i]));
    if (!(range > 0)) throw new QuantlabError("INVALID_ARGUMENT", `DoReFa weight "${w}" is all zeros`);
    const params = dorefaGrid(info.params.bits, range);
    const n = params.qmax;
    const t = e.op("Tanh", [w]);
    const a = e.op("Abs", [t]);
    // max|tanh(w)| with the gradient on the arg-max (split among ties): sum(|t| * mask) / count(mask).
    const mx = markStopGradient(e, e.reduceMax(a, null, false));
    const mask = markStopGradient(e, e.cast(e.op("Equal", [a, mx]), DataType.FLOAT));
    const m0 = e.div(e.reduceSum(e.mul(a, mask), null, false), e.reduceSum(mask, null, false));
    const x = e.add(e.div(t, e.mul(m0, e.scalar(2))), e.scalar(0.5));
    const codes = e.sub(e.mul(e.op("Round", [e.mul(x, e.scalar(n))]), e.scalar(2)), e.scalar(n));
    e.opTo("Mul", [codes, e.scalar(params.scale[0])], [g.node[di].output[0]]);
    drop.add(qi).add(di);
    weights.delete(w);
    weightParams.set(w, params);
    dorefa.set(w, { bits: info.params.bits, range, params, output: g.node[di].output[0] });
  }
  g.node = g.node.filter((_, i) => !drop.has(i));
  g.node = topologicalOrder(g);
  m.validate();
  return {
    trainable: { ...trainable, model: m, weights, qdq: { ...trainable.qdq, weightParams } },
    dorefa,
  };
}
