/**
 * Activation sensitivity (an option of HAWQ): the Hessian trace of the loss with respect to each weight layer's
 * input activation, and `Omega_a(b) = Tr(H_a)/n_a * E||Q_b(a) - a||^2` with the activation quantized at `b` bits,
 * the same second-order form HAWQ uses for weights (HAWQ-v2, Dong et al. 2020, applies the Hessian trace to
 * activations; Intel Neural Compressor's `hawq_metric.py` estimates activation traces per example with Hutchinson
 * and adds them to the weight term, without an activation perturbation factor).
 *
 * How the trace is taken: the activation `a` (shape `[B, ...]`) gets a zero-valued probe initializer `d` of the
 * same shape added to it (`a' = a + d`, every consumer reads `a'`), so the Hessian with respect to `d` at `d = 0` is
 * the Hessian with respect to `a`, and the existing Hessian-vector products ({@link LayerHessian}) apply unchanged.
 * For the mean loss over a batch of B examples that Hessian is block diagonal with blocks `H_i / B`, so its trace is
 * the mean over examples of `tr(H_i)`; `tracePerElement` divides by the elements per example (INC's
 * `mean(v * Hv)` per example). Every batch must have the same size (the probe's shape is fixed).
 *
 * The perturbation `E||Q_b(a) - a||^2` (mean over the examples of the summed squared error) uses a uniform
 * asymmetric min-max grid at `b` bits over the same examples (the activation quantizer of the experiments; other
 * calibrators would give other ranges).
 *
 * {@link withActivationSensitivity} turns a {@link HawqAnalysis} into the joint program HAWQ-v3 solves (one width
 * per layer for its weights and its input activation, `W{b}A{b}`): cost `Omega_w(b) + Omega_a(b)` (an activation
 * read by several searched layers, which are then tied, counted once), BOPs `MACs * b * b`, and the allocation's
 * plan sets both widths.
 *
 * @module
 */
import { batches, type ImageDataset } from "../data/batching.ts";
import { QuantlabError } from "../errors.ts";
import { exposeValues } from "../onnx/capture.ts";
import { GraphBuilder, indexGraph } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import { createSession, type SessionOptions } from "../onnx/session.ts";
import type { HawqAnalysis, HawqLayer } from "./hawq.ts";
import { type HessianBatch, LayerHessian, type LayerTrace, type TraceOptions } from "./traces.ts";

/** The sensitivity of one activation tensor. */
export interface ActivationSensitivity {
  /** The activation (a value of the float graph). */
  readonly tensor: string;
  /** Elements per example. */
  readonly elements: number;
  /** Hutchinson estimate over the probe (`trace`: mean over examples of `tr(H_i)`). */
  readonly trace: LayerTrace;
  /** `trace / elements`. */
  readonly tracePerElement: number;
  /** Mean over examples of `||Q_b(a) - a||^2` per candidate width. */
  readonly delta2: Readonly<Record<number, number>>;
  /** `Omega_a(b) = tracePerElement * delta2(b)`. */
  readonly sensitivity: Readonly<Record<number, number>>;
}

/** Options of {@link activationSensitivities}. */
export interface ActivationSensitivityOptions {
  /** Candidate widths (default 2, 3, 4, 8). */
  readonly bits?: readonly number[];
  /** Examples (default 64; rounded down to whole batches). */
  readonly count?: number;
  /** Batch size (default 32). */
  readonly batchSize?: number;
  /** Hutchinson settings and seed. */
  readonly trace?: TraceOptions;
  /** ORT options. */
  readonly session?: SessionOptions;
}

/**
 * A copy of `model` in which each of `tensors` reads as `tensor + probe` with a zero probe initializer of the
 * given batch shape; returns the model and the probe names (aligned with `tensors`).
 *
 * @example
 * ```ts
 * import { withActivationProbes } from "./activations.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * const p = emptyModel(17);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ value: 2 }, { value: 3 }] } } });
 * p.graph.node.push({ input: ["x"], output: ["h"], name: "r", opType: "Relu", domain: "", attribute: [] });
 * p.graph.node.push({ input: ["h"], output: ["y"], name: "n", opType: "Neg", domain: "", attribute: [] });
 * p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
 * const { model, probes } = withActivationProbes(OnnxModel.fromProto(p), ["h"], new Map([["h", [2, 3]]]));
 * if (probes[0] !== "h__probe" || model.graph.node[2].input[0] !== "h__probed") throw new Error(JSON.stringify(model.graph.node));
 * ```
 */
export function withActivationProbes(
  model: OnnxModel,
  tensors: readonly string[],
  shapes: ReadonlyMap<string, readonly number[]>,
): { model: OnnxModel; probes: string[] } {
  const m = model.clone();
  const g = m.graph;
  const b = new GraphBuilder(g);
  const ix = indexGraph(g);
  const probes: string[] = [];
  const adds: { at: number; t: string; probe: string; out: string }[] = [];
  for (const t of tensors) {
    const shape = shapes.get(t);
    if (!shape) throw new QuantlabError("INVALID_ARGUMENT", `activation probe: no shape for "${t}"`);
    if (!ix.producer.has(t)) {
      throw new QuantlabError("INVALID_ARGUMENT", `activation probe: "${t}" is not produced by a node`);
    }
    const n = shape.reduce((a, c) => a * c, 1);
    const probe = b.initializer(`${t}__probe`, new Float32Array(n), shape);
    const out = b.fresh(`${t}__probed`);
    const consumers = ix.consumers.get(t) ?? [];
    for (const ci of consumers) {
      const c = g.node[ci];
      c.input = c.input.map((x) => (x === t ? out : x));
    }
    adds.push({ at: ix.producer.get(t)! + 1, t, probe, out });
    probes.push(probe);
  }
  // Insert from the last position back, so the earlier positions stay valid.
  for (const a of [...adds].sort((x, y) => y.at - x.at)) b.node("Add", [a.t, a.probe], { outputs: [a.out], at: a.at });
  return { model: m, probes };
}

/** Mean over examples of the squared error of a uniform asymmetric min-max grid at `bits` (per-tensor range). */
function minMaxError(values: Float32Array[], perExample: number, lo: number, hi: number, bits: number): number {
  const levels = 2 ** bits - 1;
  const scale = hi > lo ? (hi - lo) / levels : 1;
  let s = 0, examples = 0;
  for (const v of values) {
    for (let i = 0; i < v.length; i++) {
      const q = ((v[i] - lo) / scale + 0.5) | 0; // v >= lo, so truncation rounds half up
      const d = lo + (q > levels ? levels : q) * scale - v[i];
      s += d * d;
    }
    examples += v.length / perExample;
  }
  return s / examples;
}

/**
 * Activation sensitivities of the input activations of the searched weight layers of `analysis` (see the module
 * doc), on `data`. Layers reading the graph input or a fixed layer's input are left out.
 *
 * @example
 * ```ts ignore
 * const acts = await activationSensitivities(folded, analysis, train, { count: 64 });
 * const joint = withActivationSensitivity(analysis, acts);
 * ```
 */
export async function activationSensitivities(
  model: OnnxModel,
  analysis: HawqAnalysis,
  data: ImageDataset,
  options: ActivationSensitivityOptions = {},
): Promise<ActivationSensitivity[]> {
  const bits = [...(options.bits ?? [2, 3, 4, 8])];
  const batchSize = options.batchSize ?? 32, count = options.count ?? 64;
  const session = options.session ?? {};
  const g = model.graph;
  const ix = indexGraph(g);
  const input = [...ix.inputs][0];
  const byName = new Map(g.node.map((n, i) => [n.name || `${n.opType}#${i}`, n]));
  const tensors: string[] = [];
  for (const l of analysis.layers) {
    if (l.fixed !== undefined) continue;
    const n = byName.get(l.node);
    if (!n) throw new QuantlabError("INVALID_ARGUMENT", `activation sensitivity: no node "${l.node}" in the model`);
    const a = n.input[0];
    if (a !== input && ix.producer.has(a) && !tensors.includes(a)) tensors.push(a);
  }
  if (tensors.length === 0) throw new QuantlabError("INVALID_ARGUMENT", "activation sensitivity: no activations");
  const hb: HessianBatch[] = [];
  const whole = Math.max(1, Math.floor(Math.min(count, data.count) / batchSize)) * batchSize;
  for (const b of batches(data, { batchSize, count: whole })) {
    if (b.labels.length === batchSize) hb.push({ inputs: { [input]: b.x }, labels: b.labels });
  }
  if (hb.length === 0) {
    throw new QuantlabError("INVALID_ARGUMENT", `activation sensitivity: fewer than ${batchSize} examples`);
  }
  // Activation values (for shapes, ranges and errors).
  const s = await createSession(exposeValues(model, tensors, { replace: true }), { ...session, cache: false });
  const values = new Map<string, Float32Array[]>(tensors.map((t) => [t, []]));
  const shapes = new Map<string, readonly number[]>();
  try {
    for (const b of hb) {
      const out = await s.run(b.inputs);
      for (const t of tensors) {
        values.get(t)!.push(out[t].data as Float32Array);
        shapes.set(t, out[t].shape);
      }
    }
  } finally {
    await s.release();
  }
  const { model: probed, probes } = withActivationProbes(model, tensors, shapes);
  const hess = await LayerHessian.create(probed, probes, hb, { session });
  let traces: LayerTrace[];
  try {
    traces = await hess.traces(options.trace ?? {});
  } finally {
    await hess.release();
  }
  return tensors.map((t, k) => {
    const vs = values.get(t)!;
    const elements = shapes.get(t)!.slice(1).reduce((a, c) => a * c, 1);
    let lo = Infinity, hi = -Infinity;
    for (const v of vs) {
      for (let i = 0; i < v.length; i++) {
        if (v[i] < lo) lo = v[i];
        if (v[i] > hi) hi = v[i];
      }
    }
    lo = Math.min(lo, 0); // the grid holds zero, as the asymmetric quantizer's does
    const tracePerElement = traces[k].trace / elements;
    const delta2: Record<number, number> = {}, sensitivity: Record<number, number> = {};
    for (const b of bits) {
      delta2[b] = minMaxError(vs, elements, lo, hi, b);
      sensitivity[b] = tracePerElement * delta2[b];
    }
    return { tensor: t, elements, trace: { ...traces[k], tensor: t }, tracePerElement, delta2, sensitivity };
  });
}

/**
 * The joint `W{b}A{b}` program (see the module doc): each searched layer whose input activation has a sensitivity
 * gets `Omega_w(b) + Omega_a(b)` (the activation counted on its first reader) and BOPs at `b x b`; allocations set
 * the activation's width too.
 *
 * @example
 * ```ts
 * import { withActivationSensitivity } from "./activations.ts";
 * import { HawqAnalysis } from "./hawq.ts";
 * import { QuantPlan } from "../ptq/plan.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const q = quantizer().int(8).perChannel(), aq = quantizer().uint(8).asymmetric();
 * const layer = { node: "fc", tensor: "fc.w", opType: "Gemm", params: 100, macs: 100, activationBits: 8, bits: [4, 8],
 *   inputActivation: "h",
 *   trace: { tensor: "fc.w", params: 100, trace: 1, tracePerParam: 0.01, stderr: 0, iterations: 1, converged: true },
 *   delta2: { 4: 1, 8: 0.01 }, sensitivity: { 4: 0.01, 8: 0.0001 } };
 * const plan = new QuantPlan([
 *   { kind: "weight", tensor: "fc.w", role: "weight", node: "fc", opType: "Gemm", axis: 0, quantizer: q, bits: 8 },
 *   { kind: "activation", tensor: "h", role: "activation", producer: "r", opType: "Relu", quantizer: aq, bits: 8 },
 * ]);
 * const a = new HawqAnalysis([layer], [], plan, (_e, b) => q.int(b));
 * const trace = { tensor: "h", params: 10, trace: 1, tracePerParam: 0.1, stderr: 0, iterations: 1, converged: true };
 * const joint = withActivationSensitivity(a, [{ tensor: "h", elements: 10, trace, tracePerElement: 0.1,
 *   delta2: { 4: 2, 8: 0.01 }, sensitivity: { 4: 0.2, 8: 0.001 } }]);
 * const w4a4 = joint.allocation({ fc: 4 });
 * if (Math.abs(w4a4.objective - 0.21) > 1e-12 || w4a4.plan.get("h")?.bits !== 4 || w4a4.usage.bops !== 1600) {
 *   throw new Error(JSON.stringify(w4a4.usage));
 * }
 * ```
 */
export function withActivationSensitivity(
  analysis: HawqAnalysis,
  activations: readonly ActivationSensitivity[],
): HawqAnalysis {
  const byTensor = new Map(activations.map((a) => [a.tensor, a]));
  const counted = new Set<string>();
  const layers: HawqLayer[] = analysis.layers.map((l) => {
    const a = l.fixed === undefined && l.inputActivation ? byTensor.get(l.inputActivation) : undefined;
    if (!a || !analysis.plan.get(a.tensor)) return l;
    const first = !counted.has(a.tensor);
    counted.add(a.tensor);
    for (const b of l.bits) {
      if (a.sensitivity[b] === undefined) {
        throw new QuantlabError("INVALID_ARGUMENT", `activation "${a.tensor}" has no sensitivity at ${b} bits`);
      }
    }
    return {
      ...l,
      activationFollows: true,
      sensitivity: Object.fromEntries(l.bits.map((b) => [b, l.sensitivity[b] + (first ? a.sensitivity[b] : 0)])),
    };
  });
  // Layers reading the same activation must share its width: tie them.
  const readers = new Map<string, string[]>();
  for (const l of layers) {
    if (l.activationFollows) readers.set(l.inputActivation!, [...(readers.get(l.inputActivation!) ?? []), l.node]);
  }
  const ties = [...analysis.ties.map((t) => [...t]), ...[...readers.values()].filter((r) => r.length > 1)];
  return analysis.with({ layers, ties });
}
