import assert from "node:assert/strict";
import { conv2dGeometry, conv2dInt32, qlinearConv } from "../../lib/integer/conv.ts";
import { conv2dFloat, simulateQLinearConv } from "../../lib/integer/simulate.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import {
  compare,
  naiveConvInt,
  randInt,
  randomQ,
  randScale,
  randZeroPoint,
  ROUNDINGS,
  Tally,
  torchFx,
} from "./helpers.ts";

interface RandomConv {
  x: Tensor;
  w: Tensor;
  s: [number, number];
  p: [number, number, number, number];
  d: [number, number];
  group: number;
}

function randomConv(rng: Prng, t: number): RandomConv {
  const group = [1, 1, 2, 3][t % 4];
  const cg = randInt(rng, 1, 4), mg = randInt(rng, 1, 4);
  const kh = randInt(rng, 1, 4), kw = randInt(rng, 1, 4);
  const s: [number, number] = [randInt(rng, 1, 3), randInt(rng, 1, 3)];
  const d: [number, number] = [randInt(rng, 1, 2), randInt(rng, 1, 2)];
  const p: [number, number, number, number] = [
    randInt(rng, 0, 2),
    randInt(rng, 0, 2),
    randInt(rng, 0, 2),
    randInt(rng, 0, 2),
  ];
  const h = d[0] * (kh - 1) + randInt(rng, 1, 8), w = d[1] * (kw - 1) + randInt(rng, 1, 8);
  const x = randomQ(rng, t % 2 ? "int8" : "uint8", [randInt(rng, 1, 2), cg * group, h, w]);
  const wt = randomQ(rng, t % 3 ? "int8" : "uint8", [mg * group, cg, kh, kw]);
  return { x, w: wt, s, p, d, group };
}

Deno.test("conv2dInt32 equals a naive direct convolution (strides, pads, dilations, groups, zero points)", () => {
  const rng = new Prng(41);
  for (let t = 0; t < 120; t++) {
    const { x, w, s, p, d, group } = randomConv(rng, t);
    const m = w.shape[0];
    const zx = x.dtype === "int8" ? randInt(rng, -128, 127) : randInt(rng, 0, 255);
    const zw = t % 2
      ? Array.from({ length: m }, () => w.dtype === "int8" ? randInt(rng, -128, 127) : randInt(rng, 0, 255))
      : [w.dtype === "int8" ? randInt(rng, -128, 127) : randInt(rng, 0, 255)];
    const bias = t % 3 ? Int32Array.from({ length: m }, () => randInt(rng, -1e5, 1e5)) : undefined;
    const got = conv2dInt32(
      { x, xZeroPoint: zx, w, wZeroPoint: zw.length === 1 ? zw[0] : zw, bias },
      { strides: s, pads: p, dilations: d, group },
    );
    const want = naiveConvInt(x, zx, w, zw, bias, s, p, d, group);
    assert.deepEqual(got.shape, want.shape, `case ${t}`);
    assert.deepEqual(Array.from(got.data), want.data, `case ${t}`);
  }
});

Deno.test("qlinearConv (integer-only) agrees with the float simulation within 1 LSB on 300 seeded cases", () => {
  const rng = new Prng(42);
  const tally = new Tally();
  for (let t = 0; t < 300; t++) {
    const { x, w, s, p, d, group } = randomConv(rng, t);
    const m = w.shape[0], k = w.shape[1] * w.shape[2] * w.shape[3];
    const perChannel = t % 2 === 0;
    const yDtype = t % 5 < 2 ? "int8" : "uint8";
    const args = {
      x,
      xScale: randScale(rng, 0.005, 0.05),
      xZeroPoint: randZeroPoint(rng, x.dtype, 30),
      w,
      wScale: perChannel ? Array.from({ length: m }, () => randScale(rng, 0.001, 0.02)) : randScale(rng, 0.001, 0.02),
      wZeroPoint: perChannel
        ? Array.from({ length: m }, () => randZeroPoint(rng, w.dtype, 4))
        : randZeroPoint(rng, w.dtype, 4),
      yScale: randScale(rng, 0.01, 0.1) * Math.sqrt(k),
      yZeroPoint: yDtype === "int8" ? randInt(rng, -20, 20) : randInt(rng, 100, 150),
      yDtype: yDtype as "int8" | "uint8",
      bias: t % 3 ? Int32Array.from({ length: m }, () => randInt(rng, -20000, 20000)) : undefined,
    };
    const attrs = { strides: s, pads: p, dilations: d, group };
    const sim = simulateQLinearConv(args, attrs);
    for (const rounding of ROUNDINGS) {
      const y = qlinearConv(args, { ...attrs, rounding });
      assert.deepEqual(y.shape, sim.shape);
      tally.check(rounding, y.data, sim.data, `case ${t}`);
      if (rounding === "dyadic") tally.countUnsaturated(y.data, yDtype);
    }
  }
  const [exact, total] = tally.stats.dyadic, inside = tally.unsaturated;
  assert.ok(inside / total > 0.8, `most outputs must be unsaturated for the test to mean anything: ${inside}/${total}`);
  assert.ok(exact / total > 0.97, `exact ${exact}/${total}`);
  console.log(
    `qlinearConv dyadic vs float simulation: ${exact}/${total} exact (${(100 * exact / total).toFixed(2)}%), ` +
      `${inside} unsaturated`,
  );
});

Deno.test(`quantized conv2d agrees with PyTorch (${torchFx.engine}) within 1 LSB`, () => {
  assert.ok(torchFx.conv.length >= 10);
  const tally = new Tally();
  for (const c of torchFx.conv) {
    const args = {
      x: new Tensor(Uint8Array.from(c.x), c.xShape),
      xScale: c.xScale,
      xZeroPoint: c.xZeroPoint,
      w: new Tensor(Int8Array.from(c.w), c.wShape),
      wScale: c.wScale,
      wZeroPoint: c.wZeroPoint,
      bias: Int32Array.from(c.bias),
      yScale: c.yScale,
      yZeroPoint: c.yZeroPoint,
    };
    const attrs = { strides: c.strides, pads: c.pads, dilations: c.dilations, group: c.group };
    for (const rounding of ROUNDINGS) {
      const y = qlinearConv(args, { ...attrs, rounding });
      assert.deepEqual(y.shape, c.yShape, c.name);
      assert.equal(y.dtype, "uint8");
      tally.check(rounding, y.data, c.y, c.name);
    }
    assert.ok(compare(simulateQLinearConv(args, attrs).data, c.y).maxDiff <= 1, `${c.name} simulation`);
  }
  const [e, n] = tally.stats.dyadic;
  assert.ok(e / n > 0.95, `dyadic exact ${e}/${n}`);
  console.log(`conv2d vs torch: ${tally.summary()}`);
});

Deno.test("conv2dFloat equals the integer conv on integer-valued data (zero points 0)", () => {
  const rng = new Prng(43);
  for (let t = 0; t < 20; t++) {
    const { x, w, s, p, d, group } = randomConv(rng, t);
    const xf = Tensor.from(Float32Array.from(x.data as ArrayLike<number>), x.shape);
    const wf = Tensor.from(Float32Array.from(w.data as ArrayLike<number>), w.shape);
    const yf = conv2dFloat(xf, wf, undefined, { strides: s, pads: p, dilations: d, group });
    const yi = conv2dInt32({ x, w }, { strides: s, pads: p, dilations: d, group });
    assert.deepEqual(Array.from(yf.data), Array.from(yi.data)); // small integers: exact in float
  }
});

Deno.test("conv bad input throws QuantlabError naming the argument", () => {
  const x = new Tensor(new Uint8Array(2 * 4 * 4), [1, 2, 4, 4]);
  const w = new Tensor(new Int8Array(3 * 2 * 9), [3, 2, 3, 3]);
  const q = { x, xScale: 0.1, xZeroPoint: 128, w, wScale: 0.1, yScale: 0.1, yZeroPoint: 128 };
  const bad: [() => unknown, string, RegExp][] = [
    [() => conv2dGeometry([1, 2, 4], [3, 2, 3, 3]), "SHAPE_MISMATCH", /x must be \[N, C, H, W\]/],
    [() => conv2dGeometry([1, 3, 4, 4], [3, 2, 3, 3]), "SHAPE_MISMATCH", /3 channels/],
    [() => conv2dGeometry([1, 4, 4, 4], [3, 2, 3, 3], { group: 2 }), "SHAPE_MISMATCH", /M divisible by group/],
    [() => conv2dGeometry([1, 2, 2, 2], [3, 2, 3, 3]), "SHAPE_MISMATCH", /does not fit/],
    [() => conv2dGeometry([1, 2, 4, 4], [3, 2, 3, 3], { strides: 0 }), "INVALID_ARGUMENT", /strides/],
    [() => conv2dGeometry([1, 2, 4, 4], [3, 2, 3, 3], { pads: [1, -1, 0, 0] }), "INVALID_ARGUMENT", /pads/],
    [() => conv2dGeometry([1, 2, 4, 4], [3, 2, 3, 3], { dilations: [1, 2, 3] }), "INVALID_ARGUMENT", /dilations/],
    [() => conv2dGeometry([1, 2, 4, 4], [3, 2, 3, 3], { group: 0 }), "INVALID_ARGUMENT", /group/],
    [() => conv2dInt32({ x, w, bias: new Int32Array(2) }), "SHAPE_MISMATCH", /bias must hold 3/],
    [() => conv2dInt32({ x, xZeroPoint: 256, w }), "INVALID_ARGUMENT", /xZeroPoint .*uint8/],
    [() => conv2dInt32({ x, w, wZeroPoint: [0, 200, 0] }), "INVALID_ARGUMENT", /wZeroPoint\[1\]/],
    [() => conv2dInt32({ x, w, wZeroPoint: [0, 0] }), "SHAPE_MISMATCH", /wZeroPoint/],
    [
      () => conv2dInt32({ x: Tensor.from(new Float32Array(32), [1, 2, 4, 4]) as Tensor, w }),
      "INVALID_ARGUMENT",
      /x must be an int8/,
    ],
    [() => qlinearConv({ ...q, xScale: 0 }), "INVALID_ARGUMENT", /xScale/],
    [() => qlinearConv({ ...q, wScale: [0.1, NaN, 0.1] }), "NON_FINITE", /wScale\[1\]/],
    [() => qlinearConv({ ...q, wScale: [0.1, 0.1] }), "SHAPE_MISMATCH", /wScale/],
    [() => qlinearConv({ ...q, yScale: -0.5 }), "INVALID_ARGUMENT", /yScale/],
    [() => qlinearConv({ ...q, yZeroPoint: 128, yDtype: "int8" }), "INVALID_ARGUMENT", /yZeroPoint/],
    [() => qlinearConv({ ...q, yScale: 1e-12, xScale: 1, wScale: 1 }), "UNSUPPORTED", /multiplier/],
  ];
  for (const [fn, code, msg] of bad) {
    assert.throws(fn, (e: unknown) => e instanceof QuantlabError && e.code === code && msg.test(e.message), String(fn));
  }
});
