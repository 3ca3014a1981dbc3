/**
 * Hessian-vector products and Hutchinson trace estimates for HAWQ-style sensitivity.
 *
 * Two ways to get `H v` (H: the Hessian of the loss w.r.t. the promoted parameters):
 * - `"exact"`: double backprop, as PyTorch's `autograd.grad(g, params, grad_outputs=v)`: the gradient graph
 *   is itself an ONNX graph, so the compiler differentiates it again with the loss `sum_p <g_p, v_p>` (v fed
 *   as inputs). One run gives `H v` to float32 accuracy. (Forward-over-reverse would need a second rule set,
 *   forward-mode JVPs of every op that appears in gradient graphs; reverse-over-reverse reuses the VJP rules,
 *   costs about the same, and is what PyTorch's double backprop computes.)
 * - `"central"`: `(g(theta + eps v) - g(theta - eps v)) / (2 eps)` with two gradient runs, no extra graph;
 *   truncation error O(eps^2), float32 rounding error O(1e-7 / eps).
 *
 * {@link HessianSession.hutchinson} estimates `tr(H_pp)` per parameter tensor as the mean of `v_p . (H v)_p`
 * over seeded Rademacher probes v (Hutchinson, 1990; HAWQ-V2 uses it per layer).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { FeedValue, SessionOptions } from "../onnx/session.ts";
import { Prng } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";
import { buildGradientGraph, type GradientGraph } from "./compiler.ts";
import { customLoss } from "./losses.ts";
import { GradientSession } from "./session.ts";

/** Options of {@link HessianSession.create}. */
export interface HessianOptions {
  /** Build the double-backprop graph for exact products (default true). */
  exact?: boolean;
  /** Session options (backend, threads). */
  session?: SessionOptions;
}

/** Named float32 vectors shaped like the parameters. */
export type VectorMap = ReadonlyMap<string, Float32Array>;

/**
 * Hessian-vector products over a gradient graph.
 *
 * @example
 * ```ts
 * import { buildGradientGraph } from "./compiler.ts";
 * import { HessianSession } from "./hessian.ts";
 * import { customLoss } from "./losses.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * import { makeTensorProto } from "../onnx/tensor_data.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * // L = sum(x * w^3) -> H = diag(6 w sum_n x_n)
 * const p = emptyModel(17);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ value: 2 }, { value: 2 }] } } });
 * p.graph.initializer.push(makeTensorProto("w", new Float32Array([1, 2]), [2]));
 * p.graph.node.push({ input: ["w", "w"], output: ["w2"], name: "a", opType: "Mul", domain: "", attribute: [] });
 * p.graph.node.push({ input: ["w2", "w"], output: ["w3"], name: "b", opType: "Mul", domain: "", attribute: [] });
 * p.graph.node.push({ input: ["x", "w3"], output: ["y"], name: "c", opType: "Mul", domain: "", attribute: [] });
 * p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
 * const x = Tensor.from([1, 1, 1, 1], [2, 2]);
 * const tg = await buildGradientGraph(OnnxModel.fromProto(p), {
 *   loss: customLoss((ctx) => ctx.e.reduceSum("y", null, false)), wrt: ["w"], feeds: { x },
 * });
 * const hs = await HessianSession.create(tg, { x }, { session: { backend: "web", threads: 1 } });
 * const hv = await hs.hvp({ x }, tg.initialParams(), new Map([["w", new Float32Array([1, 1])]]));
 * const h = hv.get("w")!;
 * if (Math.abs(h[0] - 12) > 1e-4 || Math.abs(h[1] - 24) > 1e-4) throw new Error(`bad ${h}`);
 * ```
 */
export class HessianSession {
  /** Runs the gradient graph (for central differences). */
  readonly gradients: GradientSession;
  /** Runs the double-backprop graph, when built. */
  readonly exact?: GradientSession;
  #probe: Map<string, string>;

  private constructor(gradients: GradientSession, exact: GradientSession | undefined, probe: Map<string, string>) {
    this.gradients = gradients;
    this.exact = exact;
    this.#probe = probe;
  }

  /** Build the sessions; `feeds` is one sample batch (as for {@link buildGradientGraph}). */
  static async create(
    tg: GradientGraph,
    feeds: Record<string, FeedValue>,
    options: HessianOptions = {},
  ): Promise<HessianSession> {
    const gs = await GradientSession.create(tg, options.session);
    if (options.exact === false) return new HessianSession(gs, undefined, new Map());
    if (tg.params.length === 0) {
      throw new QuantlabError("INVALID_ARGUMENT", "HessianSession: the gradient graph has no promoted parameters");
    }
    const probe = new Map<string, string>();
    const sample: Record<string, FeedValue> = { ...feeds };
    const init = tg.initialParams();
    for (const p of tg.params) sample[p.name] = new Tensor(init.get(p.name)!, p.dims);
    const hvGraph = await buildGradientGraph(tg.model, {
      loss: customLoss((ctx) => {
        const terms = tg.params.map((p) => {
          const v = ctx.input(`${p.name}__probe`, 1, p.dims);
          probe.set(p.name, v);
          sample[v] = new Tensor(new Float32Array(init.get(p.name)!.length), p.dims);
          return ctx.e.reduceSum(ctx.e.mul(tg.gradients.get(p.name)!, v), null, false);
        });
        return ctx.e.sum(terms);
      }),
      wrt: tg.params.map((p) => p.name),
      feeds: sample,
      fixedInputs: tg.params.map((p) => p.name).concat(tg.params.map((p) => `${p.name}__probe`)),
      session: options.session,
    });
    const exact = await GradientSession.create(hvGraph, options.session);
    return new HessianSession(gs, exact, probe);
  }

  /**
   * `H v` for the loss at `params` on `feeds`. `method`: `"exact"` (double backprop; default when built) or
   * `"central"` (finite differences of gradients with step `eps`, default `1e-3 * max(1, |theta|) / |v|`).
   */
  async hvp(
    feeds: Record<string, FeedValue>,
    params: VectorMap,
    v: VectorMap,
    options: { method?: "exact" | "central"; eps?: number } = {},
  ): Promise<Map<string, Float32Array>> {
    const method = options.method ?? (this.exact ? "exact" : "central");
    const specs = this.gradients.graph.params;
    for (const p of specs) {
      if (!v.has(p.name)) {
        throw new QuantlabError("INVALID_ARGUMENT", `hvp: the vector has no entry for parameter "${p.name}"`);
      }
    }
    if (method === "exact") {
      if (!this.exact) throw new QuantlabError("INVALID_ARGUMENT", "hvp: the exact graph was not built (exact: false)");
      const all: Record<string, FeedValue> = { ...feeds };
      for (const p of specs) {
        all[p.name] = new Tensor(params.get(p.name)!, p.dims);
        all[this.#probe.get(p.name)!] = new Tensor(v.get(p.name)!, p.dims);
      }
      return (await this.exact.run(all, new Map())).grads;
    }
    let tn = 0, vn = 0;
    for (const p of specs) {
      for (const x of params.get(p.name)!) tn += x * x;
      for (const x of v.get(p.name)!) vn += x * x;
    }
    if (vn === 0) return new Map(specs.map((p) => [p.name, new Float32Array(v.get(p.name)!.length)]));
    const eps = options.eps ?? 1e-3 * Math.max(1, Math.sqrt(tn)) / Math.sqrt(vn);
    const shifted = (sign: number) =>
      new Map(specs.map((p) => {
        const t = params.get(p.name)!, d = v.get(p.name)!;
        const o = new Float32Array(t.length);
        for (let i = 0; i < t.length; i++) o[i] = t[i] + sign * eps * d[i];
        return [p.name, o];
      }));
    const plus = await this.gradients.run(feeds, shifted(1));
    const minus = await this.gradients.run(feeds, shifted(-1));
    const out = new Map<string, Float32Array>();
    for (const p of specs) {
      const a = plus.grads.get(p.name)!, b = minus.grads.get(p.name)!;
      const o = new Float32Array(a.length);
      for (let i = 0; i < a.length; i++) o[i] = (a[i] - b[i]) / (2 * eps);
      out.set(p.name, o);
    }
    return out;
  }

  /**
   * Hutchinson estimates of the Hessian trace of each parameter tensor: the mean over `samples` seeded
   * Rademacher probes of `v_p . (H v)_p`, with the standard error of that mean.
   */
  async hutchinson(
    feeds: Record<string, FeedValue>,
    params: VectorMap,
    options: { samples?: number; seed?: number; method?: "exact" | "central" } = {},
  ): Promise<Map<string, { trace: number; stderr: number }>> {
    const samples = options.samples ?? 50;
    if (!Number.isInteger(samples) || samples < 1) {
      throw new QuantlabError("INVALID_ARGUMENT", `hutchinson: samples must be a positive integer, got ${samples}`);
    }
    const rng = new Prng(options.seed ?? 0);
    const specs = this.gradients.graph.params;
    const sums = new Map(specs.map((p) => [p.name, { s: 0, s2: 0 }]));
    for (let k = 0; k < samples; k++) {
      const v = new Map(specs.map((p) => {
        const n = params.get(p.name)!.length;
        const r = new Float32Array(n);
        for (let i = 0; i < n; i++) r[i] = rng.nextUint32() & 1 ? 1 : -1;
        return [p.name, r];
      }));
      const hv = await this.hvp(feeds, params, v, { method: options.method });
      for (const p of specs) {
        const a = v.get(p.name)!, b = hv.get(p.name)!;
        let d = 0;
        for (let i = 0; i < a.length; i++) d += a[i] * b[i];
        const acc = sums.get(p.name)!;
        acc.s += d;
        acc.s2 += d * d;
      }
    }
    return new Map(specs.map((p) => {
      const { s, s2 } = sums.get(p.name)!;
      const mean = s / samples;
      const variance = samples > 1 ? Math.max(0, (s2 - samples * mean * mean) / (samples - 1)) : 0;
      return [p.name, { trace: mean, stderr: Math.sqrt(variance / samples) }];
    }));
  }
}
