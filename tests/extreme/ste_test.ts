import assert from "node:assert";
import { binaryGradient, ttqGradient, twnGradient, xnorGradient } from "../../lib/extreme/ste.ts";
import { binary } from "../../lib/extreme/binary.ts";
import { ternary } from "../../lib/extreme/ternary.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { loadFixture, type TtqCase } from "../nonuniform/helpers.ts";

const fx = loadFixture().ste;
const w = Float32Array.from(fx.w), g = Float32Array.from(fx.g);

function near(a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = 1e-6): void {
  assert.strictEqual(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= tol * Math.max(1, Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

Deno.test("BinaryConnect STE matches PyTorch autograd of a |w| <= 1 sign STE; the mask is right", () => {
  near(binaryGradient(w, g), fx.binary_grad, "binary");
  const m = binaryGradient(new Float32Array([1, -1, 1.0001, -3, 0]), new Float32Array([1, 2, 3, 4, 5]));
  assert.deepStrictEqual(Array.from(m), [1, 2, 0, 0, 5]);
  assert.deepStrictEqual(Array.from(binaryGradient(new Float32Array([1.5]), new Float32Array([2]), 2)), [2]);
  // the fitted recipe picks the same rule
  near(binary().fit(w).gradient(Tensor.from(w, fx.shape), g), fx.binary_grad, "fitted binary");
});

Deno.test("XNOR-Net gradient matches PyTorch autograd of alpha(W) * signSTE(W), per channel and per tensor", () => {
  near(xnorGradient(w, g, { shape: fx.shape, axis: 0 }), fx.xnor_channel_grad, "xnor channel");
  near(xnorGradient(w, g), fx.xnor_tensor_grad, "xnor tensor");
  near(binary().xnor().fit(w, fx.shape).gradient(Tensor.from(w, fx.shape), g), fx.xnor_channel_grad, "fitted xnor");
  // it differs from the plain STE (the alpha term matters)
  const plain = binaryGradient(w, g);
  assert.ok(plain.some((v, i) => Math.abs(v - fx.xnor_channel_grad[i]) > 1e-3));
});

function checkTtq(c: TtqCase, perChannel: boolean): void {
  const q = perChannel ? ternary().ttq().perChannel(0) : ternary().ttq();
  const f = q.fit(w, fx.shape);
  near(f.thresholds, c.delta, "delta", 1e-7);
  near(f.positiveScale, c.wp, "Wp", 1e-7);
  near(f.negativeScale, c.wn, "Wn", 1e-7);
  near(f.fakeQuantize(w, fx.shape).data, c.values, "values");
  const r = f.gradient(Tensor.from(w, fx.shape), g);
  near(r.weights, c.grad_w, "grad w");
  near(r.positiveScale, c.grad_wp, "grad Wp");
  near(r.negativeScale, c.grad_wn, "grad Wn");
  const direct = ttqGradient(
    w,
    g,
    f.thresholds,
    f.positiveScale,
    f.negativeScale,
    perChannel ? { shape: fx.shape } : undefined,
  );
  assert.deepStrictEqual(direct.weights, r.weights);
}

Deno.test("TTQ gradients match PyTorch autograd of the authors' ternarization graph", () => {
  checkTtq(fx.ttq_tensor, false);
  checkTtq(fx.ttq_channel, true);
  // by hand: scaled STE on the three sets, Wp / Wn sums with the sign of -Wn
  const r = ttqGradient(new Float32Array([0.5, -0.05, -0.6, 0.2]), new Float32Array([1, 2, 3, 4]), [0.1], [2], [3]);
  assert.deepStrictEqual(Array.from(r.weights), [2, 2, 9, 8]);
  assert.deepStrictEqual([r.positiveScale[0], r.negativeScale[0]], [5, -3]);
});

Deno.test("TWN STE is the identity (optionally clipped); shape errors are typed", () => {
  assert.deepStrictEqual(twnGradient(w, g), g);
  assert.notStrictEqual(twnGradient(w, g), g);
  assert.deepStrictEqual(Array.from(twnGradient(new Float32Array([0.5, 2]), new Float32Array([1, 1]), 1)), [1, 0]);
  const tw = ternary().fit(w).gradient(Tensor.from(w), g);
  assert.deepStrictEqual(tw.weights, g);
  assert.deepStrictEqual(Array.from(tw.positiveScale), [0]);
  const bad = (fn: () => unknown, code: string) => assert.throws(fn, (e: Error & { code?: string }) => e.code === code);
  bad(() => binaryGradient(w, new Float32Array(3)), "SHAPE_MISMATCH");
  bad(() => binaryGradient(w, g, 0), "INVALID_ARGUMENT");
  bad(() => xnorGradient(w, g, { shape: [5, 5] }), "SHAPE_MISMATCH");
  bad(() => xnorGradient(w, g, { shape: [4, 6], axis: 2 }), "AXIS_OUT_OF_RANGE");
  bad(() => ttqGradient(w, g, [0.1, 0.2], [1], [1]), "SHAPE_MISMATCH");
});
