/**
 * {@link GradientSession}: runs a {@link GradientGraph} on ONNX Runtime with the parameters fed as inputs, and
 * returns the loss, the gradients (a `Map` keyed like the parameters, ready for an optimizer), kept outputs and
 * the batch statistics of training-mode BatchNorms.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { createSession, type FeedValue, type OrtSession, type SessionOptions } from "../onnx/session.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { BatchNormStatSpec, GradientGraph } from "./compiler.ts";

/** Batch statistics of one training-mode BatchNormalization. */
export interface BatchNormStats extends BatchNormStatSpec {
  /** Batch mean per channel. */
  readonly mean: Float32Array;
  /** Biased batch variance per channel (PyTorch's running update uses `var * count / (count - 1)`). */
  readonly var: Float32Array;
  /** Elements per channel in this batch (batch size * spatial size). */
  readonly count: number;
}

/** One run's results. */
export interface GradientResult {
  /** The total loss. */
  readonly loss: number;
  /** Gradient per differentiated name. */
  readonly grads: Map<string, Float32Array>;
  /** Kept forward values. */
  readonly outputs: Record<string, Tensor>;
  /** Training-mode BatchNorm statistics, in graph order. */
  readonly batchNorm: readonly BatchNormStats[];
}

/**
 * A session over a gradient graph.
 *
 * @example
 * ```ts ignore
 * const gs = await GradientSession.create(tg, { backend: "node" });
 * const { loss, grads } = await gs.run({ input: x, labels }, params);
 * ```
 */
export class GradientSession {
  /** The underlying ONNX Runtime session. */
  readonly session: OrtSession;
  /** The graph it runs. */
  readonly graph: GradientGraph;

  /** Use {@link GradientSession.create}. */
  constructor(graph: GradientGraph, session: OrtSession) {
    this.graph = graph;
    this.session = session;
  }

  /** Create the ONNX Runtime session (cached by model bytes, backend and threads). */
  static async create(graph: GradientGraph, options: SessionOptions = {}): Promise<GradientSession> {
    return new GradientSession(graph, await createSession(graph.model, options));
  }

  /** Which binding runs it. */
  get backend(): "node" | "web" {
    return this.session.backend;
  }

  /** Run one forward + backward pass on `feeds` (data inputs) with `params` (every promoted parameter). */
  async run(feeds: Record<string, FeedValue>, params: ReadonlyMap<string, Float32Array>): Promise<GradientResult> {
    const all: Record<string, FeedValue> = { ...feeds };
    for (const p of this.graph.params) {
      const v = params.get(p.name);
      if (!v) throw new QuantlabError("INVALID_ARGUMENT", `GradientSession.run: missing parameter "${p.name}"`);
      let n = 1;
      for (const d of p.dims) n *= d;
      if (v.length !== n) {
        throw new QuantlabError(
          "SHAPE_MISMATCH",
          `GradientSession.run: parameter "${p.name}" needs ${n} values [${p.dims}], got ${v.length}`,
        );
      }
      all[p.name] = new Tensor(v, p.dims);
    }
    const out = await this.session.run(all);
    const loss = (out[this.graph.loss].data as Float32Array)[0];
    const grads = new Map<string, Float32Array>();
    for (const [w, o] of this.graph.gradients) grads.set(w, out[o].data as Float32Array);
    const outputs: Record<string, Tensor> = {};
    for (const k of this.graph.kept) outputs[k] = out[k];
    let batch = 0;
    for (const name of this.graph.dataInputs) {
      const f = feeds[name];
      if (f) {
        batch = (f instanceof Tensor ? f.shape : f.dims)[0] ?? 0;
        break;
      }
    }
    const batchNorm = this.graph.batchNorm.map((s) => ({
      ...s,
      mean: out[s.meanOutput].data as Float32Array,
      var: out[s.varOutput].data as Float32Array,
      count: batch * s.spatialSize,
    }));
    return { loss, grads, outputs, batchNorm };
  }

  /** Release the ONNX Runtime session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}
