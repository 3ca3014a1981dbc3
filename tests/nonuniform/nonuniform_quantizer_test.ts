import assert from "node:assert";
import { nonUniform } from "../../lib/nonuniform/nonuniform_quantizer.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { mseOf, normal, throwsCode } from "./helpers.ts";

const KINDS = ["log2", "lloyd-max", "binary-code"] as const;

function display(x: object): Record<string, string> {
  return (x as Record<symbol, () => Record<string, string>>)[Symbol.for("Jupyter.display")]();
}

Deno.test("builder is immutable, prints readably and displays in Jupyter", () => {
  const a = nonUniform();
  const b = a.levels("log2").bits(3).perChannel(1).rounding("stochastic", { seed: 7 });
  assert.strictEqual(a.config.levels, "lloyd-max");
  assert.strictEqual(a.config.bits, 4);
  assert.strictEqual(
    b.toString(),
    "nonUniform(log2, 3 bits, per-channel(axis 1), scale=mse, rounding=stochastic(seed 7))",
  );
  assert.deepStrictEqual(display(b), { "text/plain": b.toString() });
  const f = nonUniform().bits(2).fit([1, 2, 3, 4, 5, 6, 7, 8]);
  assert.match(
    f.toString(),
    /^nonUniform\(lloyd-max, 2 bits, per-tensor, init=quantile, rounding=nearest\) slots=1 levels\[0\]=\[1\.500, 3\.500, 5\.500, 7\.500\]$/,
  );
  assert.strictEqual(display(f)["text/plain"], f.toString());
  assert.ok(Object.isFrozen(b.config));
});

Deno.test("per-channel fits equal per-tensor fits of each channel (axis 0 and 1)", () => {
  const w = normal(6 * 50, 3);
  const t = Tensor.from(w, [6, 50]);
  for (const kind of KINDS) {
    const fq = nonUniform().levels(kind).bits(3).perChannel(0).fit(t);
    assert.strictEqual(fq.slots, 6);
    const fake = fq.fakeQuantize(t).data;
    for (let c = 0; c < 6; c++) {
      const row = w.subarray(c * 50, (c + 1) * 50);
      const single = nonUniform().levels(kind).bits(3).fit(row);
      assert.deepStrictEqual(fq.codebook.subarray(c * fq.k, (c + 1) * fq.k), single.codebook, `${kind} channel ${c}`);
      assert.deepStrictEqual(fake.subarray(c * 50, (c + 1) * 50), single.fakeQuantize(row).data);
    }
    // axis 1 (and negative axes) of a [50, 6] layout
    const tt = new Float32Array(300);
    for (let c = 0; c < 6; c++) for (let i = 0; i < 50; i++) tt[i * 6 + c] = w[c * 50 + i];
    const f1 = nonUniform().levels(kind).bits(3).perChannel(-1).fit(tt, [50, 6]);
    assert.deepStrictEqual(f1.codebook, fq.codebook);
    const codes = f1.encode(tt, [50, 6]);
    assert.deepStrictEqual(Array.from(codes.shape), [50, 6]);
    assert.deepStrictEqual(f1.decode(codes).data, f1.fakeQuantize(tt, [50, 6]).data);
  }
});

Deno.test("encode / decode round trip and fake-quantize agree for every method", () => {
  const w = normal(5000, 12, 0.1);
  for (const kind of KINDS) {
    for (const bits of kind === "log2" ? [2, 4, 8] : [1, 2, 4, 8]) {
      const fq = nonUniform().levels(kind).bits(bits).fit(w);
      const codes = fq.encode(w);
      assert.strictEqual(codes.dtype, "uint8");
      for (const c of codes.data) assert.ok(c < fq.k);
      const back = fq.decode(codes);
      assert.deepStrictEqual(back.data, fq.fakeQuantize(w).data, `${kind} ${bits}`);
      // decoding gives levels; re-encoding a level gives a code of the same level
      const again = fq.decode(fq.encode(back));
      assert.deepStrictEqual(again.data, back.data);
      const bpw = fq.accounting();
      const side = kind === "log2" ? 1 : kind === "lloyd-max" ? 2 ** bits : bits;
      assert.strictEqual(bpw.bitsPerWeight, bits + side * 32 / 5000);
    }
  }
});

Deno.test("error falls with bits for every method, and learned levels beat uniform on Gaussian weights", () => {
  const w = normal(40000, 21);
  for (const kind of KINDS) {
    let prev = Infinity;
    for (const bits of kind === "log2" ? [2, 3, 4, 5] : [1, 2, 3, 4, 5, 6]) {
      const e = mseOf(w, nonUniform().levels(kind).bits(bits).fit(w).fakeQuantize(w).data);
      assert.ok(e < prev, `${kind} ${bits}: ${e} >= ${prev}`);
      prev = e;
    }
  }
  for (const bits of [2, 3, 4]) {
    const lloyd = mseOf(w, nonUniform().bits(bits).fit(w).fakeQuantize(w).data);
    const uni = mseOf(w, quantizer().int(bits).symmetric("full").fakeQuantize(w).values.data);
    assert.ok(lloyd < uni, `bits ${bits}: lloyd ${lloyd} vs uniform ${uni}`);
  }
});

Deno.test("stochastic fake-quantization is unbiased over a tensor and deterministic per seed", () => {
  const w = normal(200000, 5, 0.5);
  const q = nonUniform().levels("lloyd-max").bits(2).rounding("stochastic", { seed: 3 });
  const fq = q.fit(w);
  const a = fq.fakeQuantize(w).data, b = fq.fakeQuantize(w).data;
  assert.deepStrictEqual(a, b);
  const lv = fq.levelsOf(0);
  // mean error over values inside the level range is ~0 (nearest rounding of the same data is not)
  let s = 0, n = 0;
  for (let i = 0; i < w.length; i++) {
    if (w[i] >= lv[0] && w[i] <= lv[lv.length - 1] && w[i] > 0) {
      s += a[i] - w[i];
      n++;
    }
  }
  assert.ok(Math.abs(s / n) < 3e-3, `bias ${s / n}`);
  const near = nonUniform().levels("lloyd-max").bits(2).fit(w).fakeQuantize(w).data;
  let sn = 0;
  for (let i = 0; i < w.length; i++) if (w[i] >= lv[0] && w[i] <= lv[lv.length - 1] && w[i] > 0) sn += near[i] - w[i];
  assert.ok(Math.abs(sn / n) > 10 * Math.abs(s / n), `nearest bias ${sn / n} vs stochastic ${s / n}`);
  const other = q.rounding("stochastic", { seed: 4 }).fit(w).fakeQuantize(w).data;
  assert.notDeepStrictEqual(a, other);
});

Deno.test("bad input raises typed errors", () => {
  for (const b of [0, 9, 1.5, NaN]) throwsCode(() => nonUniform().bits(b), "BITS_OUT_OF_RANGE");
  throwsCode(() => nonUniform().levels("log2").bits(1), "BITS_OUT_OF_RANGE");
  throwsCode(() => nonUniform().levels("kmeans" as "log2"), "INVALID_ARGUMENT");
  throwsCode(() => nonUniform().fit([1, NaN, 2]), "NON_FINITE");
  throwsCode(() => nonUniform().levels("log2").fit([1, Infinity]), "NON_FINITE");
  throwsCode(() => nonUniform().fit([]), "EMPTY_TENSOR");
  throwsCode(() => nonUniform().perChannel(0).fit(new Float32Array(0), [0, 3]), "EMPTY_TENSOR");
  throwsCode(() => nonUniform().perChannel(2).fit([1, 2, 3, 4], [2, 2]), "AXIS_OUT_OF_RANGE");
  throwsCode(() => nonUniform().perChannel(0.5), "AXIS_OUT_OF_RANGE");
  throwsCode(() => nonUniform().bits(2).init([0, 1, 2]).fit([1, 2, 3, 4, 5]), "SHAPE_MISMATCH");
  throwsCode(() => nonUniform().init([0, NaN]), "NON_FINITE");
  throwsCode(() => nonUniform().init("kmeans++" as "random"), "INVALID_ARGUMENT");
  throwsCode(() => nonUniform().iterations(-1), "INVALID_ARGUMENT");
  throwsCode(() => nonUniform().tolerance(-1), "INVALID_ARGUMENT");
  throwsCode(() => nonUniform().rounding("floor" as "nearest"), "INVALID_ARGUMENT");
  throwsCode(() => nonUniform().scale("p99" as "max"), "INVALID_ARGUMENT");
  const fq = nonUniform().bits(2).perChannel(0).fit([1, 2, 3, 4, 5, 6], [2, 3]);
  throwsCode(() => fq.encode([1, 2, 3, 4, 5, 6], [3, 2]), "SHAPE_MISMATCH");
  throwsCode(() => fq.decode(new Uint8Array([0, 1, 9, 0, 0, 0]), [2, 3]), "INVALID_ARGUMENT");
  throwsCode(() => fq.fakeQuantize(new Float32Array(0), [0, 3]), "EMPTY_TENSOR");
  throwsCode(() => fq.levelsOf(2), "INVALID_ARGUMENT");
});
