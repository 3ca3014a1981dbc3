/**
 * Per-layer Hessian traces and top eigenvalues of the loss with respect to chosen weight tensors, as HAWQ uses
 * them: Hutchinson's estimator with Rademacher probes and PyHessian's stopping rule (HAWQ-v2/v3), power iteration
 * for the top eigenvalue of each layer's diagonal block (HAWQ-v1), and exact traces (sum of `e_k^T H e_k`) for
 * checking on tiny models.
 *
 * The Hessian is that of the mean loss over the given batches: every product `H v` is the example-weighted mean of
 * the batches' products (PyHessian's `dataloader_hv_product`). Products are exact (double backprop through quantlab's
 * gradient graph, {@link HessianSession}); dot products and running means accumulate in float64.
 *
 * Stopping rule (`pyhessian/hessian.py`, `trace()`): after probe k the running mean m_k of `v^T H v` is compared with
 * m_{k-1} (m_0 = 0); stop when `|m_k - m_{k-1}| / (|m_{k-1}| + 1e-6) < tol`, at most `maxIterations` probes.
 * PyHessian: tol 1e-3, 100 iterations ({@link PYHESSIAN_TRACE}); Intel Neural Compressor's hawq_v2 strategy: tol
 * 1e-5, 500 iterations, at least 11 ({@link INC_TRACE}; it ran on 32 calibration samples). Here the rule is applied to
 * each layer's own running mean and a layer's estimate is frozen when its rule fires.
 *
 * Probes: `"joint"` (default) draws one Rademacher vector over all layers per iteration, so one product serves every
 * layer (`E[v_i^T (H v)_i] = tr(H_ii)` because the cross terms have zero mean, at the price of extra variance);
 * `"per-layer"` probes each layer alone (zero elsewhere), as running PyHessian on one layer's parameters does, at
 * `layers` times the cost.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { buildGradientGraph } from "../grad/compiler.ts";
import { HessianSession, type VectorMap } from "../grad/hessian.ts";
import { crossEntropyLoss } from "../grad/losses.ts";
import type { OnnxModel } from "../onnx/model.ts";
import type { FeedValue, SessionOptions } from "../onnx/session.ts";
import { Prng } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";

/** Stopping settings of the Hutchinson estimator. */
export interface TraceSettings {
  /** Most probes (PyHessian 100). */
  readonly maxIterations: number;
  /** Relative change of the running mean below which a layer stops (PyHessian 1e-3). */
  readonly tolerance: number;
  /** Fewest probes before the rule may fire (PyHessian 1: its first comparison is with m_0 = 0). */
  readonly minIterations: number;
}

/** PyHessian's `trace(maxIter=100, tol=1e-3)`. */
export const PYHESSIAN_TRACE: TraceSettings = Object.freeze({ maxIterations: 100, tolerance: 1e-3, minIterations: 1 });

/** Intel Neural Compressor's hawq_v2 trace settings (500 iterations, tolerance 1e-5, at least 11). */
export const INC_TRACE: TraceSettings = Object.freeze({ maxIterations: 500, tolerance: 1e-5, minIterations: 11 });

/** Progress of a trace or eigenvalue computation. */
export interface TraceProgress {
  /** `"trace"`, `"eigenvalue"` or `"exact"`. */
  readonly phase: "trace" | "eigenvalue" | "exact";
  /** Probes / iterations / products done. */
  readonly iteration: number;
  /** Upper bound of iterations. */
  readonly total: number;
  /** Layers (tensors) not yet converged. */
  readonly active: number;
}

/** Options of {@link LayerHessian.traces}. */
export interface TraceOptions extends Partial<TraceSettings> {
  /** Probe seed (default 0): same seed, same result. */
  readonly seed?: number;
  /** `"joint"` (default) or `"per-layer"` probes (see the module doc). */
  readonly probes?: "joint" | "per-layer";
  /** Called after every product. */
  readonly onProgress?: (p: TraceProgress) => void;
}

/** The trace estimate of one weight tensor. */
export interface LayerTrace {
  /** The weight tensor. */
  readonly tensor: string;
  /** Its number of parameters n. */
  readonly params: number;
  /** Estimated `tr(H)` of its diagonal block. */
  readonly trace: number;
  /** `tr(H) / n`, as HAWQ stores traces. */
  readonly tracePerParam: number;
  /** Standard error of the estimate (sample standard deviation of `v^T H v` / sqrt(probes)). */
  readonly stderr: number;
  /** Probes used. */
  readonly iterations: number;
  /** Whether the stopping rule fired (false: stopped at `maxIterations`). */
  readonly converged: boolean;
}

/** The top eigenvalue of one weight tensor's diagonal Hessian block. */
export interface LayerEigenvalue {
  /** The weight tensor. */
  readonly tensor: string;
  /** The Rayleigh quotient `v^T H v` of the last (unit) iterate. */
  readonly eigenvalue: number;
  /** Iterations used. */
  readonly iterations: number;
  /** Whether the relative change fell below the tolerance. */
  readonly converged: boolean;
}

/** A labelled batch for the Hessian: the model input(s) and integer class labels. */
export interface HessianBatch {
  /** Model inputs by name. */
  readonly inputs: Readonly<Record<string, Tensor>>;
  /** Class labels (int32 or uint8 values) of the batch. */
  readonly labels: ArrayLike<number>;
}

/** Options of {@link LayerHessian.create}. */
export interface LayerHessianOptions {
  /** The logits output (default the model's first output). */
  readonly output?: string;
  /** ORT options (default node backend, one thread per session as ORT decides). */
  readonly session?: SessionOptions;
}

function labelsTensor(labels: ArrayLike<number>): Tensor<"int32"> {
  return new Tensor<"int32">(Int32Array.from(labels), [labels.length]);
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * The Hessian of a model's mean cross-entropy over some batches, with respect to chosen weight tensors (see the
 * module doc).
 *
 * @example
 * ```ts
 * import { LayerHessian } from "./traces.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * import { makeTensorProto } from "../onnx/tensor_data.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * // logits = x W (2 features, 2 classes)
 * const p = emptyModel(17);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ param: "N" }, { value: 2 }] } } });
 * p.graph.initializer.push(makeTensorProto("W", new Float32Array([0.5, -0.5, 0.25, 1]), [2, 2]));
 * p.graph.node.push({ input: ["x", "W"], output: ["logits"], name: "fc", opType: "MatMul", domain: "", attribute: [] });
 * p.graph.output.push({ name: "logits", type: { tensorType: { elemType: 1 } } });
 * const batch = { inputs: { x: Tensor.from([1, 0, 0, 1, 1, 1], [3, 2]) }, labels: [0, 1, 1] };
 * const h = await LayerHessian.create(OnnxModel.fromProto(p), ["W"], [batch], { session: { backend: "web", threads: 1 } });
 * const exact = (await h.exactTraces()).get("W")!;
 * const est = (await h.traces({ maxIterations: 200, tolerance: 1e-6, seed: 1 }))[0];
 * if (Math.abs(est.trace - exact) > 4 * est.stderr + 1e-6) throw new Error(`${est.trace} vs ${exact}`);
 * await h.release();
 * ```
 */
export class LayerHessian {
  /** The weight tensors, in the order given. */
  readonly tensors: readonly string[];
  /** Parameters per tensor. */
  readonly sizes: ReadonlyMap<string, number>;
  /** The parameter values the Hessian is taken at. */
  readonly params: VectorMap;
  #hs: HessianSession;
  #feeds: Record<string, FeedValue>[];
  #weights: number[];

  private constructor(
    hs: HessianSession,
    tensors: string[],
    params: VectorMap,
    feeds: Record<string, FeedValue>[],
    weights: number[],
  ) {
    this.#hs = hs;
    this.tensors = Object.freeze(tensors);
    this.params = params;
    this.sizes = new Map(tensors.map((t) => [t, params.get(t)!.length]));
    this.#feeds = feeds;
    this.#weights = weights;
  }

  /**
   * Build the double-backprop graph of `model`'s cross-entropy (labels fed as `labels`, int32) with respect to
   * `tensors` (float initializers), over `batches` (each of at least 2 examples).
   */
  static async create(
    model: OnnxModel,
    tensors: readonly string[],
    batches: readonly HessianBatch[],
    options: LayerHessianOptions = {},
  ): Promise<LayerHessian> {
    if (tensors.length === 0) throw new QuantlabError("INVALID_ARGUMENT", "LayerHessian: no weight tensors given");
    if (batches.length === 0) throw new QuantlabError("EMPTY_TENSOR", "LayerHessian: no batches given");
    const inits = new Set(model.graph.initializer.map((t) => t.name));
    for (const t of tensors) {
      if (!inits.has(t)) {
        throw new QuantlabError("INVALID_ARGUMENT", `LayerHessian: "${t}" is not an initializer of ${model.source}`);
      }
    }
    const output = options.output ?? model.graph.output[0]?.name;
    if (!output) throw new QuantlabError("MALFORMED_MODEL", `LayerHessian: ${model.source} has no output`);
    const feeds = batches.map((b, i) => {
      const n = b.labels.length;
      if (n < 2) throw new QuantlabError("INVALID_ARGUMENT", `LayerHessian: batch ${i} has ${n} example(s); need >= 2`);
      if ("labels" in b.inputs) {
        throw new QuantlabError("INVALID_ARGUMENT", `LayerHessian: the model has an input named "labels"`);
      }
      return { ...b.inputs, labels: labelsTensor(b.labels) } as Record<string, FeedValue>;
    });
    const session = options.session ?? {};
    const tg = await buildGradientGraph(model, {
      loss: crossEntropyLoss(output, "labels"),
      wrt: [...tensors],
      feeds: feeds[0],
      session,
    });
    const hs = await HessianSession.create(tg, feeds[0], { session });
    const total = batches.reduce((s, b) => s + b.labels.length, 0);
    return new LayerHessian(
      hs,
      [...tensors],
      tg.initialParams(),
      feeds,
      batches.map((b) => b.labels.length / total),
    );
  }

  /** `H v` of the mean loss over the batches (v: a vector per tensor; missing tensors are zero). */
  async hvp(v: VectorMap): Promise<Map<string, Float32Array>> {
    const full = new Map(this.tensors.map((t) => [t, v.get(t) ?? new Float32Array(this.sizes.get(t)!)]));
    const out = new Map(this.tensors.map((t) => [t, new Float32Array(this.sizes.get(t)!)]));
    for (let b = 0; b < this.#feeds.length; b++) {
      const hv = await this.#hs.hvp(this.#feeds[b], this.params, full, { method: "exact" });
      const w = this.#weights[b];
      for (const t of this.tensors) {
        const o = out.get(t)!, h = hv.get(t)!;
        for (let i = 0; i < o.length; i++) o[i] += w * h[i];
      }
    }
    return out;
  }

  /** Hutchinson traces per tensor with PyHessian's stopping rule (see the module doc). */
  async traces(options: TraceOptions = {}): Promise<LayerTrace[]> {
    const s = { ...PYHESSIAN_TRACE, ...options };
    if (!Number.isInteger(s.maxIterations) || s.maxIterations < 1 || !(s.tolerance >= 0)) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `traces: maxIterations must be a positive integer and tolerance >= 0 (got ${s.maxIterations}, ${s.tolerance})`,
      );
    }
    const rng = new Prng(options.seed ?? 0);
    const rademacher = (n: number) => {
      const r = new Float32Array(n);
      for (let i = 0; i < n; i++) r[i] = rng.nextUint32() & 1 ? 1 : -1;
      return r;
    };
    const acc = new Map(this.tensors.map((t) => [t, { sum: 0, sum2: 0, k: 0, mean: 0, done: false, conv: false }]));
    const update = (t: string, d: number) => {
      const a = acc.get(t)!;
      a.k++;
      a.sum += d;
      a.sum2 += d * d;
      const m = a.sum / a.k;
      const stop = a.k >= s.minIterations && Math.abs(m - a.mean) / (Math.abs(a.mean) + 1e-6) < s.tolerance;
      a.mean = m;
      if (stop) a.done = a.conv = true;
      else if (a.k >= s.maxIterations) a.done = true;
    };
    const perLayer = options.probes === "per-layer";
    let products = 0;
    const total = s.maxIterations * (perLayer ? this.tensors.length : 1);
    const active = () => [...acc.values()].filter((a) => !a.done).length;
    if (perLayer) {
      for (const t of this.tensors) {
        while (!acc.get(t)!.done) {
          const v = rademacher(this.sizes.get(t)!);
          const hv = await this.hvp(new Map([[t, v]]));
          update(t, dot(v, hv.get(t)!));
          options.onProgress?.({ phase: "trace", iteration: ++products, total, active: active() });
        }
      }
    } else {
      while (active() > 0) {
        const v = new Map(this.tensors.map((t) => [t, rademacher(this.sizes.get(t)!)]));
        const hv = await this.hvp(v);
        for (const t of this.tensors) if (!acc.get(t)!.done) update(t, dot(v.get(t)!, hv.get(t)!));
        options.onProgress?.({ phase: "trace", iteration: ++products, total, active: active() });
      }
    }
    return this.tensors.map((t) => {
      const a = acc.get(t)!;
      const n = this.sizes.get(t)!;
      const variance = a.k > 1 ? Math.max(0, (a.sum2 - a.k * a.mean * a.mean) / (a.k - 1)) : 0;
      return {
        tensor: t,
        params: n,
        trace: a.mean,
        tracePerParam: a.mean / n,
        stderr: Math.sqrt(variance / a.k),
        iterations: a.k,
        converged: a.conv,
      };
    });
  }

  /**
   * Top eigenvalue of each tensor's diagonal block by power iteration (PyHessian `eigenvalues(maxIter=100,
   * tol=1e-3)`: Gaussian start, normalise, stop when the relative change of `v^T H v` is below `tolerance`).
   */
  async topEigenvalues(
    options: { maxIterations?: number; tolerance?: number; seed?: number; onProgress?: (p: TraceProgress) => void } =
      {},
  ): Promise<LayerEigenvalue[]> {
    const maxIt = options.maxIterations ?? 100, tol = options.tolerance ?? 1e-3;
    const rng = new Prng(options.seed ?? 0);
    const out: LayerEigenvalue[] = [];
    let products = 0;
    const total = maxIt * this.tensors.length;
    for (const [li, t] of this.tensors.entries()) {
      const n = this.sizes.get(t)!;
      let v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = rng.nextNormal();
      const normalize = (x: Float32Array) => {
        const s = Math.sqrt(dot(x, x));
        const r = new Float32Array(x.length);
        for (let i = 0; i < x.length; i++) r[i] = x[i] / (s + 1e-6);
        return r;
      };
      v = normalize(v);
      let eig: number | undefined, it = 0, conv = false;
      while (it < maxIt) {
        const hv = (await this.hvp(new Map([[t, v]]))).get(t)!;
        it++;
        const cur = dot(hv, v);
        v = normalize(hv);
        options.onProgress?.({
          phase: "eigenvalue",
          iteration: ++products,
          total,
          active: this.tensors.length - li,
        });
        if (eig !== undefined && Math.abs(eig - cur) / (Math.abs(eig) + 1e-6) < tol) {
          conv = true;
          break;
        }
        eig = cur;
      }
      out.push({ tensor: t, eigenvalue: eig!, iterations: it, converged: conv });
    }
    return out;
  }

  /**
   * Exact traces `sum_k e_k^T H e_k` per tensor: one product per parameter, so only for tiny models (refused above
   * `maxParams`, default 20,000, in total).
   */
  async exactTraces(
    options: { maxParams?: number; onProgress?: (p: TraceProgress) => void } = {},
  ): Promise<Map<string, number>> {
    const total = [...this.sizes.values()].reduce((a, b) => a + b, 0);
    if (total > (options.maxParams ?? 20_000)) {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `exactTraces: ${total} parameters need ${total} Hessian-vector products; raise maxParams to allow it`,
      );
    }
    const out = new Map<string, number>();
    let done = 0;
    for (const t of this.tensors) {
      const n = this.sizes.get(t)!;
      let s = 0;
      for (let k = 0; k < n; k++) {
        const e = new Float32Array(n);
        e[k] = 1;
        s += (await this.hvp(new Map([[t, e]]))).get(t)![k];
        options.onProgress?.({ phase: "exact", iteration: ++done, total, active: 1 });
      }
      out.set(t, s);
    }
    return out;
  }

  /** Release the ONNX Runtime sessions. */
  async release(): Promise<void> {
    await this.#hs.gradients.release();
    await this.#hs.exact?.release();
  }
}
