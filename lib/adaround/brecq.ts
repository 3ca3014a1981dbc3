/**
 * Block reconstruction (BRECQ: Li, Gong, Tan, Yang, Hu, Zhang, Yu, Wang, Gu 2021, "BRECQ: Pushing the Limit of
 * Post-Training Quantization by Block Reconstruction"), weight rounding stage, following the authors' code
 * (`yhhhli/BRECQ`: `quant/block_recon.py`, `quant/layer_recon.py`, `quant/quant_block.py`, `quant/data_utils.py`,
 * `main_imagenet.py`).
 *
 * AdaRound's objective over a residual block's output instead of one layer's: all the block's weights get their own
 * rectified-sigmoid variable V (initialised so h(V) is the fractional part), and Adam (lr 1e-3, torch defaults)
 * minimises `lp_loss(y, t, p=2)` = mean over batch and positions of the squared error summed over channels, plus
 * `0.01 * sum over the block's weights of sum(1 - |2h - 1|^b)`. The rounding term is off for the first 20 % of
 * iterations (`warmup`), and b decays **linearly** from 20 to 2 over the remaining iterations: BRECQ's
 * `LinearTempDecay` (its docstring says cosine, the code is linear; we follow the code, with its 1-based count and
 * `rel_start_decay = warmup`). 20,000 iterations per block or layer, batches of 32 drawn from the cached activations
 * of 1,024 calibration images (`torch.randperm(n)[:32]`; seeded here), hard rounding `V >= 0` at the end.
 *
 * Blocks are found in the graph ({@link residualBlocks}): for each Add of two computed values, the block runs from
 * the nearest value both branches come from (the block input) to the Add, including the downsample branch, plus the
 * Relu (or Clip) that alone consumes the Add (BRECQ's `QuantBasicBlock`: `relu2(conv2(conv1(x)) + downsample(x))`).
 * A block must be closed (its values used only inside it, except the output). Weights outside every block (the
 * first conv, the classifier) are reconstructed layer-wise with the same objective over the layer and its following
 * activation (BRECQ's `layer_reconstruction`, same hyperparameters).
 *
 * Inputs come from the model with every planned weight quantized (rounded ones as rounded, the rest to nearest) and
 * activations in float, targets from the float model (BRECQ `asym=True`, `set_quant_state(weight_quant=True,
 * act_quant=False)`); `inputs: "qdq"` (activations quantized too) and `"float"` are options. The reconstruction loss
 * is plain MSE, BRECQ's `opt_mode='mse'` as `main_imagenet.py` runs it; the Fisher-weighted losses (`fisher_diag`,
 * `fisher_full`) are not implemented. BRECQ's second stage (LSQ on activation step sizes, `act_quant=True`) is not
 * part of this pass.
 *
 * Results go into the state as AdaRound's do: on-grid `weightValues` plus the fixed `weightFits`.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { InputFeeds } from "../data/reader.ts";
import { adam } from "../grad/optim.ts";
import { GradientSession } from "../grad/session.ts";
import { indexGraph } from "../onnx/graph.ts";
import type { OnnxModel } from "../onnx/model.ts";
import type { NodeProto, TensorProto } from "../onnx/proto.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { makeTensorProto, tensorValues } from "../onnx/tensor_data.ts";
import { limitedBatches } from "../ptq/calibrate_pass.ts";
import { fitPlannedWeights, materializeQdq } from "../ptq/materialize.ts";
import { type PassContext, type PtqPass, type PtqState, registerPass, timedPass } from "../ptq/pass.ts";
import type { FittedWeights } from "../quant/weight_quantizer.ts";
import { Prng } from "../tensor/prng.ts";
import { Tensor } from "../tensor/tensor.ts";
import { cacheActivations } from "./capture.ts";
import {
  blockVariableName,
  followingActivation,
  reconstructionTarget,
  ROUNDING_NAMES,
  type RoundingBlock,
  roundingBlockGradientGraph,
  splitWeights,
} from "./layer_graph.ts";
import type { CachedActivations, LossPoint } from "./optimize_layer.ts";
import { hardRoundCodes, initialRoundingVariable, roundingRegularizer } from "./rectified_sigmoid.ts";

/** A residual block found in a graph. */
export interface ResidualBlock {
  /** Label: the Add node's label. */
  readonly label: string;
  /** The block's input value (read by both branches). */
  readonly input: string;
  /** The block's output value (the Relu/Clip after the Add, or the Add). */
  readonly output: string;
  /** Indices of the block's nodes in the graph, in graph order. */
  readonly nodes: readonly number[];
}

/**
 * The residual blocks of a graph (see the module doc): for each Add whose two inputs are computed values, the
 * nodes from the nearest common source of both branches to the Add, plus a Relu/Clip that alone consumes it. Blocks
 * whose intermediate values are used outside them are left out.
 *
 * @example
 * ```ts
 * import { residualBlocks } from "./brecq.ts";
 * import { OnnxModel } from "../onnx/model.ts";
 * const m = await OnnxModel.load(new URL("../../datasets/models/digits_cnn.onnx", import.meta.url));
 * if (residualBlocks(m).length !== 0) throw new Error("the digits CNN has no residual block");
 * ```
 */
export function residualBlocks(model: OnnxModel): ResidualBlock[] {
  const g = model.graph;
  const inits = new Set(g.initializer.map((t) => t.name));
  const producer = new Map<string, number>();
  g.node.forEach((n, i) => n.output.forEach((o) => producer.set(o, i)));
  const consumers = new Map<string, number[]>();
  g.node.forEach((n, i) => {
    for (const x of n.input) if (x && !inits.has(x)) consumers.set(x, [...(consumers.get(x) ?? []), i]);
  });
  const memo = new Map<string, Set<string>>();
  /** The computed values and graph inputs `t` depends on, `t` included. */
  const ancestors = (t: string): Set<string> => {
    const have = memo.get(t);
    if (have) return have;
    const out = new Set<string>([t]);
    const p = producer.get(t);
    if (p !== undefined) {
      for (const x of g.node[p].input) if (x && !inits.has(x)) { for (const a of ancestors(x)) out.add(a); }
    }
    memo.set(t, out);
    return out;
  };
  const blocks: ResidualBlock[] = [];
  g.node.forEach((add, ai) => {
    if (add.opType !== "Add" || add.input.length !== 2 || add.input.some((x) => inits.has(x))) return;
    const [a, b] = add.input.map(ancestors);
    let input: string | undefined, best = -2;
    for (const t of a) {
      if (!b.has(t)) continue;
      const p = producer.get(t) ?? -1;
      if (p > best) [best, input] = [p, t];
    }
    if (input === undefined) return;
    const nodes: number[] = [];
    for (let i = best + 1; i <= ai; i++) {
      const o = g.node[i].output[0];
      if (i === ai || ((a.has(o) || b.has(o)) && ancestors(o).has(input))) nodes.push(i);
    }
    let output = add.output[0];
    const users = consumers.get(output) ?? [];
    if (users.length === 1 && ["Relu", "Clip"].includes(g.node[users[0]].opType)) {
      nodes.push(users[0]);
      output = g.node[users[0]].output[0];
    }
    // Closed: every input is the block input, a constant or a block value; every block value but the output stays
    // inside.
    const inside = new Set(nodes.flatMap((i) => g.node[i].output));
    const closed = nodes.every((i) =>
      g.node[i].input.every((x) => !x || x === input || inits.has(x) || inside.has(x)) &&
      g.node[i].output.every((o) =>
        o === output ||
        ((consumers.get(o) ?? []).every((c) => nodes.includes(c)) && !g.output.some((v) => v.name === o))
      )
    );
    if (!closed) return;
    blocks.push({ label: add.name || `Add#${ai}`, input, output, nodes });
  });
  return blocks;
}

/**
 * BRECQ's `LinearTempDecay` with its warm-up: the temperature b at iteration `iter` (0-based; BRECQ counts from 1)
 * of `iterations`, or 0 while the rounding term is off (`count < warmup * iterations`).
 *
 * @example
 * ```ts
 * import { linearBeta } from "./brecq.ts";
 * if (linearBeta(0, 1000, [20, 2], 0.2) !== 0) throw new Error("warm-up");
 * if (linearBeta(199, 1000, [20, 2], 0.2) !== 20) throw new Error("start");
 * if (Math.abs(linearBeta(599, 1000, [20, 2], 0.2) - 11) > 1e-9) throw new Error("middle");
 * ```
 */
export function linearBeta(
  iter: number,
  iterations: number,
  betaRange: readonly [number, number],
  warmup: number,
): number {
  const count = iter + 1;
  const start = warmup * iterations;
  if (count < start) return 0;
  const rel = (count - start) / (iterations - start);
  return betaRange[1] + (betaRange[0] - betaRange[1]) * Math.max(0, 1 - rel);
}

/** Where a unit's inputs come from (see the module doc). */
export type BrecqInputs = "quantized-weights" | "qdq" | "float";

/** Options of {@link brecq}; unset ones come from the preset. */
export interface BrecqOptions {
  /** `"brecq"` (default: BRECQ's settings) or `"small"` (2,000 iterations on 512 examples; not BRECQ's). */
  readonly preset?: "brecq" | "small";
  /** Adam iterations per block or layer (BRECQ 20,000). */
  readonly iterations?: number;
  /** Examples per iteration (BRECQ 32). */
  readonly batchSize?: number;
  /** Calibration examples cached (BRECQ 1,024; small 512). */
  readonly samples?: number;
  /** Weight of the rounding term (BRECQ 0.01). */
  readonly regWeight?: number;
  /** Temperature range (BRECQ [20, 2]). */
  readonly betaRange?: readonly [number, number];
  /** Fraction of iterations without the rounding term (BRECQ 0.2). */
  readonly warmup?: number;
  /** Adam learning rate (BRECQ: torch's default 1e-3). */
  readonly lr?: number;
  /** Seed of the batch draws (default 0; unit k uses seed + k). */
  readonly seed?: number;
  /** Where inputs come from (default `"quantized-weights"`, BRECQ's `asym=True`). */
  readonly inputs?: BrecqInputs;
  /** Reconstruct residual blocks jointly (default true; false: every layer alone, i.e. AdaRound with BRECQ's
   * hyperparameters). */
  readonly blocks?: boolean;
  /** Loss-curve spacing in iterations (default iterations / 100, at least 1). */
  readonly curveEvery?: number;
}

/** One reconstructed unit (a block or a single layer) in the pass details. */
export interface BrecqUnitRecord {
  /** `"block"` or `"layer"`. */
  readonly kind: "block" | "layer";
  /** Block label (the Add's) or layer label. */
  readonly label: string;
  /** Plan labels of the layers rounded in it. */
  readonly layers: readonly string[];
  /** The unit's input and output values. */
  readonly input: string;
  /** The unit's output value. */
  readonly output: string;
  /** Reconstruction error (sum over channels, mean over the rest) of the unit's output with round-to-nearest. */
  readonly mseNearest: number;
  /** The same with the final hard rounding. */
  readonly mseRounded: number;
  /** Fraction of weights rounded away from nearest. */
  readonly flipped: number;
  /** Fraction of h(V) strictly between 0 and 1 at the end. */
  readonly undecided: number;
  /** Loss curve. */
  readonly curve: readonly LossPoint[];
  /** Wall time, seconds. */
  readonly seconds: number;
}

/** The pass details (`state.records[k].details` of a BRECQ pass). */
export interface BrecqDetails {
  /** Resolved hyperparameters. */
  readonly settings: Readonly<Record<string, unknown>>;
  /** Reconstructed units in graph order. */
  readonly units: readonly BrecqUnitRecord[];
  /** Planned weights not rounded, with the reason. */
  readonly skipped: readonly { readonly weight: string; readonly reason: string }[];
}

interface Resolved {
  preset: "brecq" | "small";
  iterations: number;
  batchSize: number;
  samples: number;
  regWeight: number;
  betaRange: readonly [number, number];
  warmup: number;
  lr: number;
  seed: number;
  inputs: BrecqInputs;
  blocks: boolean;
  curveEvery: number;
}

function resolve(o: BrecqOptions): Resolved {
  const preset = o.preset ?? "brecq";
  if (preset !== "brecq" && preset !== "small") {
    throw new QuantlabError("INVALID_ARGUMENT", `brecq preset must be "brecq" or "small", got "${preset}"`);
  }
  const iterations = o.iterations ?? (preset === "small" ? 2000 : 20000);
  const r: Resolved = {
    preset,
    iterations,
    batchSize: o.batchSize ?? 32,
    samples: o.samples ?? (preset === "small" ? 512 : 1024),
    regWeight: o.regWeight ?? 0.01,
    betaRange: o.betaRange ?? [20, 2],
    warmup: o.warmup ?? 0.2,
    lr: o.lr ?? 1e-3,
    seed: o.seed ?? 0,
    inputs: o.inputs ?? "quantized-weights",
    blocks: o.blocks ?? true,
    curveEvery: o.curveEvery ?? Math.max(1, Math.floor(iterations / 100)),
  };
  for (
    const [k, v] of Object.entries({ iterations, batchSize: r.batchSize, samples: r.samples, curve: r.curveEvery })
  ) {
    if (!Number.isInteger(v) || v < 1) {
      throw new QuantlabError("INVALID_ARGUMENT", `brecq ${k} must be a positive integer, got ${v}`);
    }
  }
  if (r.samples < 2) throw new QuantlabError("INVALID_ARGUMENT", `brecq samples must be >= 2, got ${r.samples}`);
  const bad = (k: string, ok: boolean, v: unknown) => {
    if (!ok) throw new QuantlabError("INVALID_ARGUMENT", `brecq ${k} is out of range: ${v}`);
  };
  bad("regWeight", Number.isFinite(r.regWeight) && r.regWeight >= 0, r.regWeight);
  bad("warmup", Number.isFinite(r.warmup) && r.warmup >= 0 && r.warmup < 1, r.warmup);
  bad("lr", Number.isFinite(r.lr) && r.lr > 0, r.lr);
  bad("seed", Number.isInteger(r.seed) && r.seed >= 0, r.seed);
  bad("betaRange", r.betaRange.length === 2 && r.betaRange.every((b) => Number.isFinite(b) && b > 0), r.betaRange);
  bad("inputs", ["quantized-weights", "qdq", "float"].includes(r.inputs), r.inputs);
  return r;
}

function gatherRows(src: CachedActivations, idx: Int32Array, n: number, out: Float32Array): void {
  const per = src.data.length / src.count;
  for (let k = 0; k < n; k++) out.set(src.data.subarray(idx[k] * per, (idx[k] + 1) * per), k * per);
}

/** Hyperparameters of one unit's optimisation. */
export interface BlockRoundingOptions {
  /** Adam iterations. */
  readonly iterations: number;
  /** Examples per iteration. */
  readonly batchSize: number;
  /** Weight of the rounding term. */
  readonly regWeight: number;
  /** Temperature range. */
  readonly betaRange: readonly [number, number];
  /** Warm-up fraction. */
  readonly warmup: number;
  /** Adam learning rate. */
  readonly lr: number;
  /** Seed of the batch draws. */
  readonly seed: number;
  /** Loss-curve spacing. */
  readonly curveEvery: number;
  /** Examples (the first of the cache) for the error before and after. */
  readonly evalCount: number;
  /** ORT options. */
  readonly session: SessionOptions;
}

/** What one unit's optimisation produced. */
export interface BlockRoundingResult {
  /** On-grid values of each rounded weight. */
  readonly values: ReadonlyMap<string, Float32Array>;
  /** Error with round-to-nearest. */
  readonly mseNearest: number;
  /** Error with the final hard rounding. */
  readonly mseRounded: number;
  /** Fraction of weights rounded away from nearest. */
  readonly flipped: number;
  /** Fraction of h(V) strictly between 0 and 1. */
  readonly undecided: number;
  /** Loss curve. */
  readonly curve: readonly LossPoint[];
  /** Wall time, seconds. */
  readonly seconds: number;
}

/**
 * Optimise the rounding of every weight of a block jointly (see the module doc) on cached block inputs `x` and float
 * block outputs `t`.
 *
 * @example
 * ```ts ignore
 * const r = await roundBlock(block, inputs, targets, { iterations: 2000, batchSize: 32, ... });
 * console.log(r.mseNearest, "->", r.mseRounded);
 * ```
 */
export async function roundBlock(
  block: RoundingBlock,
  x: CachedActivations,
  t: CachedActivations,
  o: BlockRoundingOptions,
): Promise<BlockRoundingResult> {
  const t0 = performance.now();
  if (x.count !== t.count || x.count < 2) {
    throw new QuantlabError(
      "SHAPE_MISMATCH",
      `BRECQ ${block.label}: ${x.count} cached inputs and ${t.count} targets (need equal counts >= 2)`,
    );
  }
  const N = ROUNDING_NAMES;
  const v0 = new Map(block.weights.map((w) => [w.tensor, initialRoundingVariable(w.fraction)]));
  const bs = Math.min(o.batchSize, x.count);
  const xPer = x.data.length / x.count, tPer = t.data.length / t.count;
  const xBuf = new Float32Array(bs * xPer), tBuf = new Float32Array(bs * tPer);
  const xT = new Tensor<"float32">(xBuf, [bs, ...x.sampleDims]);
  const tT = new Tensor<"float32">(tBuf, [bs, ...t.sampleDims]);
  const perm = Int32Array.from({ length: x.count }, (_, k) => k);
  gatherRows(x, perm, bs, xBuf);
  gatherRows(t, perm, bs, tBuf);
  const tg = await roundingBlockGradientGraph(block, v0, xT, tT, o.session);
  const gs = await GradientSession.create(tg, o.session);
  const scalar = (v: number) => new Tensor<"float32">(new Float32Array([v]), []);
  try {
    const ne = Math.min(o.evalCount, x.count);
    const ex = new Tensor<"float32">(x.data.subarray(0, ne * xPer), [ne, ...x.sampleDims]);
    const et = new Tensor<"float32">(t.data.subarray(0, ne * tPer), [ne, ...t.sampleDims]);
    const hard = (v: Float32Array) => v.map((a) => (a >= 0 ? 1e4 : -1e4));
    const mse = async (vs: Map<string, Float32Array>): Promise<number> => {
      const params = new Map([...vs].map(([k, v]) => [blockVariableName(k), hard(v)]));
      const r = await gs.run({ [block.input]: ex, [N.target]: et, [N.beta]: scalar(2), [N.reg]: scalar(0) }, params);
      return r.loss;
    };
    const mseNearest = await mse(v0);
    const vs = new Map([...v0].map(([k, v]) => [k, v.slice()]));
    const params = new Map([...vs].map(([k, v]) => [blockVariableName(k), v]));
    const opt = adam({ lr: o.lr });
    const rng = new Prng(o.seed);
    const curve: LossPoint[] = [];
    for (let it = 0; it < o.iterations; it++) {
      for (let k = 0; k < bs; k++) {
        const j = k + rng.nextInt(perm.length - k);
        const s = perm[k];
        perm[k] = perm[j];
        perm[j] = s;
      }
      gatherRows(x, perm, bs, xBuf);
      gatherRows(t, perm, bs, tBuf);
      const beta = linearBeta(it, o.iterations, o.betaRange, o.warmup);
      const reg = beta === 0 ? 0 : o.regWeight;
      const r = await gs.run(
        { [block.input]: xT, [N.target]: tT, [N.beta]: scalar(beta || 2), [N.reg]: scalar(reg) },
        params,
      );
      if (it % o.curveEvery === 0 || it === o.iterations - 1) {
        let round = 0;
        if (reg !== 0) { for (const v of vs.values()) round += reg * roundingRegularizer(v, beta); }
        curve.push({ iteration: it, loss: r.loss, recon: r.loss - round, round, beta });
      }
      opt.step(params, r.grads);
    }
    for (const [k, v] of vs) {
      if (!v.every(Number.isFinite)) throw new QuantlabError("NON_FINITE", `BRECQ ${block.label}: V of ${k} diverged`);
    }
    const mseRounded = await mse(vs);
    const values = new Map<string, Float32Array>();
    let flipped = 0, undecided = 0, total = 0;
    for (const w of block.weights) {
      const p = w.params, v = vs.get(w.tensor)!;
      const codes = hardRoundCodes(w.base, v, p.qmin, p.qmax);
      const nearest = hardRoundCodes(w.base, v0.get(w.tensor)!, p.qmin, p.qmax);
      let inner = 1;
      for (let k = w.axis + 1; k < w.dims.length; k++) inner *= w.dims[k];
      const out = new Float32Array(codes.length);
      for (let i = 0; i < codes.length; i++) {
        const c = p.scale.length === 1 ? 0 : Math.floor(i / inner) % w.dims[w.axis];
        out[i] = Math.fround((codes[i] - p.zeroPoint[c]) * p.scale[c]);
        if (codes[i] !== nearest[i]) flipped++;
        const h = 1 / (1 + Math.exp(-v[i])) * 1.2 - 0.1;
        if (h > 0 && h < 1) undecided++;
      }
      total += codes.length;
      values.set(w.tensor, out);
    }
    return {
      values,
      mseNearest,
      mseRounded,
      flipped: flipped / total,
      undecided: undecided / total,
      curve,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    await gs.release();
  }
}

/**
 * Round every planned Conv/Gemm/MatMul weight of a calibrated state by block reconstruction (see the module doc).
 *
 * @example
 * ```ts ignore
 * const { values, fits, details } = await brecqState(state, batches, { preset: "small" }, ctx);
 * ```
 */
export async function brecqState(
  state: PtqState,
  batches: readonly InputFeeds[],
  options: BrecqOptions,
  ctx: Pick<PassContext, "session" | "progress">,
): Promise<{ values: Map<string, Float32Array>; fits: Map<string, FittedWeights>; details: BrecqDetails }> {
  const o = resolve(options);
  const plan = state.plan;
  if (!plan) throw new QuantlabError("NOT_CALIBRATED", `${state.source.source}: BRECQ needs a plan`);
  const float = state.model;
  const g = float.graph;
  const inits = indexGraph(g).initializers;
  const labelOf = new Map(g.node.map((n, i) => [n.name || `${n.opType}#${i}`, { n, i }]));
  const fitted = fitPlannedWeights(state);
  const skipped: { weight: string; reason: string }[] = [];
  type Target = { entry: (typeof plan.weights)[number]; node: NodeProto; index: number; fit: FittedWeights };
  const targets: Target[] = [];
  for (const e of plan.weights) {
    const found = labelOf.get(e.node);
    const f = fitted.get(e.tensor)!;
    const reason = !found
      ? "node not found"
      : !["Conv", "Gemm", "MatMul"].includes(e.opType)
      ? `${e.opType} is not rounded`
      : !f.affine || f.affine.granularity.kind === "group"
      ? `${f.kind} quantizer${f.affine ? " per group" : ""} (needs a uniform per-tensor/per-channel grid)`
      : state.weightFits.has(e.tensor) && state.weightValues.has(e.tensor)
      ? "already rounded by an earlier pass"
      : found.n.opType === "Gemm" && found.n.attribute.some((a) => a.name === "transA" && Number(a.i) !== 0)
      ? "Gemm with transA"
      : found.n.input[1] !== e.tensor
      ? "weight is not the node's second input"
      : undefined;
    if (reason) skipped.push({ weight: e.tensor, reason });
    else targets.push({ entry: e, node: found!.n, index: found!.i, fit: f });
  }
  targets.sort((a, b) => a.index - b.index);
  // Units in graph order: a residual block (once, at its first rounded layer) or a single layer.
  const blocks = o.blocks ? residualBlocks(float) : [];
  type Unit = { kind: "block" | "layer"; label: string; nodes: number[]; input: string; output: string; t: Target[] };
  const units: Unit[] = [];
  const unitOfBlock = new Map<ResidualBlock, Unit>();
  for (const tg of targets) {
    const b = blocks.find((bl) => bl.nodes.includes(tg.index));
    if (b) {
      let u = unitOfBlock.get(b);
      if (!u) {
        u = { kind: "block", label: b.label, nodes: [...b.nodes], input: b.input, output: b.output, t: [] };
        unitOfBlock.set(b, u);
        units.push(u);
      }
      u.t.push(tg);
    } else {
      const act = followingActivation(float, tg.node);
      const out = reconstructionTarget(float, tg.node, act);
      const nodes = [tg.index];
      if (act) nodes.push(g.node.findIndex((m) => m.output[0] === out));
      units.push({ kind: "layer", label: tg.entry.node, nodes, input: tg.node.input[0], output: out, t: [tg] });
    }
  }
  const values = new Map(state.weightValues);
  const fits = new Map(state.weightFits);
  const floatValue = (t: string) => state.weightValues.get(t) ?? (tensorValues(inits.get(t)!) as Float32Array);
  const quantizedValue = (t: string, dims: readonly number[]): Float32Array => {
    const f = fits.get(t) ?? fitted.get(t)!;
    return f.fakeQuantize(new Tensor<"float32">(values.get(t) ?? floatValue(t), dims, t)).data;
  };
  const weightQuantized = (): OnnxModel => {
    const m = float.clone();
    for (const e of plan.weights) {
      const t = inits.get(e.tensor);
      if (!t) continue;
      const k = m.graph.initializer.findIndex((x) => x.name === e.tensor);
      m.graph.initializer[k] = makeTensorProto(e.tensor, quantizedValue(e.tensor, t.dims), t.dims);
    }
    return m;
  };
  const planned = new Set(plan.weights.map((e) => e.tensor));
  const records: BrecqUnitRecord[] = [];
  for (let k = 0; k < units.length; k++) {
    const u = units[k];
    ctx.progress(`BRECQ ${u.kind} ${u.label} (${k + 1}/${units.length})`, k / units.length);
    const rounded = new Set(u.t.map((x) => x.entry.tensor));
    const nodes = u.nodes.map((i) => g.node[i]);
    const constants: TensorProto[] = [];
    const seen = new Set<string>();
    for (const n of nodes) {
      for (const x of n.input) {
        const t = inits.get(x);
        if (!t || rounded.has(x) || seen.has(x)) continue;
        seen.add(x);
        // Planned weights outside this unit's rounding enter quantized (nearest, or as an earlier pass left them).
        constants.push(planned.has(x) ? makeTensorProto(x, quantizedValue(x, t.dims), t.dims) : t);
      }
    }
    const weights = u.t.map((x) => {
      const dims = inits.get(x.entry.tensor)!.dims;
      const { base, fraction } = splitWeights(floatValue(x.entry.tensor), dims, x.entry.axis, x.fit.affine!);
      return { tensor: x.entry.tensor, dims, axis: x.entry.axis, params: x.fit.affine!, base, fraction };
    });
    const block: RoundingBlock = {
      label: u.label,
      nodes,
      constants,
      input: u.input,
      output: u.output,
      weights,
      channelAxis: u.kind === "layer" && u.t[0].node.opType === "MatMul" ? -1 : 1,
    };
    let x: CachedActivations;
    if (o.inputs === "qdq") {
      // The unit's input as its first node reads it in the QDQ model (after DequantizeLinear when quantized).
      const q = materializeQdq({ ...state, weightFits: fits, weightValues: values });
      const first = nodes.find((n) => n.input.includes(u.input))!;
      const qn = q.model.graph.node.find((n) => n.name === first.name);
      if (!qn) throw new QuantlabError("MALFORMED_MODEL", `BRECQ: ${first.name} is missing from the QDQ model`);
      x = await cacheActivations(q.model, qn.input[first.input.indexOf(u.input)], batches, ctx.session);
    } else {
      x = await cacheActivations(o.inputs === "float" ? float : weightQuantized(), u.input, batches, ctx.session);
    }
    const t = await cacheActivations(float, u.output, batches, ctx.session);
    const r = await roundBlock(block, x, t, {
      iterations: o.iterations,
      batchSize: o.batchSize,
      regWeight: o.regWeight,
      betaRange: o.betaRange,
      warmup: o.warmup,
      lr: o.lr,
      seed: o.seed + k,
      curveEvery: o.curveEvery,
      evalCount: 256,
      session: ctx.session,
    });
    for (const tg of u.t) {
      values.set(tg.entry.tensor, r.values.get(tg.entry.tensor)!);
      fits.set(tg.entry.tensor, tg.fit);
    }
    records.push({
      kind: u.kind,
      label: u.label,
      layers: u.t.map((x) => x.entry.node),
      input: u.input,
      output: u.output,
      mseNearest: r.mseNearest,
      mseRounded: r.mseRounded,
      flipped: r.flipped,
      undecided: r.undecided,
      curve: r.curve,
      seconds: r.seconds,
    });
  }
  ctx.progress("BRECQ done", 1);
  return { values, fits, details: { settings: { ...o, evalCount: 256 }, units: records, skipped } };
}

/**
 * The BRECQ block-reconstruction pass (stage `calibrated`; see the module doc).
 *
 * @example
 * ```ts
 * import { brecq } from "./brecq.ts";
 * const p = brecq({ preset: "small" });
 * if (p.stage !== "calibrated" || !p.toString().includes("iterations=2000")) throw new Error(p.toString());
 * ```
 */
export function brecq(options: BrecqOptions = {}): PtqPass {
  const o = resolve(options);
  const text = `brecq(preset=${o.preset}, iterations=${o.iterations}, batch=${o.batchSize}, samples=${o.samples}, ` +
    `reg=${o.regWeight}, b=${o.betaRange[0]}->${o.betaRange[1]} linear, warmup=${o.warmup}, lr=${o.lr}, ` +
    `seed=${o.seed}, inputs=${o.inputs}, blocks=${o.blocks})`;
  return {
    name: "brecq",
    stage: "calibrated",
    run(state: PtqState, ctx: PassContext): Promise<PtqState> {
      return timedPass("brecq", state, async () => {
        if (!ctx.data) {
          throw new QuantlabError("NOT_CALIBRATED", `${state.source.source}: BRECQ needs calibrateOn(data)`);
        }
        const inputs = [...indexGraph(state.model.graph).inputs];
        const batches: InputFeeds[] = [];
        for await (const f of limitedBatches(ctx.data, inputs, o.samples, state.model.source)) batches.push(f);
        if (!batches.length) throw new QuantlabError("EMPTY_TENSOR", `${state.source.source}: BRECQ data is empty`);
        const r = await brecqState(state, batches, options, ctx);
        const nb = r.details.units.filter((u) => u.kind === "block").length;
        const before = r.details.units.reduce((a, u) => a + u.mseNearest, 0);
        const after = r.details.units.reduce((a, u) => a + u.mseRounded, 0);
        return {
          patch: { weightValues: r.values, weightFits: r.fits },
          summary: `${nb} blocks and ${r.details.units.length - nb} layers reconstructed (${o.iterations} ` +
            `iterations each); summed reconstruction error ${before.toPrecision(3)} -> ${after.toPrecision(3)}`,
          details: r.details,
        };
      });
    },
    toString: () => text,
  };
}

registerPass("brecq", (o) => brecq(o as BrecqOptions));
