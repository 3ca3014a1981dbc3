/**
 * Issue 15, case 2: finite input that overflows ends in a typed NON_FINITE error naming the tensor or node, never
 * in silent NaN/Inf (scale computation, dequantization, BatchNorm folding, optimizer steps).
 */
import assert from "node:assert/strict";
import { QuantlabError } from "../../lib/errors.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { paramsFromRange } from "../../lib/quant/params.ts";
import { dequantizeTensor, fakeQuantizeTensor } from "../../lib/quant/affine.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { foldBatchNorm } from "../../lib/onnx/fold_bn.ts";
import { digitsCnn } from "../../lib/models/digits_cnn.ts";
import { makeTensorProto, tensorValues } from "../../lib/onnx/tensor_data.ts";
import { adam, adamw, sgd } from "../../lib/grad/optim.ts";

const nonFinite = (re?: RegExp) => (e: unknown) =>
  e instanceof QuantlabError && e.code === "NON_FINITE" && (!re || re.test(e.message));

const F32_MAX = 3.4028234663852886e38;

Deno.test("asymmetric 8-bit fake quantization of [3e38, -3e38, 0] is NON_FINITE, not scale Infinity", () => {
  const x = new Float32Array([3e38, -3e38, 0]);
  assert.throws(() => quantizer().uint(8).asymmetric().fakeQuantize(x, [3], "w"), nonFinite(/w: slot 0/));
  assert.throws(
    () =>
      paramsFromRange([-3e38], [3e38], { bits: 8, signed: false, symmetric: false, range: "full" }, {
        kind: "tensor",
      }, "act"),
    nonFinite(/act/),
  );
});

Deno.test("symmetric int8 of float32 max is NON_FINITE (the lowest code would dequantize to -Infinity)", () => {
  const x = new Float32Array([F32_MAX, -F32_MAX, 0]);
  assert.throws(() => quantizer().int(8).symmetric().fakeQuantize(x, [3], "w"), nonFinite(/w/));
  // A range that fits stays exact.
  const ok = quantizer().int(8).symmetric().fakeQuantize(new Float32Array([3e38, -3e38, 0]), [3], "w");
  assert.ok([...ok.values.data].every(Number.isFinite));
});

Deno.test("dequantization with parameters whose grid overflows float32 is NON_FINITE", () => {
  const p = {
    bits: 8,
    signed: true,
    symmetric: true,
    range: "full" as const,
    qmin: -128,
    qmax: 127,
    scale: new Float32Array([3e36]),
    zeroPoint: new Int32Array([0]),
    granularity: { kind: "tensor" as const },
  };
  const codes = new Tensor(new Int8Array([-128, 0, 127]), [3]);
  assert.throws(() => dequantizeTensor(codes, p, { name: "codes of w" }), nonFinite(/codes of w/));
  assert.throws(() => fakeQuantizeTensor(new Tensor(new Float32Array([1, 2, 3]), [3]), p), nonFinite());
  const nan = { ...p, scale: new Float32Array([NaN]) };
  assert.throws(() => dequantizeTensor(codes, nan), nonFinite());
});

function withStat(name: string, edit: (v: Float32Array) => void, m = digitsCnn()) {
  const g = m.graph;
  const i = g.initializer.findIndex((t) => t.name === name);
  const v = (tensorValues(g.initializer[i]) as Float32Array).slice();
  edit(v);
  g.initializer[i] = makeTensorProto(name, v, g.initializer[i].dims);
  return m;
}

Deno.test("BatchNorm folding: negative running variance or NaN mean is NON_FINITE naming the node", () => {
  assert.throws(() => foldBatchNorm(withStat("bn1.running_var", (v) => (v[3] = -1))), nonFinite(/bn1\.running_var/));
  assert.throws(() => foldBatchNorm(withStat("bn1.running_mean", (v) => (v[0] = NaN))), nonFinite(/running mean/));
  // Finite statistics that overflow the folded weights.
  const tiny = withStat("bn1.running_var", (v) => (v[0] = 0));
  assert.throws(() => foldBatchNorm(withStat("bn1.running_mean", (v) => (v[0] = 3e38), tiny)), nonFinite(/overflow/));
  // Healthy statistics still fold.
  assert.ok(foldBatchNorm(digitsCnn()).folded.length > 0);
});

Deno.test("optimizer steps: a NaN gradient or an overflowing update is NON_FINITE and changes nothing", () => {
  for (const make of [() => adam({ lr: 0.1 }), () => adamw({ lr: 0.1 }), () => sgd({ lr: 0.1, momentum: 0.9 })]) {
    const opt = make();
    const p = new Float32Array([1, 2]), q = new Float32Array([3]);
    const params = new Map([["q", q], ["p", p]]);
    opt.step(params, new Map([["p", new Float32Array([0.1, 0.1])], ["q", new Float32Array([0.1])]]));
    const before = [p.slice(), q.slice(), opt.stateOf("p"), opt.steps] as const;
    assert.throws(
      () => opt.step(params, new Map([["q", new Float32Array([0.5])], ["p", new Float32Array([NaN, 0])]])),
      nonFinite(/"p"/),
      opt.kind,
    );
    assert.deepStrictEqual([p.slice(), q.slice(), opt.stateOf("p"), opt.steps], [...before], `${opt.kind} changed`);
    if (opt.kind === "sgd") continue; // SGD's overflow case is below
    assert.throws(
      () => opt.step(params, new Map([["p", new Float32Array([3e38, 0])], ["q", new Float32Array([0])]])),
      nonFinite(/"p"/),
      opt.kind,
    );
    assert.deepStrictEqual([p.slice(), q.slice(), opt.stateOf("p"), opt.steps], [...before], `${opt.kind} changed`);
  }
  const plain = sgd({ lr: 1 });
  const w = new Float32Array([F32_MAX]);
  assert.throws(() => plain.step(new Map([["w", w]]), new Map([["w", new Float32Array([-F32_MAX])]])), nonFinite());
  assert.equal(w[0], Math.fround(F32_MAX));
});
