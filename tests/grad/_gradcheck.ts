// Finite-difference gradient checks for the backward-graph compiler.
//
// A case is a small forward graph (node specs) with one data input "x" (batch >= 2) and float initializers
// (promoted to parameters). The loss is L = sum(Y * R) with a fixed random R. The analytic gradient comes from
// the compiled gradient graph; the reference is a central difference (L(v + h) - L(v - h)) / 2h per element,
// where the forward graph runs in float32 on onnxruntime-node and L is accumulated in float64 in JS. Inputs
// are drawn away from kinks (Relu, Clip, MaxPool ties) so the central difference is exact up to float32
// rounding and O(h^2) truncation; the tolerance is relative to the largest gradient entry.
import assert from "node:assert/strict";
import { buildGradientGraph, customLoss, type GradientGraphOptions } from "../../lib/grad/mod.ts";
import { GradientSession } from "../../lib/grad/session.ts";
import { floatAttr, intAttr, intsAttr } from "../../lib/onnx/graph.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { type AttributeProto, AttributeType, emptyModel, type ModelProto } from "../../lib/onnx/proto.ts";
import { createSession, type FeedValue } from "../../lib/onnx/session.ts";
import { makeTensorProto } from "../../lib/onnx/tensor_data.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";

export type Attr = number | number[] | string | { f: number };

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, Attr>;
  doc?: string;
}

export type Init = "normal" | "positive" | "away" | "spaced" | Float32Array;

export interface TensorSpec {
  dims: number[];
  init?: Init;
}

export interface Case {
  nodes: NodeSpec[];
  /** Data input(s) fed per run (first dim is the batch). */
  inputs: Record<string, TensorSpec>;
  /** Float initializers; differentiated unless listed in `fixed`. */
  params?: Record<string, TensorSpec>;
  /** Integer (int64) constants. */
  ints?: Record<string, { values: number[]; dims: number[] }>;
  /** Float constants that are not differentiated. */
  fixed?: Record<string, TensorSpec>;
  output: string;
  /** Nodes of the reference forward used for finite differences (default: `nodes`). */
  fdNodes?: NodeSpec[];
  /** Also differentiate the data inputs (default true). */
  wrtInputs?: boolean;
  batchNorm?: "train" | "eval";
  h?: number;
  tol?: number;
  seed?: number;
  opset?: number;
}

function attr(name: string, v: Attr): AttributeProto {
  if (typeof v === "string") return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === "number") return intAttr(name, v);
  if (Array.isArray(v)) return intsAttr(name, v);
  return floatAttr(name, v.f);
}

function fill(spec: TensorSpec, rng: Prng): Float32Array {
  if (spec.init instanceof Float32Array) return spec.init.slice();
  const n = spec.dims.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const kind = spec.init ?? "normal";
  if (kind === "spaced") {
    // A random permutation of well-separated values: no ties for max pooling.
    const vals = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.05);
    for (let i = n - 1; i > 0; i--) {
      const j = rng.nextInt(i + 1);
      [vals[i], vals[j]] = [vals[j], vals[i]];
    }
    out.set(vals);
    return out;
  }
  for (let i = 0; i < n; i++) {
    const z = rng.nextNormal();
    if (kind === "positive") out[i] = 0.5 + Math.abs(z);
    else if (kind === "away") out[i] = (z < 0 ? -1 : 1) * (0.1 + Math.abs(z));
    else out[i] = z;
  }
  return out;
}

export interface Built {
  values: Map<string, Float32Array>;
  dims: Map<string, number[]>;
  forward: (asInputs: boolean, nodes?: NodeSpec[]) => ModelProto;
  r: Float32Array;
}

export function buildCase(c: Case): Built {
  const rng = new Prng(c.seed ?? 1);
  const values = new Map<string, Float32Array>();
  const dims = new Map<string, number[]>();
  for (
    const [k, s] of [...Object.entries(c.inputs), ...Object.entries(c.params ?? {}), ...Object.entries(c.fixed ?? {})]
  ) {
    values.set(k, fill(s, rng));
    dims.set(k, s.dims);
  }
  const forward = (asInputs: boolean, nodes = c.nodes): ModelProto => {
    const p = emptyModel(c.opset ?? 17);
    const g = p.graph;
    for (const k of Object.keys(c.inputs)) {
      g.input.push({ name: k, type: { tensorType: { elemType: 1, shape: dims.get(k)!.map((d) => ({ value: d })) } } });
    }
    for (const k of Object.keys(c.params ?? {})) {
      if (asInputs) {
        g.input.push({
          name: k,
          type: { tensorType: { elemType: 1, shape: dims.get(k)!.map((d) => ({ value: d })) } },
        });
      } else g.initializer.push(makeTensorProto(k, values.get(k)!, dims.get(k)!));
    }
    for (const k of Object.keys(c.fixed ?? {})) g.initializer.push(makeTensorProto(k, values.get(k)!, dims.get(k)!));
    for (const [k, v] of Object.entries(c.ints ?? {})) {
      g.initializer.push(makeTensorProto(k, BigInt64Array.from(v.values, BigInt), v.dims));
    }
    nodes.forEach((n, i) =>
      g.node.push({
        input: n.inputs,
        output: n.outputs,
        name: `n${i}`,
        opType: n.op,
        domain: "",
        attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attr(k, v)),
        docString: n.doc,
      })
    );
    g.output.push({ name: c.output, type: { tensorType: { elemType: 1 } } });
    return p;
  };
  return { values, dims, forward, r: new Float32Array(0) };
}

function t(values: Map<string, Float32Array>, dims: Map<string, number[]>, k: string): Tensor {
  return new Tensor(values.get(k)!, dims.get(k)!);
}

/** Analytic gradients (both backends unless `backends` says otherwise) and their central-difference check. */
export async function gradCheck(
  c: Case,
  backends: readonly ("node" | "web")[] = ["node", "web"],
): Promise<Map<string, Float32Array>> {
  const b = buildCase(c);
  const rng = new Prng((c.seed ?? 1) + 1000);
  // Forward with every differentiated tensor as an input, to get Y's shape and run finite differences.
  const fwd = await createSession(new OnnxModel(b.forward(true, c.fdNodes)), {
    backend: "node",
    threads: 1,
    cache: false,
  });
  const feedsAll = (vals: Map<string, Float32Array>): Record<string, FeedValue> => {
    const f: Record<string, FeedValue> = {};
    for (const k of [...Object.keys(c.inputs), ...Object.keys(c.params ?? {})]) f[k] = t(vals, b.dims, k);
    return f;
  };
  const y0 = (await fwd.run(feedsAll(b.values)))[c.output];
  const R = new Float32Array(y0.size);
  rng.fillNormal(R);
  const lossOf = async (vals: Map<string, Float32Array>) => {
    const y = (await fwd.run(feedsAll(vals)))[c.output].data as Float32Array;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * R[i];
    return s;
  };
  // The gradient graph: loss = sum(Y * R) with R a constant.
  const model = OnnxModel.fromProto(b.forward(false));
  const wrt = [...(c.wrtInputs === false ? [] : Object.keys(c.inputs)), ...Object.keys(c.params ?? {})];
  const options: GradientGraphOptions = {
    loss: customLoss((ctx) => {
      const r = ctx.e.constF(R, y0.shape);
      return ctx.e.reduceSum(ctx.e.mul(ctx.value(c.output), r), null, false);
    }),
    wrt,
    feeds: Object.fromEntries(Object.keys(c.inputs).map((k) => [k, t(b.values, b.dims, k)])),
    batchNorm: c.batchNorm,
    session: { backend: "node", threads: 1 },
  };
  const tg = await buildGradientGraph(model, options);
  const params = tg.initialParams();
  const dataFeeds = Object.fromEntries(Object.keys(c.inputs).map((k) => [k, t(b.values, b.dims, k)]));
  const results: Map<string, Float32Array>[] = [];
  for (const backend of backends) {
    const gs = await GradientSession.create(tg, { backend, threads: 1, cache: false });
    const r = await gs.run(dataFeeds, params);
    results.push(r.grads);
    await gs.release();
  }
  // Backends agree.
  for (let k = 1; k < results.length; k++) {
    for (const [name, g] of results[0]) {
      const o = results[k].get(name)!;
      const scale = Math.max(1e-6, ...Array.from(g, Math.abs));
      for (let i = 0; i < g.length; i++) {
        assert.ok(Math.abs(g[i] - o[i]) <= 1e-4 * scale, `backends disagree on ${name}[${i}]: ${g[i]} vs ${o[i]}`);
      }
    }
  }
  // Central differences.
  const h = c.h ?? 1e-2;
  const tol = c.tol ?? 5e-3;
  for (const name of wrt) {
    const an = results[0].get(name)!;
    const base = b.values.get(name)!;
    const fd = new Float64Array(base.length);
    for (let i = 0; i < base.length; i++) {
      const v0 = base[i];
      const plus = new Map(b.values), minus = new Map(b.values);
      const p = base.slice(), m = base.slice();
      p[i] = v0 + h;
      m[i] = v0 - h;
      plus.set(name, p);
      minus.set(name, m);
      // Use the float32-rounded step actually taken.
      fd[i] = ((await lossOf(plus)) - (await lossOf(minus))) / (p[i] - m[i]);
    }
    const scale = Math.max(1e-3, ...Array.from(fd, Math.abs));
    let worst = 0, at = 0;
    for (let i = 0; i < fd.length; i++) {
      const err = Math.abs(fd[i] - an[i]) / scale;
      if (err > worst) [worst, at] = [err, i];
    }
    assert.ok(
      worst <= tol,
      `d/d${name}[${at}]: analytic ${an[at]} vs finite difference ${fd[at]} (rel err ${worst.toExponential(2)})`,
    );
    assert.equal(an.length, base.length);
  }
  await fwd.release();
  return results[0];
}
