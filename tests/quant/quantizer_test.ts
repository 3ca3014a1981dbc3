import assert from "node:assert/strict";
import { QuantlabError } from "../../lib/errors.ts";
import { minMax } from "../../lib/quant/calibrate/min_max.ts";
import type { Calibrator } from "../../lib/quant/calibrate/observer.ts";
import { fakeQuantizeTensor } from "../../lib/quant/affine.ts";
import { paramsFromRange } from "../../lib/quant/params.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";

function throwsCode(fn: () => unknown, code: string, mention?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof QuantlabError, `expected QuantlabError, got ${e}`);
    assert.equal(e.code, code, e.message);
    if (mention) assert.ok(e.message.includes(mention), `"${e.message}" should mention ${mention}`);
    return true;
  });
}

/** The min-max calibrator under another name: forces the streaming observer path. */
function observerMinMax(): Calibrator {
  const inner = minMax();
  return { name: "minmax-via-observer", create: (ctx) => inner.create(ctx), toString: () => "observerMinMax()" };
}

const W = new Prng(42).fillNormal(new Float32Array(8 * 12), 0, 0.3) as Float32Array;

Deno.test("builders are immutable, validate eagerly and print readably", () => {
  const a = quantizer();
  const b = a.int(4).symmetric("full").perChannel(1);
  assert.equal(a.config.bits, 8);
  assert.equal(b.config.bits, 4);
  assert.equal(
    a.toString(),
    "quantizer(int8, symmetric(restricted), per-tensor, rounding=nearest-even, static(minMax()))",
  );
  assert.equal(
    b.uint(3).asymmetric().perGroup(4).rounding("stochastic", { seed: 7 }).dynamic("row").toString(),
    "quantizer(uint3, asymmetric, per-group(size 4, axis -1), rounding=stochastic(seed 7), dynamic(row))",
  );
  assert.ok(Object.isFrozen(b.config));
  for (const bits of [1, 17, 2.5]) {
    throwsCode(() => quantizer().int(bits), "BITS_OUT_OF_RANGE", "bits");
    throwsCode(() => quantizer().uint(bits), "BITS_OUT_OF_RANGE", "bits");
  }
  throwsCode(() => quantizer().perChannel(0.5), "AXIS_OUT_OF_RANGE");
  throwsCode(() => quantizer().perGroup(0), "GROUP_SIZE");
  throwsCode(() => quantizer().rounding("round" as "floor"), "INVALID_ARGUMENT");
  throwsCode(() => quantizer().symmetric("half" as "full"), "INVALID_ARGUMENT");
  throwsCode(() => quantizer().dynamic("col" as "row"), "INVALID_ARGUMENT");
});

Deno.test("perChannel fit + fakeQuantize: the one-pass min-max path equals the streaming observer path", () => {
  for (
    const b of [
      quantizer().int(8).symmetric().perChannel(0),
      quantizer().int(4).symmetric("full").perChannel(1),
      quantizer().uint(5).asymmetric().perChannel(-1),
      quantizer().int(3).asymmetric().perTensor(),
    ]
  ) {
    const fast = b.fit(W, [8, 12]);
    const slow = b.calibrate(observerMinMax()).fit(W, [8, 12]);
    assert.deepEqual(fast.params.scale, slow.params.scale);
    assert.deepEqual(fast.params.zeroPoint, slow.params.zeroPoint);
    const y = fast.fakeQuantize(W, [8, 12]).values;
    assert.deepEqual(y.data, b.fakeQuantize(W, [8, 12]).values.data);
    assert.deepEqual(y.data, fakeQuantizeTensor(Tensor.from(W, [8, 12]), fast.params).data);
  }
  // several batches stream through the observer: the union of their ranges
  const q = quantizer().int(8).perChannel(0);
  const two = q.fit([Tensor.from(W.subarray(0, 48), [4, 12]), Tensor.from(W.subarray(48), [4, 12])]);
  const lo = new Float64Array(4).fill(Infinity), hi = new Float64Array(4).fill(-Infinity);
  for (let i = 0; i < 96; i++) {
    const c = Math.floor(i / 12) % 4;
    lo[c] = Math.min(lo[c], W[i]);
    hi[c] = Math.max(hi[c], W[i]);
  }
  const want = paramsFromRange(lo, hi, q.config, { kind: "channel", axis: 0 });
  assert.deepEqual(two.params.scale, want.scale);
});

Deno.test("per-group fit follows the ONNX blocked layout", () => {
  const fq = quantizer().int(4).perGroup(4).fit(W, [8, 12]);
  assert.equal(fq.params.scale.length, 8 * 3);
  // slot (r, g) covers W[r, 4g .. 4g+3]
  for (let r = 0; r < 8; r++) {
    for (let g = 0; g < 3; g++) {
      let m = 0;
      for (let k = 0; k < 4; k++) m = Math.max(m, Math.abs(W[r * 12 + g * 4 + k]));
      assert.equal(fq.params.scale[r * 3 + g], Math.fround(m / 7));
    }
  }
  const along0 = quantizer().int(4).perGroup(2, 0).fit(W, [8, 12]);
  assert.equal(along0.params.scale.length, 4 * 12);
  throwsCode(() => quantizer().perGroup(5).fit(W, [8, 12], "blk"), "GROUP_SIZE", "blk");
  throwsCode(
    () => quantizer().perGroup(4).fit([Tensor.from(W, [8, 12]), Tensor.from(W, [8, 12])], undefined, "blk"),
    "UNSUPPORTED",
    "blk",
  );
});

Deno.test("dynamic quantization: per tensor and per row of the last axis, computed at call time", () => {
  const x = Tensor.from([1, -2, 0.5, 4, 0.25, -0.5], [2, 3]);
  const dt = quantizer().int(8).dynamic("tensor").paramsFor(x);
  assert.equal(dt.scale.length, 1);
  assert.equal(dt.scale[0], Math.fround(4 / 127));
  const dr = quantizer().int(8).dynamic("row").paramsFor(x);
  assert.deepEqual(Array.from(dr.scale), [Math.fround(2 / 127), Math.fround(4 / 127)]);
  const r = quantizer().uint(8).asymmetric().dynamic("row").fakeQuantize(x);
  assert.equal(r.params.scale.length, 2);
  assert.ok(Object.is(quantizer().uint(8).asymmetric().dynamic("row").fakeQuantize([0, 3, -1]).values.data[0], 0));
  // dynamic results change with the input; static ones do not
  const other = quantizer().int(8).dynamic("tensor").fakeQuantize([8, 1]);
  assert.equal(other.params.scale[0], Math.fround(8 / 127));
  throwsCode(
    () => quantizer().dynamic("row").paramsFor(new Tensor(new Float32Array(1), []), undefined, "h"),
    "AXIS_OUT_OF_RANGE",
    "h",
  );
});

Deno.test("quantize / dequantize through a fitted quantizer: dtypes and round trip", () => {
  const fq = quantizer().uint(8).asymmetric().fit([0, 1, 2, 3]);
  const { codes } = fq.quantize([0, 3, 1.5]);
  assert.equal(codes.dtype, "uint8");
  assert.deepEqual(codes.toArray(), [0, 255, 128]);
  const back = fq.dequantize(codes);
  assert.deepEqual(Array.from(back.data), Array.from(fq.fakeQuantize([0, 3, 1.5]).values.data));
  assert.equal(quantizer().int(4).quantize([1, -1]).codes.dtype, "int8");
  assert.equal(quantizer().int(12).quantize([1, -1]).codes.dtype, "int32");
  assert.match(fq.toString(), /scale=\[0\.01176\] zeroPoint=\[0\]/);
  const display = (fq as unknown as Record<symbol, () => Record<string, string>>)[Symbol.for("Jupyter.display")];
  assert.equal(display.call(fq)["text/plain"], fq.toString());
});

Deno.test("stochastic rounding through the builder is seeded", () => {
  const q = quantizer().int(3).rounding("stochastic", { seed: 11 });
  const a = q.fakeQuantize(W).values.data, b = q.fakeQuantize(W).values.data;
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, q.rounding("stochastic", { seed: 12 }).fakeQuantize(W).values.data);
  throwsCode(() => quantizer().rounding("stochastic", { seed: 0.5 }), "INVALID_ARGUMENT");
});

Deno.test("bad input through the builder names the tensor", () => {
  const x = W.slice();
  x[17] = NaN;
  for (const b of [quantizer(), quantizer().perChannel(0), quantizer().perGroup(4), quantizer().dynamic("row")]) {
    throwsCode(() => b.fakeQuantize(x, [8, 12], "fc2.weight"), "NON_FINITE", "fc2.weight");
  }
  x[17] = -Infinity;
  throwsCode(() => quantizer().perChannel(1).fit(x, [8, 12], "fc2.weight"), "NON_FINITE", "fc2.weight");
  throwsCode(() => quantizer().calibrate(observerMinMax()).fit(x, [8, 12], "fc2.weight"), "NON_FINITE", "fc2.weight");
  throwsCode(() => quantizer().fit([], undefined, "emb"), "EMPTY_TENSOR", "emb");
  throwsCode(() => quantizer().perChannel(0).fit(new Float32Array(0), [0, 3], "emb"), "EMPTY_TENSOR", "emb");
  throwsCode(() => quantizer().perChannel(2).fit(W, [8, 12], "fc2.weight"), "AXIS_OUT_OF_RANGE", "fc2.weight");
  throwsCode(() => quantizer().fit(W, [5, 12], "fc2.weight"), "SHAPE_MISMATCH");
  // fitted per-channel parameters applied to a tensor with another channel count
  const fq = quantizer().perChannel(0).fit(W, [8, 12], "fc2.weight");
  throwsCode(() => fq.fakeQuantize(W, [12, 8], "fc3.weight"), "SHAPE_MISMATCH", "fc3.weight");
  throwsCode(() => fq.quantize(W, [12, 8], "fc3.weight"), "SHAPE_MISMATCH", "fc3.weight");
  // constant tensors still get a finite, positive scale
  for (const b of [quantizer(), quantizer().uint(4).asymmetric().perChannel(0)]) {
    const p = b.fit(new Float32Array(12).fill(0.5), [3, 4]).params;
    for (const s of p.scale) assert.ok(Number.isFinite(s) && s > 0);
  }
});
