/**
 * BatchNorm folded with batch statistics (lib/qat/bn_fold.ts, Jacob et al. 2018): the QAT training graph's loss,
 * batch statistics and gradients (unfolded weights, BN scale and shift, LSQ steps) against PyTorch autograd on a
 * tiny conv + BN net at W4A8 (fixture: tests/fixtures/make_qat_fixtures.py, second part); running-statistics
 * updates and the fold back.
 */
import assert from "node:assert/strict";
import { crossEntropyLoss } from "../../lib/grad/losses.ts";
import { GradientSession } from "../../lib/grad/session.ts";
import { foldBatchNorm } from "../../lib/onnx/fold_bn.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { initialState, type PtqState } from "../../lib/ptq/pass.ts";
import { buildPlan } from "../../lib/ptq/policy.ts";
import type { QuantParams } from "../../lib/quant/params.ts";
import { quantizer, UniformWeights } from "../../lib/quant/quantizer.ts";
import { tensorValues } from "../../lib/onnx/tensor_data.ts";
import { indexGraph } from "../../lib/onnx/graph.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { buildQatGraph, qat } from "../../lib/qat/qat.ts";
import { foldRunning, updateRunningStatistics } from "../../lib/qat/bn_fold.ts";
import { b64f32 } from "../onnx/_fixtures.ts";

const FIX = JSON.parse(await Deno.readTextFile(new URL("../fixtures/qat_bn_fixtures.json", import.meta.url)));
const MODEL = new URL("../fixtures/models/qat_tiny_bn.onnx", import.meta.url);
const WEB = { backend: "web" as const, threads: 1 };
const LAYERS = ["c1", "c2", "fc"];

async function fixtureState(): Promise<PtqState> {
  const source = await OnnxModel.load(MODEL);
  const model = foldBatchNorm(source).model;
  const wq = quantizer().int(4).symmetric().perChannel();
  const plan = buildPlan(model, {
    weights: wq,
    activations: quantizer().uint(8).asymmetric(),
    placement: "weight-inputs",
  });
  const scales = new Map<string, number>(
    (FIX.layerInputs as string[]).map((t, i) => [t, FIX.activationScales[i] as number]),
  );
  const activationParams = new Map<string, QuantParams>();
  for (const e of plan.activations) {
    const sharer = plan.activations.find((a) => a.sharesWith === e.tensor)?.tensor ?? "";
    const s = scales.get(e.tensor) ?? scales.get(e.sharesWith ?? "") ?? scales.get(sharer);
    assert.ok(s !== undefined, `no fixture scale for planned activation ${e.tensor}`);
    activationParams.set(e.tensor, {
      bits: 8,
      signed: false,
      symmetric: false,
      range: "full",
      qmin: 0,
      qmax: 255,
      scale: new Float32Array([s]),
      zeroPoint: new Int32Array([0]),
      granularity: { kind: "tensor" },
    });
  }
  const inits = indexGraph(model.graph).initializers;
  const weightFits = new Map();
  assert.equal(plan.weights.length, 3);
  plan.weights.forEach((e, i) => {
    const t = inits.get(e.tensor)!;
    const w = new Tensor<"float32">(tensorValues(t) as Float32Array, t.dims, e.tensor);
    const f = wq.fitWeights(w, { axis: e.axis, name: e.tensor }) as UniformWeights;
    assert.deepStrictEqual([f.affine.qmin, f.affine.qmax], [-7, 7], "the fixture's STE grid");
    weightFits.set(
      e.tensor,
      new UniformWeights(f.config, { ...f.affine, scale: b64f32(FIX.weightScales[LAYERS[i]]) }, w, e.tensor),
    );
  });
  return { ...initialState(source), model, plan, activationParams, weightFits };
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-12);
}

/** Relative L2 error. */
function l2Err(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-24));
}

for (const kind of ["bn_ste", "bn_lsq"] as const) {
  Deno.test(`QAT folded BN with batch statistics (${kind}): loss, batch stats and gradients match PyTorch`, async () => {
    const state = await fixtureState();
    const ref = FIX.recipes[kind];
    const x = new Tensor<"float32">(b64f32(FIX.input), FIX.shape);
    const labels = new Tensor(Int32Array.from(FIX.labels as number[]), [FIX.labels.length]);
    const lsq = kind === "bn_lsq";
    const recipe = {
      ...qat(state.model).recipe,
      weights: lsq ? "lsq" as const : "ste" as const,
      activations: lsq ? "lsq" as const : "ste" as const,
    };
    const g = await buildQatGraph(state, recipe, {
      loss: crossEntropyLoss("logits", "labels"),
      feeds: { input: x, labels },
      session: WEB,
      batchStatistics: true,
      keep: ["logits", "/Flatten_output_0"],
    });
    assert.equal(g.folds.length, 2);
    const gs = await GradientSession.create(g.graph, WEB);
    const r = await gs.run({ input: x, labels }, g.params);
    await gs.release();
    assert.ok(Math.abs(r.loss - ref.loss) < 1e-5, `loss ${r.loss} vs ${ref.loss}`);
    const fails: string[] = [], seen = new Set<string>();
    const check = (what: string, ours: ArrayLike<number> | undefined, theirs: Float32Array, tol: number) => {
      assert.ok(ours, `no value for ${what}`);
      const e = relErr(ours, theirs);
      if (!(e < tol)) {
        fails.push(
          `${what} max ${e.toExponential(1)} l2 ${l2Err(ours, theirs).toExponential(1)} off ${
            Array.from(theirs).filter((t, i) => Math.abs(ours[i] - t) > 1e-4 * Math.max(1e-3, Math.abs(t))).length
          }/${theirs.length}`,
        );
      }
    };
    check("logits", r.outputs.logits.data as Float32Array, b64f32(ref.logits), 1e-5);
    check("fcInput", r.outputs["/Flatten_output_0"].data as Float32Array, b64f32(ref.fcInput), 1e-5);
    g.folds.forEach((f, i) => {
      const k = LAYERS[i];
      check(`batchMean ${k}`, r.outputs[f.batchMean].data as Float32Array, b64f32(ref.batchMean[k]), 1e-5);
      check(`batchVar ${k}`, r.outputs[f.batchVar].data as Float32Array, b64f32(ref.batchVar[k]), 1e-5);
      for (const [part, name] of [["raw", f.raw], ["gamma", f.gamma], ["beta", f.beta]]) {
        check(`${k}.${part}`, r.grads.get(name), b64f32(ref.grads[`${k}.${part}`]), 2e-4);
        seen.add(name);
      }
    });
    const fcW = state.plan!.weights[2].tensor, fcB = state.model.graph.node.find((n) => n.input[1] === fcW)!.input[2];
    check("fc.weight", r.grads.get(fcW), b64f32(ref.grads["fc.weight"]), 2e-4);
    check("fc.bias", r.grads.get(fcB), b64f32(ref.grads["fc.bias"]), 2e-4);
    seen.add(fcW).add(fcB);
    if (lsq) {
      state.plan!.weights.forEach((e, i) => {
        const p = g.trainable.quantizerParams.get(e.tensor)!.param;
        check(`step ${LAYERS[i]}`, r.grads.get(p), b64f32(ref.grads[`step:${LAYERS[i]}`]), 2e-4);
        seen.add(p);
      });
      (FIX.layerInputs as string[]).forEach((t, i) => {
        const e = state.plan!.activations.find((a) => a.tensor === t || a.sharesWith === t)!;
        const p = g.trainable.quantizerParams.get(e.tensor)!.param;
        check(`act ${t}`, r.grads.get(p), b64f32(ref.grads[`act:${i}`]), 2e-4);
        seen.add(p);
      });
    }
    assert.deepStrictEqual(fails, [], fails.join("; "));
    // Every learnable tensor was checked (the folded weights and biases are replaced by the unfolded ones).
    assert.deepStrictEqual([...g.learnable].sort(), [...seen].sort());
  });
}

Deno.test("batch-statistics folds: running statistics update as PyTorch's BN; folding back reproduces the start", async () => {
  const state = await fixtureState();
  const x = new Tensor<"float32">(b64f32(FIX.input), FIX.shape);
  const labels = new Tensor(Int32Array.from(FIX.labels as number[]), [FIX.labels.length]);
  const g = await buildQatGraph(state, qat(state.model).recipe, {
    loss: crossEntropyLoss("logits", "labels"),
    feeds: { input: x, labels },
    session: WEB,
    batchStatistics: true,
  });
  // Before any step, folding the unfolded parameters with the running statistics gives the state's folded tensors.
  const back = foldRunning(g.folds, g.params);
  const inits = indexGraph(state.model.graph).initializers;
  for (const [name, v] of back) {
    assert.ok(relErr(v, tensorValues(inits.get(name)!) as Float32Array) < 1e-5, name);
  }
  const f = g.folds[0];
  const rm = f.runningMean.slice(), rv = f.runningVar.slice();
  const gs = await GradientSession.create(g.graph, WEB);
  const r = await gs.run({ input: x, labels }, g.params);
  await gs.release();
  updateRunningStatistics(g.folds, r.outputs, (i) => x.shape[0] * g.foldSpatial[i]);
  const mu = b64f32(FIX.recipes.bn_ste.batchMean.c1), v = b64f32(FIX.recipes.bn_ste.batchVar.c1);
  const n = 6 * 36; // batch 6, 6x6 output of c1
  assert.equal(g.foldSpatial[0], 36);
  for (let c = 0; c < mu.length; c++) {
    assert.ok(Math.abs(f.runningMean[c] - (0.9 * rm[c] + 0.1 * mu[c])) < 1e-6);
    assert.ok(Math.abs(f.runningVar[c] - (0.9 * rv[c] + 0.1 * v[c] * n / (n - 1))) < 1e-6);
  }
});
