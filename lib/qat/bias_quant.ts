/**
 * Bias fake quantization for QAT: ONNX QDQ and QOperator store a layer's bias as int32 at scale `s_x * s_w` (input
 * activation scale times the weight's per-channel scale), so an integer kernel can add it to the int32
 * accumulator. At 8 bits that grid is fine; at 2-4 bits it is not (on the digits CNN at W2A2, `s_x s_w` reached
 * 0.5-2 and rounding float-trained biases to it cost 17 points after training). So the training graph computes
 * `round(b / (s_x s_w)) * s_x s_w` with `Round` straight-through (the bias gets the identity gradient) and the
 * scales behind stop-gradient markers (the bias path does not train them). torch.ao's QAT keeps biases float in
 * training and quantizes them only at convert time.
 *
 * @module
 */
import { Emitter } from "../grad/emitter.ts";
import { markStopGradient } from "../grad/markers.ts";
import { lsqGrid } from "../grad/markers.ts";
import { GraphBuilder, indexGraph } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import type { TrainableModel } from "../ptq/materialize.ts";
import type { PtqState } from "../ptq/pass.ts";

/**
 * Rewrite `trainable.model` (in place on a clone; returns the new trainable model) so that every learnable bias
 * of a planned weight layer whose input activation is quantized is fake-quantized to its int32 export grid.
 * Layers with a float input or non-uniform weights keep float biases (export leaves those float too).
 *
 * @example
 * ```ts ignore
 * const t = quantizeBiases(materializeTrainable(state, { weights: "lsq" }), state);
 * ```
 */
export function quantizeBiases(trainable: TrainableModel, state: PtqState): TrainableModel {
  const plan = state.plan!;
  const m: OnnxModel = trainable.model.clone();
  const g = m.graph;
  const b = new GraphBuilder(g);
  const e = new Emitter(g, m.opset(), b);
  const inits = indexGraph(g).initializers;
  const byName = new Map(plan.activations.map((a) => [a.tensor, a]));
  const planned = new Map(plan.weights.map((w) => [w.node, w]));
  const plannedBiases = new Set(plan.biases.map((x) => x.tensor));
  const original = g.node.slice();
  const inserts = new Map<number, typeof g.node>();
  original.forEach((n, i) => {
    const bias = n.input[2];
    if (!bias || !trainable.biases.includes(bias) || !plannedBiases.has(bias)) return;
    const we = planned.get(n.name);
    if (!we) return;
    // Input activation scale: the conv reads `<t>` (or `<t>_dequantized` for a graph input).
    const xName = n.input[0].endsWith("_dequantized") && byName.has(n.input[0].slice(0, -12))
      ? n.input[0].slice(0, -12)
      : n.input[0];
    const xe = byName.get(xName);
    const xp = xe ? state.activationParams.get(xe.sharesWith ?? xe.tensor) : undefined;
    const wp = trainable.qdq.weightParams.get(we.tensor);
    if (!xe || !xp || !wp) return;
    const C = (inits.get(bias)?.dims ?? [0])[0];
    if (wp.scale.length !== 1 && wp.scale.length !== C) return;
    const before = g.node.length;
    const xq = trainable.quantizerParams.get(xe.tensor);
    let sx: string;
    if (xq?.kind === "lsq") sx = markStopGradient(e, xq.param);
    else if (xq?.kind === "pact") sx = e.div(markStopGradient(e, xq.param), e.scalar(lsqGrid(xp.bits, false)[1]));
    else sx = e.scalar(xp.scale[0]);
    const wq = trainable.quantizerParams.get(we.tensor);
    const sw = wq?.kind === "lsq"
      ? e.reshape(markStopGradient(e, wq.param), [-1])
      : e.constF(wp.scale, wp.scale.length === 1 ? [] : [wp.scale.length]);
    const s = e.mul(sx, sw);
    const bq = e.mul(e.op("Round", [e.div(bias, s)]), s);
    inserts.set(i, g.node.splice(before));
    n.input[2] = bq;
  });
  g.node = original.flatMap((n, i) => [...(inserts.get(i) ?? []), n]);
  m.validate();
  return { ...trainable, model: m };
}
