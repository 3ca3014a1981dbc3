/**
 * A hardware-aware latency table: every weight layer (Conv, Gemm, MatMul) of a model rebuilt as a single-node ONNX
 * model with the layer's real shapes (captured from one run at the table's batch size), attributes and weights, and
 * timed on ONNX Runtime (onnxruntime-node or onnxruntime-web) for each kernel it has:
 *
 * | kernel | Conv | Gemm / MatMul |
 * |---|---|---|
 * | `float32` | Conv | Gemm / MatMul |
 * | `int8` (QOperator, uint8 activations, int8 per-channel weights, as `lowerToQOperator` writes) | QLinearConv | com.microsoft QGemm / QLinearMatMul |
 * | `int4` (4-bit weights, float activations, block 32) | none in ONNX Runtime | com.microsoft MatMulNBits |
 *
 * The probes use random inputs and weight codes of the layer's shapes (latency does not depend on the values here);
 * the int8 probes carry the int32 bias when the layer has one, the MatMulNBits probe has none (a bias add of `N`
 * floats is negligible next to the product).
 *
 * Each kernel: one session (cache off), `warmup` untimed runs, then `runs` timed runs of `session.run` (feeds
 * built once; the time includes the binding's per-call overhead, which is part of what a deployment pays); the
 * table keeps the median and the spread (min, quartiles, max). Timings are wall clock on a shared machine: the
 * spread says how much to trust a median.
 *
 * Widths without a kernel use a stated BOPs model ({@link latencyForBits}): `t(b) = t_int8 * b / 8` for `b < 8`
 * weight bits (the layer's measured int8 time scaled by its BOPs at 8-bit activations, i.e. as if a `b`-bit kernel
 * were as efficient per bit-operation as ONNX Runtime's int8 one), the measured int8 time for `b = 8`, the measured
 * float time for `b >= 16`, and for `b = 4` on Gemm/MatMul the measured MatMulNBits time. Each entry says whether it
 * was measured or modelled.
 *
 * Tables are cached as JSON keyed by the model's SHA-256, backend, threads, batch, runs and the ONNX Runtime
 * version ({@link measureLayerLatency} `cacheDir`).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { captureShapes } from "../onnx/capture.ts";
import { attrInt, indexGraph } from "../onnx/graph.ts";
import { OnnxModel } from "../onnx/model.ts";
import { type AttributeProto, emptyModel, type NodeProto, type ValueInfo } from "../onnx/proto.ts";
import { createSession, type FeedValue, ORT_VERSION } from "../onnx/session.ts";
import { DataType, makeTensorProto, toTensor } from "../onnx/tensor_data.ts";
import { Prng } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";

/** A node's label as the plan names it: its name, else `OpType#index`. */
function planLabel(n: NodeProto, i: number): string {
  return n.name || `${n.opType}#${i}`;
}

/** Summary of repeated timings, milliseconds. */
export interface TimingStats {
  /** Median. */
  readonly median: number;
  /** Fastest run. */
  readonly min: number;
  /** First quartile. */
  readonly q1: number;
  /** Third quartile. */
  readonly q3: number;
  /** Slowest run. */
  readonly max: number;
  /** Timed runs. */
  readonly runs: number;
}

/** The kernels a layer can be timed with (see the module doc). */
export type LatencyKernel = "float32" | "int8" | "int4";

/** One timed kernel of a layer. */
export interface KernelTiming extends TimingStats {
  /** The ONNX op that ran (`"QLinearConv"`, `"MatMulNBits"`, ...). */
  readonly op: string;
}

/** The measured kernels of one weight layer. */
export interface LayerLatency {
  /** Node label. */
  readonly node: string;
  /** Op type of the float node. */
  readonly opType: string;
  /** Input activation shape (batch included). */
  readonly inputShape: readonly number[];
  /** Weight shape. */
  readonly weightShape: readonly number[];
  /** Output shape. */
  readonly outputShape: readonly number[];
  /** Timings by kernel (kernels ONNX Runtime lacks for this op are absent). */
  readonly kernels: Readonly<Partial<Record<LatencyKernel, KernelTiming>>>;
}

/** What a cached table is keyed by. */
export interface LatencyKey {
  /** SHA-256 of the model's bytes, hex. */
  readonly model: string;
  /** ONNX Runtime binding. */
  readonly backend: "node" | "web";
  /** Intra-op threads. */
  readonly threads: number;
  /** Batch size of the timed runs. */
  readonly batch: number;
  /** Timed runs per kernel. */
  readonly runs: number;
  /** Untimed warm-up runs per kernel. */
  readonly warmup: number;
  /** ONNX Runtime version. */
  readonly ort: string;
  /** Kernels timed. */
  readonly kernels?: readonly LatencyKernel[];
}

/** A measured per-layer latency table. */
export interface MeasuredLatency {
  /** Format version (1). */
  readonly version: 1;
  /** The cache key. */
  readonly key: LatencyKey;
  /** Weight layers in graph order. */
  readonly layers: readonly LayerLatency[];
  /** When it was measured (ISO time). */
  readonly measuredAt: string;
}

/** Options of {@link measureLayerLatency}. */
export interface LatencyOptions {
  /** `"node"` (default) or `"web"`. */
  readonly backend?: "node" | "web";
  /** Intra-op threads (default 1: per-layer times on one core, steadier on a shared machine). */
  readonly threads?: number;
  /** Batch size (default 8, HAWQ-v3's latency batch). */
  readonly batch?: number;
  /** Timed runs per kernel (default 50). */
  readonly runs?: number;
  /** Untimed warm-up runs per kernel (default 10). */
  readonly warmup?: number;
  /** Only these nodes (labels; default every Conv, Gemm and MatMul with an initializer weight). */
  readonly nodes?: readonly string[];
  /** Kernels to time (default all three where available). */
  readonly kernels?: readonly LatencyKernel[];
  /** Folder of cached tables (read when the key matches, written after measuring); none by default. */
  readonly cacheDir?: string;
  /** Progress: message and fraction done. */
  readonly onProgress?: (message: string, fraction: number) => void;
}

/**
 * Median, quartiles and extremes of timings (linear interpolation between order statistics).
 *
 * @example
 * ```ts
 * import { timingStats } from "./latency.ts";
 * const s = timingStats([4, 1, 3, 2, 5]);
 * if (s.median !== 3 || s.q1 !== 2 || s.q3 !== 4 || s.min !== 1 || s.runs !== 5) throw new Error(JSON.stringify(s));
 * ```
 */
export function timingStats(ms: readonly number[]): TimingStats {
  if (ms.length === 0) throw new QuantlabError("EMPTY_TENSOR", "timingStats: no timings");
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => {
    const x = p * (s.length - 1), i = Math.floor(x), f = x - i;
    return i + 1 < s.length ? s[i] * (1 - f) + s[i + 1] * f : s[i];
  };
  return { median: q(0.5), min: s[0], q1: q(0.25), q3: q(0.75), max: s[s.length - 1], runs: s.length };
}

/** SHA-256 of bytes, hex. */
async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes.slice()));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function tensorInfo(name: string, elemType: number, shape: readonly number[]): ValueInfo {
  return { name, type: { tensorType: { elemType, shape: shape.map((value) => ({ value })) } } };
}

/** A single-node model: its graph inputs (with feeds) and initializers. */
interface Probe {
  readonly model: OnnxModel;
  readonly feeds: Record<string, FeedValue>;
  readonly op: string;
}

function probeModel(
  node: NodeProto,
  opset: number,
  inputs: { name: string; elemType: number; shape: readonly number[]; value: Tensor }[],
  inits: ReturnType<typeof makeTensorProto>[],
  output: { elemType: number; shape: readonly number[] },
  ms = false,
): Probe {
  const p = emptyModel(opset);
  if (ms) p.opsetImport.push({ domain: "com.microsoft", version: 1 });
  p.graph.input.push(...inputs.map((i) => tensorInfo(i.name, i.elemType, i.shape)));
  p.graph.initializer.push(...inits);
  p.graph.node.push(node);
  p.graph.output.push(tensorInfo(node.output[0], output.elemType, output.shape));
  return {
    model: OnnxModel.fromProto(p, `latency probe ${node.opType}`),
    feeds: Object.fromEntries(inputs.map((i) => [i.name, i.value])),
    op: node.opType,
  };
}

function randomFloat(rng: Prng, shape: readonly number[]): Tensor<"float32"> {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.nextFloat() * 2 - 1;
  return new Tensor<"float32">(d, [...shape]);
}

function randomUint8(rng: Prng, shape: readonly number[]): Tensor<"uint8"> {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Uint8Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.nextUint32() & 255;
  return new Tensor<"uint8">(d, [...shape]);
}

function int8Codes(rng: Prng, n: number): Int8Array {
  const d = new Int8Array(n);
  for (let i = 0; i < n; i++) d[i] = (rng.nextUint32() % 255) - 127;
  return d;
}

const scalarF = (name: string, v: number) => makeTensorProto(name, new Float32Array([v]), []);
const scalarU8 = (name: string, v: number) => makeTensorProto(name, new Uint8Array([v]), []);

/**
 * Pack 4-bit codes (0..15, row-major `[N, K]`) into MatMulNBits' layout `[N, ceil(K / block), block / 2]`, two
 * codes per byte, low nibble first, the last block zero-padded.
 *
 * @example
 * ```ts
 * import { packNBits } from "./latency.ts";
 * const p = packNBits(new Uint8Array([1, 2, 3]), 1, 3, 16); // one row, K = 3, block 16
 * if (p.length !== 8 || p[0] !== 0x21 || p[1] !== 0x03) throw new Error(String(p));
 * ```
 */
export function packNBits(codes: Uint8Array, n: number, k: number, block: number): Uint8Array {
  if (codes.length !== n * k) {
    throw new QuantlabError("SHAPE_MISMATCH", `packNBits: ${codes.length} codes for [${n}, ${k}]`);
  }
  const blocks = Math.ceil(k / block), blob = block / 2;
  const out = new Uint8Array(n * blocks * blob);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < k; c++) {
      const q = codes[r * k + c] & 15;
      const at = r * blocks * blob + (c >> 1);
      out[at] |= c & 1 ? q << 4 : q;
    }
  }
  return out;
}

/**
 * A single-node model of `node` (a Conv, Gemm or MatMul of `model` with an initializer weight) for one kernel, with
 * random inputs of the captured shapes; `undefined` when ONNX Runtime has no such kernel for the op (see the module
 * doc). Exposed so tests can check what each probe computes.
 *
 * @example
 * ```ts
 * import { layerProbe } from "./latency.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * import { emptyModel } from "../onnx/proto.ts";
 * import { makeTensorProto } from "../onnx/tensor_data.ts";
 * const p = emptyModel(17);
 * p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ value: 2 }, { value: 32 }] } } });
 * p.graph.initializer.push(makeTensorProto("W", new Float32Array(32 * 4).fill(0.1), [4, 32]));
 * p.graph.node.push({ input: ["x", "W"], output: ["y"], name: "fc", opType: "Gemm", domain: "",
 *   attribute: [{ name: "transB", type: 2, i: 1 }] });
 * p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
 * const m = OnnxModel.fromProto(p);
 * const shapes = { input: [2, 32], output: [2, 4] };
 * if (layerProbe(m, "fc", "int4", shapes, 0)?.op !== "MatMulNBits") throw new Error("no 4-bit kernel");
 * ```
 */
export function layerProbe(
  model: OnnxModel,
  label: string,
  kernel: LatencyKernel,
  shapes: { input: readonly number[]; output: readonly number[] },
  seed: number,
): { model: OnnxModel; feeds: Record<string, FeedValue>; op: string } | undefined {
  const g = model.graph;
  const ix = indexGraph(g);
  const at = g.node.findIndex((n, i) => planLabel(n, i) === label);
  if (at < 0) throw new QuantlabError("INVALID_ARGUMENT", `latency: no node "${label}" in ${model.source}`);
  const n = g.node[at];
  const wInit = ix.initializers.get(n.input[1]);
  if (!wInit) throw new QuantlabError("INVALID_ARGUMENT", `latency: node "${label}" has no initializer weight`);
  const W = toTensor(wInit) as Tensor<"float32">;
  const bInit = n.input[2] ? ix.initializers.get(n.input[2]) : undefined;
  const rng = new Prng(seed);
  const opset = Math.max(13, model.opset());
  const attrs: AttributeProto[] = n.attribute.map((a) => ({ ...a }));
  const op = n.opType;
  const inShape = shapes.input, outShape = shapes.output;
  const M = op === "Conv" ? W.shape[0] : undefined;
  if (kernel === "float32") {
    const inits = [makeTensorProto("W", W.data, W.shape)];
    if (bInit) inits.push(makeTensorProto("B", toTensor(bInit).data as Float32Array, bInit.dims));
    const node: NodeProto = {
      input: ["x", "W", ...(bInit ? ["B"] : [])],
      output: ["y"],
      name: label,
      opType: op,
      domain: "",
      attribute: attrs,
    };
    return probeModel(
      node,
      opset,
      [{ name: "x", elemType: DataType.FLOAT, shape: inShape, value: randomFloat(rng, inShape) }],
      inits,
      {
        elemType: DataType.FLOAT,
        shape: outShape,
      },
    );
  }
  if (kernel === "int8") {
    const xq = { name: "x", elemType: DataType.UINT8, shape: inShape, value: randomUint8(rng, inShape) };
    const common = [scalarF("x_scale", 0.02), scalarU8("x_zp", 0)];
    const yq = [scalarF("y_scale", 0.05), scalarU8("y_zp", 0)];
    if (op === "Conv") {
      const inits = [
        ...common,
        makeTensorProto("w", int8Codes(rng, W.size), W.shape),
        makeTensorProto("w_scale", new Float32Array(M!).fill(0.01), [M!]),
        makeTensorProto("w_zp", new Int8Array(M!), [M!]),
        ...yq,
        ...(bInit ? [makeTensorProto("b", new Int32Array(M!).fill(100), [M!])] : []),
      ];
      const node: NodeProto = {
        input: ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp", ...(bInit ? ["b"] : [])],
        output: ["y"],
        name: label,
        opType: "QLinearConv",
        domain: "",
        attribute: attrs,
      };
      return probeModel(node, opset, [xq], inits, { elemType: DataType.UINT8, shape: outShape });
    }
    if (op === "Gemm") {
      const transB = attrInt(n, "transB", 0);
      const N = transB ? W.shape[0] : W.shape[1];
      const inits = [
        ...common,
        makeTensorProto("w", int8Codes(rng, W.size), W.shape),
        makeTensorProto("w_scale", new Float32Array(N).fill(0.01), [N]),
        makeTensorProto("w_zp", new Int8Array(N), [N]),
        ...(bInit ? [makeTensorProto("b", new Int32Array(N).fill(100), [N])] : []),
        ...yq,
      ];
      const node: NodeProto = {
        input: ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", bInit ? "b" : "", "y_scale", "y_zp"],
        output: ["y"],
        name: label,
        opType: "QGemm",
        domain: "com.microsoft",
        attribute: attrs.filter((a) => a.name !== "beta"),
      };
      return probeModel(node, opset, [xq], inits, { elemType: DataType.UINT8, shape: outShape }, true);
    }
    if (op === "MatMul") {
      const N = W.shape[W.shape.length - 1];
      const inits = [
        ...common,
        makeTensorProto("w", int8Codes(rng, W.size), W.shape),
        makeTensorProto("w_scale", new Float32Array(N).fill(0.01), [N]),
        makeTensorProto("w_zp", new Int8Array(N), [N]),
        ...yq,
      ];
      const node: NodeProto = {
        input: ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp"],
        output: ["y"],
        name: label,
        opType: "QLinearMatMul",
        domain: "",
        attribute: [],
      };
      return probeModel(node, opset, [xq], inits, { elemType: DataType.UINT8, shape: outShape });
    }
    return undefined;
  }
  // int4: MatMulNBits (weights [N, K] after transposing as needed), float activations.
  if (op !== "Gemm" && op !== "MatMul") return undefined;
  if (op === "Gemm" && attrInt(n, "transA", 0) !== 0) return undefined;
  const transB = op === "Gemm" ? attrInt(n, "transB", 0) : 0;
  if (W.shape.length !== 2) return undefined;
  const N = transB ? W.shape[0] : W.shape[1], K = transB ? W.shape[1] : W.shape[0];
  const block = 32;
  const codes = new Uint8Array(N * K);
  for (let i = 0; i < codes.length; i++) codes[i] = rng.nextUint32() & 15;
  const blocks = Math.ceil(K / block);
  const inits = [
    makeTensorProto("w", packNBits(codes, N, K, block), [N, blocks, block / 2]),
    makeTensorProto("w_scale", new Float32Array(N * blocks).fill(0.01), [N * blocks]),
  ];
  const node: NodeProto = {
    input: ["x", "w", "w_scale"],
    output: ["y"],
    name: label,
    opType: "MatMulNBits",
    domain: "com.microsoft",
    attribute: [
      { name: "K", type: 2, i: K },
      { name: "N", type: 2, i: N },
      { name: "bits", type: 2, i: 4 },
      { name: "block_size", type: 2, i: block },
    ],
  };
  return probeModel(
    node,
    opset,
    [{ name: "x", elemType: DataType.FLOAT, shape: inShape, value: randomFloat(rng, inShape) }],
    inits,
    { elemType: DataType.FLOAT, shape: outShape },
    true,
  );
}

/** Labels of the weight layers of a model (Conv, Gemm, MatMul with an initializer weight), in graph order. */
function weightLayers(model: OnnxModel): string[] {
  const ix = indexGraph(model.graph);
  return model.graph.node.flatMap((n, i) =>
    (n.opType === "Conv" || n.opType === "Gemm" || n.opType === "MatMul") && n.domain === "" &&
      ix.initializers.has(n.input[1])
      ? [planLabel(n, i)]
      : []
  );
}

async function timeProbe(
  probe: { model: OnnxModel; feeds: Record<string, FeedValue> },
  backend: "node" | "web",
  threads: number,
  warmup: number,
  runs: number,
): Promise<TimingStats> {
  const s = await createSession(probe.model, { backend, threads, cache: false });
  try {
    for (let i = 0; i < warmup; i++) await s.run(probe.feeds);
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await s.run(probe.feeds);
      ms.push(performance.now() - t0);
    }
    return timingStats(ms);
  } finally {
    await s.release();
  }
}

/**
 * Measure (or read from the cache) the per-layer latency table of `model` (see the module doc).
 *
 * @example
 * ```ts
 * import { measureLayerLatency } from "./latency.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * const model = await OnnxModel.load(new URL("../../datasets/models/digits_cnn.onnx", import.meta.url).pathname);
 * const t = await measureLayerLatency(model, { backend: "web", batch: 2, runs: 3, warmup: 1 });
 * const first = t.layers[0];
 * if (!(first.kernels.float32!.median > 0) || first.kernels.int8?.op !== "QLinearConv") throw new Error("bad");
 * ```
 */
export async function measureLayerLatency(model: OnnxModel, options: LatencyOptions = {}): Promise<MeasuredLatency> {
  const backend = options.backend ?? "node", threads = options.threads ?? 1, batch = options.batch ?? 8;
  const runs = options.runs ?? 50, warmup = options.warmup ?? 10;
  if (!(Number.isInteger(batch) && batch >= 1 && Number.isInteger(runs) && runs >= 1 && warmup >= 0)) {
    throw new QuantlabError("INVALID_ARGUMENT", `latency: batch and runs must be positive integers`);
  }
  const kernels = options.kernels ?? ["float32", "int8", "int4"];
  const key: LatencyKey = {
    model: await sha256(model.encode()),
    backend,
    threads,
    batch,
    runs,
    warmup,
    ort: ORT_VERSION,
    kernels: [...kernels],
  };
  const all = weightLayers(model);
  const nodes = options.nodes ?? all;
  for (const n of nodes) {
    if (!all.includes(n)) throw new QuantlabError("INVALID_ARGUMENT", `latency: "${n}" is not a weight layer`);
  }
  const file = options.cacheDir
    ? `${options.cacheDir}/latency_${key.model.slice(0, 16)}_${backend}_t${threads}_b${batch}_r${runs}.json`
    : undefined;
  if (file) {
    try {
      const cached = JSON.parse(await Deno.readTextFile(file)) as MeasuredLatency;
      const sameNodes = nodes.every((n) => cached.layers.some((l) => l.node === n));
      if (JSON.stringify(cached.key) === JSON.stringify(key) && sameNodes) {
        return { ...cached, layers: cached.layers.filter((l) => nodes.includes(l.node)) };
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  const input = model.graph.input.find((v) => !model.graph.initializer.some((t) => t.name === v.name));
  if (!input) throw new QuantlabError("MALFORMED_MODEL", `latency: ${model.source} has no graph input`);
  const dims = input.type?.tensorType?.shape?.map((d) => d.value ?? batch) ?? [];
  dims[0] = batch;
  const shaped = await captureShapes(model.clone(), { [input.name]: Tensor.zeros(dims) }, { backend });
  const g = shaped.graph;
  const labels = g.node.map((n, i) => planLabel(n, i));
  const layers: LayerLatency[] = [];
  const total = nodes.length * kernels.length;
  let done = 0;
  for (const label of nodes) {
    const n = g.node[labels.indexOf(label)];
    const shapeOf = (v: string) => {
      const s = v === input.name ? dims : shaped.shape(v);
      if (!s) throw new QuantlabError("MALFORMED_MODEL", `latency: no captured shape for "${v}" (node "${label}")`);
      return s;
    };
    const shapes = { input: shapeOf(n.input[0]), output: shapeOf(n.output[0]) };
    const timed: Partial<Record<LatencyKernel, KernelTiming>> = {};
    for (const k of kernels) {
      const probe = layerProbe(shaped, label, k, shapes, labels.indexOf(label));
      if (probe) timed[k] = { op: probe.op, ...(await timeProbe(probe, backend, threads, warmup, runs)) };
      options.onProgress?.(`latency ${label} ${k}`, ++done / total);
    }
    const w = g.initializer.find((t) => t.name === n.input[1])!;
    layers.push({
      node: label,
      opType: n.opType,
      inputShape: shapes.input,
      weightShape: [...w.dims],
      outputShape: shapes.output,
      kernels: timed,
    });
  }
  const table: MeasuredLatency = { version: 1, key, layers, measuredAt: new Date().toISOString() };
  if (file) {
    await Deno.mkdir(options.cacheDir!, { recursive: true });
    await Deno.writeTextFile(file, JSON.stringify(table, null, 1) + "\n");
  }
  return table;
}

/** Where an entry of {@link latencyForBits} comes from. */
export type LatencySource = "measured" | "bops-model";

/**
 * Latency of one layer at `bits` weight bits from a measured row (see the module doc for the model used where ONNX
 * Runtime has no kernel): the time in ms and whether it was measured.
 *
 * @example
 * ```ts
 * import { latencyForBits } from "./latency.ts";
 * const t = { median: 1, min: 1, q1: 1, q3: 1, max: 1, runs: 1 };
 * const row = { node: "c", opType: "Conv", inputShape: [], weightShape: [], outputShape: [],
 *   kernels: { float32: { ...t, op: "Conv", median: 2 }, int8: { ...t, op: "QLinearConv", median: 0.8 } } };
 * const at4 = latencyForBits(row, 4);
 * if (at4.ms !== 0.4 || at4.source !== "bops-model" || latencyForBits(row, 8).source !== "measured") throw new Error("bad");
 * ```
 */
export function latencyForBits(row: LayerLatency, bits: number): { ms: number; source: LatencySource; op: string } {
  const k = row.kernels;
  if (bits >= 16) {
    if (!k.float32) throw new QuantlabError("INVALID_ARGUMENT", `latency: "${row.node}" has no float32 timing`);
    return { ms: k.float32.median, source: "measured", op: k.float32.op };
  }
  if (bits === 4 && k.int4) return { ms: k.int4.median, source: "measured", op: k.int4.op };
  if (!k.int8) throw new QuantlabError("INVALID_ARGUMENT", `latency: "${row.node}" has no int8 timing`);
  if (bits === 8) return { ms: k.int8.median, source: "measured", op: k.int8.op };
  if (bits > 8) return { ms: k.int8.median, source: "bops-model", op: k.int8.op };
  return { ms: k.int8.median * bits / 8, source: "bops-model", op: `${k.int8.op} x ${bits}/8` };
}

/**
 * The `node -> bits -> ms` table the integer program takes (`hawqAnalysis({ latency })`), for the candidate widths,
 * from a measured table (modelled where no kernel exists; see {@link latencyForBits}).
 *
 * @example
 * ```ts
 * import { latencyTable } from "./latency.ts";
 * const t = { median: 1, min: 1, q1: 1, q3: 1, max: 1, runs: 1 };
 * const measured = { version: 1 as const, measuredAt: "", key: { model: "", backend: "node" as const, threads: 1,
 *   batch: 8, runs: 1, warmup: 0, ort: "" }, layers: [{ node: "c", opType: "Conv", inputShape: [], weightShape: [],
 *   outputShape: [], kernels: { float32: { ...t, op: "Conv" }, int8: { ...t, op: "QLinearConv", median: 0.5 } } }] };
 * if (latencyTable(measured, [4, 8]).c[8] !== 0.5) throw new Error("bad");
 * ```
 */
export function latencyTable(
  measured: MeasuredLatency,
  bits: readonly number[],
): Record<string, Record<number, number>> {
  return Object.fromEntries(
    measured.layers.map((l) => [l.node, Object.fromEntries(bits.map((b) => [b, latencyForBits(l, b).ms]))]),
  );
}
