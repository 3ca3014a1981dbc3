import assert from "node:assert/strict";
import { qgemmInt32, qlinearMatMul } from "../../lib/integer/gemm.ts";
import { simulateQLinearMatMul } from "../../lib/integer/simulate.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { compare, randInt, randomQ, randScale, randZeroPoint, ROUNDINGS, Tally, torchFx } from "./helpers.ts";

Deno.test("qgemmInt32 equals a naive triple loop (zero points per tensor, per row/column, transB, edges)", () => {
  const rng = new Prng(31);
  for (let t = 0; t < 60; t++) {
    const m = randInt(rng, 1, 11), k = randInt(rng, 1, 40), n = randInt(rng, 1, 13);
    const aType = t % 2 ? "int8" : "uint8", bType = t % 3 ? "int8" : "uint8";
    const a = randomQ(rng, aType, [m, k]);
    const transB = t % 4 === 1;
    const b = randomQ(rng, bType, transB ? [n, k] : [k, n]);
    const zr = (ty: string) => ty === "int8" ? randInt(rng, -128, 127) : randInt(rng, 0, 255);
    const za = t % 5 === 0 ? Array.from({ length: m }, () => zr(aType)) : zr(aType);
    const zb = t % 3 === 0 ? Array.from({ length: n }, () => zr(bType)) : zr(bType);
    const bias = t % 2 ? Int32Array.from({ length: n }, () => randInt(rng, -1e6, 1e6)) : undefined;
    const c = qgemmInt32({ a, aZeroPoint: za, b, bZeroPoint: zb, transB, bias });
    assert.deepEqual(c.shape, [m, n]);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = bias ? bias[j] : 0;
        for (let p = 0; p < k; p++) {
          const av = a.data[i * k + p] - (typeof za === "number" ? za : za[i]);
          const bv = b.data[transB ? j * k + p : p * n + j] - (typeof zb === "number" ? zb : zb[j]);
          s += av * bv;
        }
        assert.equal(c.data[i * n + j], s, `case ${t} (${i}, ${j})`);
      }
    }
  }
});

Deno.test("qlinearMatMul (integer-only) agrees with the float simulation within 1 LSB on 200 seeded cases", () => {
  const rng = new Prng(32);
  const tally = new Tally();
  for (let t = 0; t < 200; t++) {
    const m = randInt(rng, 1, 9), k = randInt(rng, 1, 70), n = randInt(rng, 1, 9);
    const aType = t % 2 ? "int8" : "uint8", bType = t % 3 ? "int8" : "uint8";
    const yDtype = t % 5 < 2 ? "int8" : "uint8";
    const a = randomQ(rng, aType, [m, k]);
    const b = randomQ(rng, bType, [k, n]);
    const perCol = t % 2 === 0, perRow = t % 7 === 0;
    const args = {
      a,
      aScale: perRow ? Array.from({ length: m }, () => randScale(rng, 0.005, 0.05)) : randScale(rng, 0.005, 0.05),
      aZeroPoint: randZeroPoint(rng, aType, 20),
      b,
      bScale: perCol ? Array.from({ length: n }, () => randScale(rng, 0.001, 0.02)) : randScale(rng, 0.001, 0.02),
      bZeroPoint: perCol ? Array.from({ length: n }, () => randZeroPoint(rng, bType, 5)) : randZeroPoint(rng, bType, 5),
      yScale: randScale(rng, 0.002, 0.2) * Math.sqrt(k),
      yZeroPoint: yDtype === "int8" ? randInt(rng, -20, 20) : randInt(rng, 100, 150),
      yDtype: yDtype as "int8" | "uint8",
      bias: t % 3 ? Int32Array.from({ length: n }, () => randInt(rng, -5000, 5000)) : undefined,
    };
    const sim = simulateQLinearMatMul(args);
    for (const rounding of ROUNDINGS) {
      const y = qlinearMatMul(args, { rounding });
      assert.equal(y.dtype, yDtype);
      tally.check(rounding, y.data, sim.data, `case ${t}`);
      if (rounding === "dyadic") tally.countUnsaturated(y.data, yDtype);
    }
  }
  const [exact, total] = tally.stats.dyadic, inside = tally.unsaturated;
  assert.ok(inside / total > 0.8, `most outputs must be unsaturated for the test to mean anything: ${inside}/${total}`);
  assert.ok(exact / total > 0.97, `exact ${exact}/${total}`);
  console.log(
    `qlinearMatMul dyadic vs float simulation: ${exact}/${total} exact (${(100 * exact / total).toFixed(2)}%)`,
  );
});

Deno.test(`quantized linear agrees with PyTorch (${torchFx.engine}) within 1 LSB`, () => {
  assert.ok(torchFx.linear.length >= 5);
  const tally = new Tally();
  for (const c of torchFx.linear) {
    const args = {
      a: new Tensor(Uint8Array.from(c.x), c.xShape),
      aScale: c.xScale,
      aZeroPoint: c.xZeroPoint,
      b: new Tensor(Int8Array.from(c.w), c.wShape),
      bScale: c.wScale,
      bZeroPoint: c.wZeroPoint,
      transB: true,
      bias: Int32Array.from(c.bias),
      yScale: c.yScale,
      yZeroPoint: c.yZeroPoint,
      yDtype: "uint8" as const,
    };
    for (const rounding of ROUNDINGS) {
      tally.check(rounding, qlinearMatMul(args, { rounding }).data, c.y, c.name);
    }
    assert.ok(compare(simulateQLinearMatMul(args).data, c.y).maxDiff <= 1, `${c.name} simulation`);
  }
  const [e, n] = tally.stats.dyadic;
  assert.ok(e / n > 0.95, `dyadic exact ${e}/${n}`);
  console.log(`linear vs torch: ${tally.summary()}`);
});

Deno.test("gemm bad input throws QuantlabError naming the argument", () => {
  const a = new Tensor(new Int8Array(6), [2, 3]);
  const b = new Tensor(new Int8Array(12), [3, 4]);
  const ok = { a, aScale: 0.1, b, bScale: 0.1, yScale: 0.1 };
  const bad: [() => unknown, string, RegExp][] = [
    [() => qgemmInt32({ a, b: new Tensor(new Int8Array(8), [4, 2]) }), "SHAPE_MISMATCH", /inner dimension: 3 vs 4/],
    [() => qgemmInt32({ a, b, transB: true }), "SHAPE_MISMATCH", /transB/],
    [
      () => qgemmInt32({ a: Tensor.from([1, 2], [1, 2]) as Tensor, b }),
      "INVALID_ARGUMENT",
      /a must be an int8 or uint8/,
    ],
    [() => qgemmInt32({ a: new Tensor(new Int8Array(6), [6]), b }), "SHAPE_MISMATCH", /a must have rank 2/],
    [() => qgemmInt32({ a, aZeroPoint: 200, b }), "INVALID_ARGUMENT", /aZeroPoint .*int8/],
    [() => qgemmInt32({ a, b, bZeroPoint: [1, 2] }), "SHAPE_MISMATCH", /bZeroPoint/],
    [() => qgemmInt32({ a, b, bias: new Int32Array(3) }), "SHAPE_MISMATCH", /bias/],
    [() => qlinearMatMul({ ...ok, aScale: 0 }), "INVALID_ARGUMENT", /aScale/],
    [() => qlinearMatMul({ ...ok, bScale: [0.1, 0.1, NaN, 0.1] }), "NON_FINITE", /bScale\[2\]/],
    [() => qlinearMatMul({ ...ok, yScale: -1 }), "INVALID_ARGUMENT", /yScale/],
    [() => qlinearMatMul({ ...ok, yZeroPoint: -3, yDtype: "uint8" }), "INVALID_ARGUMENT", /yZeroPoint/],
    [() => qlinearMatMul({ ...ok, yZeroPoint: 128 }), "INVALID_ARGUMENT", /yZeroPoint/],
  ];
  for (const [fn, code, msg] of bad) {
    assert.throws(fn, (e: unknown) => e instanceof QuantlabError && e.code === code && msg.test(e.message), String(fn));
  }
});
