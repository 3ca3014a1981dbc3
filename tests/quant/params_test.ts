import assert from "node:assert/strict";
import { QuantlabError } from "../../lib/errors.ts";
import { fakeQuantizeTensor } from "../../lib/quant/affine.ts";
import {
  describeGranularity,
  integerRange,
  paramsFromRange,
  type QuantScheme,
  resolveGranularity,
  SCALE_EPS,
} from "../../lib/quant/params.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";

const f = Math.fround;

function throwsCode(fn: () => unknown, code: string, mention?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof QuantlabError, `expected QuantlabError, got ${e}`);
    assert.equal(e.code, code, e.message);
    if (mention) assert.ok(e.message.includes(mention), `"${e.message}" should mention ${mention}`);
    return true;
  });
}

Deno.test("integerRange: signed, unsigned, restricted grids for every width", () => {
  for (let b = 2; b <= 16; b++) {
    assert.deepEqual(integerRange({ bits: b, signed: true, symmetric: false, range: "full" }), {
      qmin: -(2 ** (b - 1)),
      qmax: 2 ** (b - 1) - 1,
    });
    assert.deepEqual(integerRange({ bits: b, signed: true, symmetric: true, range: "restricted" }), {
      qmin: -(2 ** (b - 1)) + 1,
      qmax: 2 ** (b - 1) - 1,
    });
    assert.deepEqual(integerRange({ bits: b, signed: false, symmetric: false, range: "full" }), {
      qmin: 0,
      qmax: 2 ** b - 1,
    });
    // restricted only applies to symmetric grids
    assert.deepEqual(integerRange({ bits: b, signed: false, symmetric: false, range: "restricted" }).qmin, 0);
  }
});

Deno.test("closed-form scales: restricted S = max|r|/(2^(b-1)-1), full S = 2max|r|/(2^b-1), asymmetric (max-min)/(2^b-1)", () => {
  const rng = new Prng(1);
  for (let trial = 0; trial < 200; trial++) {
    const bits = 2 + rng.nextInt(15);
    const lo = f(-Math.abs(rng.nextNormal()) * 3), hi = f(Math.abs(rng.nextNormal()) * 3);
    const m = Math.max(-lo, hi);
    const r = paramsFromRange([lo], [hi], { bits, signed: true, symmetric: true, range: "restricted" }, {
      kind: "tensor",
    });
    assert.equal(r.scale[0], f(m / (2 ** (bits - 1) - 1)));
    assert.equal(r.zeroPoint[0], 0);
    const full = paramsFromRange([lo], [hi], { bits, signed: true, symmetric: true, range: "full" }, {
      kind: "tensor",
    });
    assert.equal(full.scale[0], f(m / f((2 ** bits - 1) / 2)));
    assert.ok(Math.abs(full.scale[0] - 2 * m / (2 ** bits - 1)) <= 1e-7 * full.scale[0]);
    const us = paramsFromRange([lo], [hi], { bits, signed: false, symmetric: true, range: "restricted" }, {
      kind: "tensor",
    });
    assert.equal(us.zeroPoint[0], 2 ** (bits - 1));
    assert.equal(us.scale[0], r.scale[0]);
    const a = paramsFromRange([lo], [hi], { bits, signed: false, symmetric: false, range: "full" }, {
      kind: "tensor",
    });
    assert.equal(a.scale[0], f(f(hi - lo) / (2 ** bits - 1)));
    assert.equal(a.zeroPoint[0], Math.min(2 ** bits - 1, Math.max(0, -Math.round(f(lo / a.scale[0])))));
  }
  // uint8 full symmetric: zero point 128 (PyTorch's default quint8)
  const u8 = paramsFromRange([-1], [1], { bits: 8, signed: false, symmetric: true, range: "full" }, { kind: "tensor" });
  assert.equal(u8.zeroPoint[0], 128);
  assert.equal(u8.scale[0], f(1 / 127.5));
});

Deno.test("asymmetric zero point is nudged so that 0 is exact; the range always contains 0", () => {
  const rng = new Prng(2);
  for (let trial = 0; trial < 300; trial++) {
    const bits = 2 + rng.nextInt(15);
    const signed = rng.nextFloat() < 0.5;
    const a = f(rng.nextNormal() * 4), b = f(rng.nextNormal() * 4);
    const p = paramsFromRange([Math.min(a, b)], [Math.max(a, b)], { bits, signed, symmetric: false, range: "full" }, {
      kind: "tensor",
    });
    assert.ok(p.zeroPoint[0] >= p.qmin && p.zeroPoint[0] <= p.qmax);
    const y = fakeQuantizeTensor(Tensor.from([0, -0, Math.min(a, b), Math.max(a, b)]), p).data;
    assert.ok(Object.is(y[0], 0) && Object.is(y[1], 0), `trial ${trial}`);
    // the ends of the range are reproduced to within half a step
    assert.ok(Math.abs(y[2] - Math.min(a, b, 0)) <= p.scale[0] * 0.5 * (1 + 1e-6) || Math.min(a, b) > 0);
  }
  // a one-sided range [2, 5] widens to [0, 5]
  const p = paramsFromRange([2], [5], { bits: 8, signed: false, symmetric: false, range: "full" }, { kind: "tensor" });
  assert.equal(p.zeroPoint[0], 0);
  assert.equal(p.scale[0], f(5 / 255));
});

Deno.test("constant and all-zero ranges give a finite, positive scale (>= float32 eps)", () => {
  for (const c of [0, 1e-30, 0.75, -2]) {
    for (
      const scheme of [
        { bits: 8, signed: true, symmetric: true, range: "restricted" },
        { bits: 4, signed: false, symmetric: false, range: "full" },
      ] as QuantScheme[]
    ) {
      const p = paramsFromRange([c], [c], scheme, { kind: "tensor" });
      assert.ok(Number.isFinite(p.scale[0]) && p.scale[0] >= SCALE_EPS);
      const y = fakeQuantizeTensor(Tensor.from([c, 0]), p).data;
      assert.ok(Number.isFinite(y[0]) && Object.is(y[1], 0));
      if (c !== 0 && Math.abs(c) > 1e-6) assert.ok(Math.abs(y[0] - c) <= p.scale[0] / 2 * (1 + 1e-6));
    }
  }
});

Deno.test("resolveGranularity: slots and scale shapes, negative axes, errors name the tensor", () => {
  assert.deepEqual(resolveGranularity({ kind: "tensor" }, [3, 4]), {
    granularity: { kind: "tensor" },
    slots: 1,
    scaleShape: [],
  });
  assert.deepEqual(resolveGranularity({ kind: "channel", axis: -1 }, [3, 4]).slots, 4);
  assert.deepEqual(resolveGranularity({ kind: "channel", axis: -1 }, [3, 4]).granularity, { kind: "channel", axis: 1 });
  // ONNX blocked layout: the scale has the input's shape with the axis divided by the block size
  const r = resolveGranularity({ kind: "group", axis: 1, groupSize: 3 }, [2, 6, 5]);
  assert.deepEqual(r.scaleShape, [2, 2, 5]);
  assert.equal(r.slots, 20);
  throwsCode(
    () => resolveGranularity({ kind: "channel", axis: 2 }, [3, 4], "fc.weight"),
    "AXIS_OUT_OF_RANGE",
    "fc.weight",
  );
  throwsCode(
    () => resolveGranularity({ kind: "channel", axis: -3 }, [3, 4], "fc.weight"),
    "AXIS_OUT_OF_RANGE",
    "fc.weight",
  );
  throwsCode(() => resolveGranularity({ kind: "channel", axis: 0 }, [], "s"), "AXIS_OUT_OF_RANGE", "s");
  throwsCode(
    () => resolveGranularity({ kind: "group", axis: 1, groupSize: 4 }, [3, 6], "fc.weight"),
    "GROUP_SIZE",
    "fc.weight",
  );
  throwsCode(() => resolveGranularity({ kind: "group", axis: 1, groupSize: 0 }, [3, 6], "w"), "GROUP_SIZE", "w");
  throwsCode(() => resolveGranularity({ kind: "group", axis: 1, groupSize: 1.5 }, [3, 6], "w"), "GROUP_SIZE", "w");
  assert.equal(describeGranularity({ kind: "group", axis: 1, groupSize: 32 }), "per-group(size 32, axis 1)");
});

Deno.test("paramsFromRange bad input: bits out of range, NaN/Inf bounds, min > max, length mismatch", () => {
  const base: QuantScheme = { bits: 8, signed: true, symmetric: true, range: "full" };
  for (const bits of [1, 17, 2.5, 0, -8, NaN]) {
    throwsCode(
      () => paramsFromRange([0], [1], { ...base, bits }, { kind: "tensor" }, "act0"),
      "BITS_OUT_OF_RANGE",
      "act0",
    );
    throwsCode(() => integerRange({ ...base, bits }), "BITS_OUT_OF_RANGE");
  }
  for (const bad of [NaN, Infinity, -Infinity]) {
    throwsCode(() => paramsFromRange([bad], [1], base, { kind: "tensor" }, "act0"), "NON_FINITE", "act0");
    throwsCode(() => paramsFromRange([0], [bad], base, { kind: "tensor" }, "act0"), "NON_FINITE", "act0");
  }
  throwsCode(() => paramsFromRange([2], [1], base, { kind: "tensor" }, "act0"), "INVALID_ARGUMENT", "act0");
  throwsCode(() => paramsFromRange([0, 0], [1], base, { kind: "tensor" }, "act0"), "SHAPE_MISMATCH", "act0");
  throwsCode(() => paramsFromRange([], [], base, { kind: "tensor" }, "act0"), "SHAPE_MISMATCH", "act0");
});
