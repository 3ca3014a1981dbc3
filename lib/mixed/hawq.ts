/**
 * HAWQ-style mixed precision over the model-level core: per-layer Hessian traces of the prepared float model
 * (after the pipeline's graph passes, so BN-folded weights: the ones the plan quantizes), the sensitivity
 * `Omega_i(b) = Tr(H_i)/n_i * ||Q_b(W_i) - W_i||^2` with the plan's own weight quantizer at each candidate width,
 * per-layer costs (size, BOPs, an optional measured latency table), and the exact integer program of ilp.ts. The
 * result is a {@link QuantPlan} whose weight bits differ per node, consumed by `ptq(m).withPlan(...)` (or
 * `allocation.apply(pipeline)`), so PTQ, QAT and export take it as any other plan.
 *
 * Conventions (HAWQ-v3's `ILP.ipynb` unless said):
 * - size: weight codes only, `n_i * b / 8` bytes (HAWQ: parameters x bits; first and last layers added by hand);
 * - BOPs: `MACs_i * b_w * b_a` per example, `b_a` the plan's bits of the layer's input activation (32 when it is
 *   float). Weight widths are searched; activations keep the plan's widths unless the analysis is made joint by
 *   `withActivationSensitivity` (activations.ts: `W{b}A{b}` per layer as HAWQ-v3's W4A4 / W8A8, BOPs `MACs b b`);
 * - latency: a table `node -> bits -> ms` when given (`latencyTable(await measureLayerLatency(...), bits)` of
 *   latency.ts: measured on ONNX Runtime where it has a kernel, a stated BOPs model where it has none);
 * - ties: `"shared-input"` ties weight layers that read the same activation tensor (the downsample conv and the first
 *   conv of its residual block: HAWQ-v3's `x4 == x6` for ResNet-18), since they share that input's quantizer;
 * - fixed layers: with the pipeline's `firstLast(bits)`, the first and last weight layers are fixed at those bits
 *   (HAWQ-v3 keeps them at 8 and leaves them out of the program); fixed layers count in size and BOPs.
 * - a negative trace (a saddle, possible away from a minimum) gives a negative sensitivity, which the program then
 *   spends no bits on; reported as measured, not clamped.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { batches, type ImageDataset } from "../data/batching.ts";
import { captureShapes } from "../onnx/capture.ts";
import { indexGraph } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { toTensor } from "../onnx/tensor_data.ts";
import { initialState, type PassContext } from "../ptq/pass.ts";
import type { PtqPipeline } from "../ptq/pipeline.ts";
import { type ActivationEntry, QuantPlan, type WeightEntry } from "../ptq/plan.ts";
import { buildPlan } from "../ptq/policy.ts";
import { QuantizerBuilder } from "../quant/quantizer.ts";
import type { WeightQuantizer } from "../quant/weight_quantizer.ts";
import { Prng } from "../tensor/prng.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { type BitProblem, type BitSolution, evaluateAllocation, solveBitProblem } from "./ilp.ts";
import {
  type HessianBatch,
  type LayerEigenvalue,
  LayerHessian,
  type LayerTrace,
  type TraceOptions,
  type TraceProgress,
} from "./traces.ts";

/** Candidate weight widths when none are given (HAWQ's 4 and 8 plus 2 and 3). */
export const DEFAULT_CANDIDATE_BITS: readonly number[] = Object.freeze([2, 3, 4, 8]);

/** Measured latency per node and weight width, milliseconds. */
export type LatencyTable = Readonly<Record<string, Readonly<Record<number, number>>>>;

/** Options of {@link hawqAnalysis}. */
export interface HawqOptions {
  /** Candidate weight widths (default {@link DEFAULT_CANDIDATE_BITS}). */
  readonly bits?: readonly number[];
  /** Examples of `data` the Hessian is averaged over (default 256). */
  readonly count?: number;
  /** Batch size of the Hessian products (default 128). */
  readonly batchSize?: number;
  /** Hutchinson settings (default PyHessian's; `INC_TRACE` for Intel Neural Compressor's) and seed. */
  readonly trace?: TraceOptions;
  /** Also compute each layer's top Hessian eigenvalue (HAWQ-v1; default false). */
  readonly eigenvalues?: boolean;
  /** Tied layers: `"shared-input"` (default), explicit groups of node names, or `false`. */
  readonly ties?: "shared-input" | readonly (readonly string[])[] | false;
  /** Layers at fixed widths by node (default: first and last at the policy's `firstLast` bits, when set). */
  readonly fixed?: Readonly<Record<string, number>>;
  /** Weight quantizer at a given width for a layer (default: the plan's quantizer with its bits changed). */
  readonly quantizerFor?: (entry: WeightEntry, bits: number) => WeightQuantizer;
  /** Measured latency per node and width (enables the `latency` budget). */
  readonly latency?: LatencyTable;
  /** ORT options of the Hessian sessions (default the pipeline's). */
  readonly session?: SessionOptions;
  /** Progress: a message and the fraction done when known. */
  readonly onProgress?: (message: string, fraction?: number) => void;
}

/** One weight layer of a {@link HawqAnalysis}. */
export interface HawqLayer {
  /** Node label (as in the plan). */
  readonly node: string;
  /** Weight initializer. */
  readonly tensor: string;
  /** Op type. */
  readonly opType: string;
  /** Parameters n. */
  readonly params: number;
  /** Multiply-accumulates per example. */
  readonly macs: number;
  /** Bits of the layer's input activation in the plan (32 when float). */
  readonly activationBits: number;
  /** The layer's input activation tensor (the node's first input). */
  readonly inputActivation?: string;
  /**
   * Whether the input activation takes the layer's width (`W{b}A{b}`, set by `withActivationSensitivity` of
   * activations.ts): BOPs at `b x b` and allocations set the activation's width too.
   */
  readonly activationFollows?: boolean;
  /** The trace estimate. */
  readonly trace: LayerTrace;
  /** Top eigenvalue of the layer's block, when computed. */
  readonly eigenvalue?: LayerEigenvalue;
  /** The layer's fixed width, if it is not searched. */
  readonly fixed?: number;
  /** Candidate widths of this layer. */
  readonly bits: readonly number[];
  /** `||Q_b(W) - W||^2` per candidate width. */
  readonly delta2: Readonly<Record<number, number>>;
  /** `Omega(b) = Tr/n * ||Q_b(W) - W||^2` per candidate width. */
  readonly sensitivity: Readonly<Record<number, number>>;
}

/** Budgets of an allocation (any subset). */
export interface MixedBudgets {
  /** Weight bytes (codes). */
  readonly size?: number;
  /** Bit operations per example. */
  readonly bops?: number;
  /** Summed latency from the table, ms. */
  readonly latency?: number;
}

/** A weight-width allocation and the plan that carries it. */
export interface MixedAllocation {
  /** How it was made (`"hawq"`, `"uniform"`, `"random(seed)"`, ...). */
  readonly method: string;
  /** Width per node. */
  readonly bits: Readonly<Record<string, number>>;
  /** Summed sensitivity. */
  readonly objective: number;
  /** Size, BOPs (and latency when tabled) of the allocation. */
  readonly usage: Readonly<Record<string, number>>;
  /** The plan with these widths. */
  readonly plan: QuantPlan;
  /** The pipeline with these widths (its plan edited by {@link applyWeightBits}). */
  apply(pipeline: PtqPipeline): PtqPipeline;
}

/**
 * A uniform weight quantizer at another width (signedness, symmetry, granularity and calibrator kept); other
 * families are refused (give `quantizerFor`).
 *
 * @example
 * ```ts
 * import { weightQuantizerAt } from "./hawq.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const q = weightQuantizerAt(quantizer().int(8).symmetric().perChannel(), 3);
 * if (q.nominalBits !== 3 || !q.toString().includes("per-channel")) throw new Error(q.toString());
 * ```
 */
export function weightQuantizerAt(q: WeightQuantizer, bits: number): WeightQuantizer {
  if (q instanceof QuantizerBuilder) return q.config.signed ? q.int(bits) : q.uint(bits);
  throw new QuantlabError(
    "UNSUPPORTED",
    `a ${q.kind} weight quantizer has no bit width to change; pass quantizerFor(entry, bits) to the analysis`,
  );
}

/**
 * A plan with the weight widths of some nodes changed (each weight's quantizer rebuilt at its new width by
 * `quantizerFor`, default {@link weightQuantizerAt}); unknown nodes are an error.
 *
 * @example
 * ```ts
 * import { applyWeightBits } from "./hawq.ts";
 * import { QuantPlan } from "../ptq/plan.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const plan = new QuantPlan([{ kind: "weight", tensor: "w", role: "weight", node: "fc", opType: "Gemm", axis: 0,
 *   quantizer: quantizer().int(8).perChannel(), bits: 8 }]);
 * if (applyWeightBits(plan, { fc: 3 }).weightBits().fc !== 3) throw new Error("bad");
 * ```
 */
export function applyWeightBits(
  plan: QuantPlan,
  bits: Readonly<Record<string, number>>,
  quantizerFor: (entry: WeightEntry, bits: number) => WeightQuantizer = (e, b) => weightQuantizerAt(e.quantizer, b),
): QuantPlan {
  const byNode = new Map(plan.weights.map((w) => [w.node, w]));
  const changes: Record<string, WeightEntry> = {};
  for (const [node, b] of Object.entries(bits)) {
    const e = byNode.get(node);
    if (!e) throw new QuantlabError("INVALID_ARGUMENT", `applyWeightBits: no planned weight for node "${node}"`);
    if (e.bits === b) continue;
    const q = quantizerFor(e, b);
    changes[e.tensor] = { ...e, quantizer: q, bits: q.nominalBits };
  }
  return Object.keys(changes).length ? plan.with(changes) : plan;
}

/**
 * A plan with the widths of some activation tensors changed (their uniform quantizers rebuilt at the new width,
 * signedness kept; entries sharing parameters with a changed tensor follow it); unknown tensors are an error.
 *
 * @example
 * ```ts
 * import { applyActivationBits } from "./hawq.ts";
 * import { QuantPlan } from "../ptq/plan.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const plan = new QuantPlan([{ kind: "activation", tensor: "h", role: "activation", producer: "r", opType: "Relu",
 *   quantizer: quantizer().uint(8).asymmetric(), bits: 8 }]);
 * if (applyActivationBits(plan, { h: 4 }).get("h")?.bits !== 4) throw new Error("bad");
 * ```
 */
export function applyActivationBits(plan: QuantPlan, bits: Readonly<Record<string, number>>): QuantPlan {
  const changes: Record<string, ActivationEntry> = {};
  for (const [tensor, b] of Object.entries(bits)) {
    const e = plan.get(tensor);
    if (!e || e.kind !== "activation") {
      throw new QuantlabError("INVALID_ARGUMENT", `applyActivationBits: no planned activation "${tensor}"`);
    }
    for (const x of plan.activations) {
      if ((x.tensor === tensor || x.sharesWith === tensor) && x.bits !== b) {
        const q = x.quantizer.config.signed ? x.quantizer.int(b) : x.quantizer.uint(b);
        changes[x.tensor] = { ...x, quantizer: q, bits: b };
      }
    }
  }
  return Object.keys(changes).length ? plan.with(changes) : plan;
}

/** The pipeline's float model after its graph passes, and the plan its policy (and explicit plan) make there. */
async function prepare(pipeline: PtqPipeline): Promise<{ model: OnnxModel; plan: QuantPlan }> {
  const c = pipeline.config;
  const ctx: PassContext = { data: undefined, count: undefined, session: c.session, progress: () => {} };
  let state = initialState(c.model);
  for (const p of pipeline.passList()) if (p.stage === "graph") state = await p.run(state, ctx);
  let plan = buildPlan(state.model, c.policy);
  if (c.plan instanceof QuantPlan) plan = c.plan;
  else if (c.plan) plan = c.plan(plan);
  return { model: state.model, plan };
}

function nodeLabels(model: OnnxModel): string[] {
  return model.graph.node.map((n, i) => n.name || `${n.opType}#${i}`);
}

/**
 * Sensitivity of every weight layer of a pipeline's plan and the integer program over it (see the module doc); made
 * by {@link hawqAnalysis}.
 *
 * @example
 * ```ts
 * import { HawqAnalysis } from "./hawq.ts";
 * import { QuantPlan } from "../ptq/plan.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const q = quantizer().int(8).perChannel();
 * const layer = (node: string, tr: number) => ({
 *   node, tensor: `${node}.w`, opType: "Gemm", params: 100, macs: 100, activationBits: 8, bits: [4, 8],
 *   trace: { tensor: `${node}.w`, params: 100, trace: tr * 100, tracePerParam: tr, stderr: 0, iterations: 1, converged: true },
 *   delta2: { 4: 1, 8: 0.01 }, sensitivity: { 4: tr, 8: tr * 0.01 },
 * });
 * const plan = new QuantPlan(["a", "b"].map((n) => ({ kind: "weight" as const, tensor: `${n}.w`, role: "weight" as const,
 *   node: n, opType: "Gemm", axis: 0, quantizer: q, bits: 8 })));
 * const a = new HawqAnalysis([layer("a", 1), layer("b", 5)], [], plan, (_e, b) => q.int(b));
 * const mixed = await a.allocate({ size: a.budgetAt("size", 4, 8, 0.5) }); // room for one layer at 8 bits
 * if (mixed.bits.a !== 4 || mixed.bits.b !== 8 || mixed.plan.weightBits().b !== 8) throw new Error(JSON.stringify(mixed.bits));
 * ```
 */
export class HawqAnalysis {
  /** The weight layers in graph order. */
  readonly layers: readonly HawqLayer[];
  /** Groups of tied nodes. */
  readonly ties: readonly (readonly string[])[];
  /** The plan the widths are applied to. */
  readonly plan: QuantPlan;
  /** The latency table, if given. */
  readonly latency?: LatencyTable;
  #quantizerFor: (entry: WeightEntry, bits: number) => WeightQuantizer;

  /** Use {@link hawqAnalysis}. */
  constructor(
    layers: readonly HawqLayer[],
    ties: readonly (readonly string[])[],
    plan: QuantPlan,
    quantizerFor: (entry: WeightEntry, bits: number) => WeightQuantizer,
    latency?: LatencyTable,
  ) {
    this.layers = Object.freeze([...layers]);
    this.ties = ties;
    this.plan = plan;
    this.latency = latency;
    this.#quantizerFor = quantizerFor;
  }

  /** The same analysis with a (new) latency table, e.g. `latencyTable(await measureLayerLatency(model), bits)`. */
  withLatency(latency: LatencyTable): HawqAnalysis {
    return new HawqAnalysis(this.layers, this.ties, this.plan, this.#quantizerFor, latency);
  }

  /** The same analysis with some parts replaced (layers, ties, latency table). */
  with(
    changes: { layers?: readonly HawqLayer[]; ties?: readonly (readonly string[])[]; latency?: LatencyTable },
  ): HawqAnalysis {
    return new HawqAnalysis(
      changes.layers ?? this.layers,
      changes.ties ?? this.ties,
      this.plan,
      this.#quantizerFor,
      changes.latency ?? this.latency,
    );
  }

  /** The integer program under some budgets. */
  problem(budgets: MixedBudgets = {}): BitProblem {
    const lat = this.latency;
    if (budgets.latency !== undefined && !lat) {
      throw new QuantlabError("INVALID_ARGUMENT", "a latency budget needs a latency table (options.latency)");
    }
    return {
      layers: this.layers.map((l) => ({
        name: l.node,
        bits: l.bits,
        cost: l.bits.map((b) => l.sensitivity[b]),
        resources: {
          size: l.bits.map((b) => l.params * b / 8),
          bops: l.bits.map((b) => l.macs * b * (l.activationFollows ? b : l.activationBits)),
          ...(lat
            ? {
              latency: l.bits.map((b) => {
                const v = lat[l.node]?.[b];
                if (v === undefined) {
                  throw new QuantlabError(
                    "INVALID_ARGUMENT",
                    `latency table has no entry for "${l.node}" at ${b} bits`,
                  );
                }
                return v;
              }),
            }
            : {}),
        },
      })),
      budgets: Object.fromEntries(Object.entries(budgets).filter(([, v]) => v !== undefined)),
      ties: this.ties,
    };
  }

  /** Size, BOPs (and latency) of an allocation. */
  usage(bits: Readonly<Record<string, number>>): Record<string, number> {
    return evaluateAllocation(this.problem(), bits).usage;
  }

  /** The allocation with every searched layer at `bits` (fixed layers at theirs). */
  uniform(bits: number): Record<string, number> {
    return Object.fromEntries(this.layers.map((l) => [l.node, l.fixed ?? bits]));
  }

  /**
   * HAWQ-v3's budget rule: the resource of uniform `low` bits plus `alpha` times the gap to uniform `high` bits
   * (e.g. size at `low` 4, `high` 8, `alpha` 0.25).
   */
  budgetAt(resource: "size" | "bops" | "latency", low: number, high: number, alpha: number): number {
    const lo = this.usage(this.uniform(low))[resource], hi = this.usage(this.uniform(high))[resource];
    if (lo === undefined) throw new QuantlabError("INVALID_ARGUMENT", `no resource "${resource}" in this analysis`);
    return lo + alpha * (hi - lo);
  }

  #allocation(method: string, bits: Record<string, number>): MixedAllocation {
    const { objective, usage } = evaluateAllocation(this.problem(), bits);
    const qf = this.#quantizerFor;
    const act: Record<string, number> = {};
    for (const l of this.layers) if (l.activationFollows && l.inputActivation) act[l.inputActivation] = bits[l.node];
    const both = (p: QuantPlan) => applyActivationBits(applyWeightBits(p, bits, qf), act);
    const plan = both(this.plan);
    return {
      method,
      bits,
      objective,
      usage,
      plan,
      apply(pipeline: PtqPipeline): PtqPipeline {
        const prev = pipeline.config.plan;
        return pipeline.withPlan((p) => both(prev instanceof QuantPlan ? prev : prev ? prev(p) : p));
      },
    };
  }

  /** The allocation of given widths (e.g. uniform, or one found elsewhere) with its plan. */
  allocation(bits: Readonly<Record<string, number>>, method = "given"): MixedAllocation {
    return this.#allocation(method, { ...bits });
  }

  /** The exact minimum-sensitivity allocation under the budgets (`QuantlabError` `INVALID_ARGUMENT` if none fits). */
  async allocate(budgets: MixedBudgets): Promise<MixedAllocation> {
    const s: BitSolution = await solveBitProblem(this.problem(budgets));
    if (s.status !== "optimal") {
      throw new QuantlabError("INVALID_ARGUMENT", `no allocation meets the budgets ${JSON.stringify(budgets)}`);
    }
    return this.#allocation("hawq", { ...s.bits });
  }

  /** The Pareto frontier: {@link allocate} at each budget of one resource (infeasible budgets left out). */
  async frontier(resource: "size" | "bops" | "latency", budgets: readonly number[]): Promise<MixedAllocation[]> {
    const out: MixedAllocation[] = [];
    for (const b of budgets) {
      const s = await solveBitProblem(this.problem({ [resource]: b }));
      if (s.status === "optimal") out.push(this.#allocation(`hawq(${resource} <= ${b})`, { ...s.bits }));
    }
    return out;
  }

  /**
   * A random allocation that meets the budgets and uses at least `minFraction` (default 0.9) of each: widths drawn
   * uniformly per group of tied layers, rejected until one fits (at most `tries`, default 100,000).
   */
  random(seed: number, budgets: MixedBudgets, options: { minFraction?: number; tries?: number } = {}): MixedAllocation {
    const rng = new Prng(seed);
    const p = this.problem(budgets);
    const minF = options.minFraction ?? 0.9;
    const tieOf = new Map<string, number>();
    this.ties.forEach((g, i) => g.forEach((n) => tieOf.set(n, i)));
    for (let t = 0; t < (options.tries ?? 100_000); t++) {
      const bits: Record<string, number> = {};
      const groupBits = new Map<number, number>();
      for (const l of this.layers) {
        const g = tieOf.get(l.node);
        let b = g === undefined ? undefined : groupBits.get(g);
        b ??= l.bits[rng.nextInt(l.bits.length)];
        if (g !== undefined) groupBits.set(g, b);
        bits[l.node] = b;
      }
      const { usage } = evaluateAllocation(p, bits);
      if (Object.entries(p.budgets).every(([r, v]) => usage[r] <= v * (1 + 1e-9) && usage[r] >= minF * v)) {
        return this.#allocation(`random(${seed})`, bits);
      }
    }
    throw new QuantlabError("INVALID_ARGUMENT", `random allocation: none of the draws met ${JSON.stringify(budgets)}`);
  }

  /** One row per layer: node, params, MACs, Tr/n, iterations, eigenvalue, fixed, Omega per width. */
  rows(): Record<string, string | number>[] {
    return this.layers.map((l) => ({
      node: l.node,
      params: l.params,
      macs: l.macs,
      tracePerParam: l.trace.tracePerParam,
      iterations: l.trace.iterations,
      ...(l.eigenvalue ? { eigenvalue: l.eigenvalue.eigenvalue } : {}),
      fixed: l.fixed ?? "",
      ...Object.fromEntries(l.bits.map((b) => [`omega${b}`, l.sensitivity[b]])),
    }));
  }

  /** A readable table. */
  toString(): string {
    const fmt = (x: number) => x.toPrecision(3);
    return [
      `HawqAnalysis: ${this.layers.length} weight layers; ties ${JSON.stringify(this.ties)}`,
      ...this.layers.map((l) =>
        `${l.node.padEnd(24)} n=${String(l.params).padEnd(7)} Tr/n=${fmt(l.trace.tracePerParam).padEnd(10)} ${
          l.fixed !== undefined ? `fixed ${l.fixed}` : l.bits.map((b) => `W${b}:${fmt(l.sensitivity[b])}`).join(" ")
        }`
      ),
    ].join("\n");
  }
}

/**
 * Hessian traces, sensitivities and costs of every planned weight layer of `pipeline`, on `count` labelled
 * examples of `data` (see the module doc). Allocate with the result's `allocate({ size })`.
 *
 * @example
 * ```ts
 * import { hawqAnalysis } from "./hawq.ts";
 * import { loadFashionMnist } from "../data/fashion_mnist.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { ptq } from "../ptq/pipeline.ts";
 * import { quantizer } from "../quant/quantizer.ts";
 * const model = await OnnxModel.load(new URL("../../datasets/models/resnet8_fashion.onnx", import.meta.url).pathname);
 * const train = await loadFashionMnist("train", { source: "embedded" });
 * const base = ptq(model).activations(quantizer().uint(8).asymmetric()).firstLast(8).calibrateOn(train, { count: 64 });
 * // tiny settings for the example; the defaults are 256 examples and PyHessian's rule
 * const a = await hawqAnalysis(base, train, { count: 16, batchSize: 16, trace: { maxIterations: 2 } });
 * const mixed = await a.allocate({ size: a.budgetAt("size", 4, 8, 0.25) });
 * const plan = await mixed.apply(base).plan(); // PTQ with per-node widths: .quantize(), .evaluate(test), .save(...)
 * if (plan.weightBits()["layer1.conv1"] !== mixed.bits["layer1.conv1"]) throw new Error(String(plan));
 * ```
 */
export async function hawqAnalysis(
  pipeline: PtqPipeline,
  data: ImageDataset,
  options: HawqOptions = {},
): Promise<HawqAnalysis> {
  const progress = options.onProgress ?? (() => {});
  const cand = [...(options.bits ?? DEFAULT_CANDIDATE_BITS)];
  if (cand.length === 0 || cand.some((b) => !(Number.isInteger(b) && b >= 1 && b <= 16))) {
    throw new QuantlabError("BITS_OUT_OF_RANGE", `hawqAnalysis: candidate bits must be integers in 1..16, got ${cand}`);
  }
  const count = options.count ?? 256, batchSize = options.batchSize ?? 128;
  const session = options.session ?? pipeline.config.session;
  const { model, plan } = await prepare(pipeline);
  const weights = plan.weights;
  if (weights.length === 0) throw new QuantlabError("INVALID_ARGUMENT", "hawqAnalysis: the plan has no weights");
  const g = model.graph;
  const ix = indexGraph(g);
  const labels = nodeLabels(model);
  const nodeOf = new Map(labels.map((l, i) => [l, i]));
  const input = [...ix.inputs][0];

  // Batches with labels for the Hessian.
  const hb: HessianBatch[] = [];
  for (const b of batches(data, { batchSize, count: Math.min(count, data.count) })) {
    if (b.labels.length >= 2) hb.push({ inputs: { [input]: b.x }, labels: b.labels });
  }
  // MACs from the output shapes of one small batch.
  const shaped = await captureShapes(model.clone(), { [input]: hb[0].inputs[input] as Tensor }, session);
  const fixed: Record<string, number> = { ...(options.fixed ?? {}) };
  const fl = pipeline.config.policy.firstLast;
  if (options.fixed === undefined && fl) {
    fixed[weights[0].node] = fl.bits;
    fixed[weights[weights.length - 1].node] = fl.bits;
  }

  progress("hessian: building the double-backprop graph");
  const hess = await LayerHessian.create(model, weights.map((w) => w.tensor), hb, { session });
  const report = (phase: string) => (p: TraceProgress) =>
    progress(`${phase} ${p.iteration}/${p.total} (${p.active} layers active)`, p.iteration / p.total);
  let traces: LayerTrace[], eigen: LayerEigenvalue[] | undefined;
  try {
    traces = await hess.traces({ ...options.trace, onProgress: options.trace?.onProgress ?? report("trace") });
    if (options.eigenvalues) {
      eigen = await hess.topEigenvalues({ seed: options.trace?.seed, onProgress: report("eig") });
    }
  } finally {
    await hess.release();
  }

  const qf = options.quantizerFor ?? ((e: WeightEntry, b: number) => weightQuantizerAt(e.quantizer, b));
  const layers: HawqLayer[] = weights.map((w, k) => {
    const ni = nodeOf.get(w.node);
    if (ni === undefined) throw new QuantlabError("INVALID_ARGUMENT", `plan names node "${w.node}" not in the graph`);
    const n = g.node[ni];
    const init = ix.initializers.get(w.tensor)!;
    const W = toTensor(init) as Tensor<"float32">;
    const out = shaped.shape(n.output[0]);
    if (!out) throw new QuantlabError("MALFORMED_MODEL", `no captured shape for "${n.output[0]}"`);
    const perExample = out.slice(1).reduce((a, b) => a * b, 1);
    const macs = perExample * (W.size / W.shape[w.axis]); // output elements x (weights per output channel)
    const actEntry = plan.get(n.input[0]);
    const activationBits = actEntry?.kind === "activation" ? actEntry.bits : 32;
    const fx = fixed[w.node];
    const bits = fx !== undefined ? [fx] : cand;
    const delta2: Record<number, number> = {}, sensitivity: Record<number, number> = {};
    for (const b of bits) {
      const fq = qf(w, b).fitWeights(W, { axis: w.axis, name: w.tensor }).fakeQuantize().data;
      let d = 0;
      for (let i = 0; i < fq.length; i++) d += (fq[i] - W.data[i]) ** 2;
      delta2[b] = d;
      sensitivity[b] = traces[k].tracePerParam * d;
    }
    return {
      node: w.node,
      tensor: w.tensor,
      opType: w.opType,
      params: W.size,
      macs,
      activationBits,
      inputActivation: n.input[0],
      trace: traces[k],
      ...(eigen ? { eigenvalue: eigen[k] } : {}),
      ...(fx !== undefined ? { fixed: fx } : {}),
      bits,
      delta2,
      sensitivity,
    };
  });

  let ties: string[][] = [];
  if (options.ties === undefined || options.ties === "shared-input") {
    const byInput = new Map<string, string[]>();
    for (const l of layers) {
      if (l.fixed !== undefined) continue;
      const inp = g.node[nodeOf.get(l.node)!].input[0];
      byInput.set(inp, [...(byInput.get(inp) ?? []), l.node]);
    }
    ties = [...byInput.values()].filter((v) => v.length > 1);
  } else if (options.ties) ties = options.ties.map((t) => [...t]);
  progress("hessian: done", 1);
  return new HawqAnalysis(layers, ties, plan, qf, options.latency);
}
