import assert from "node:assert/strict";
import { QuantlabError } from "../../lib/errors.ts";
import { axisView, normalizeAxis } from "../../lib/tensor/layout.ts";

Deno.test("axisView: outer x axisLength x inner, flat index (o * A + c) * inner + i", () => {
  assert.deepEqual(axisView([3, 5, 7], 0), { axis: 0, outer: 1, axisLength: 3, inner: 35 });
  assert.deepEqual(axisView([3, 5, 7], 1), { axis: 1, outer: 3, axisLength: 5, inner: 7 });
  assert.deepEqual(axisView([3, 5, 7], -1), { axis: 2, outer: 15, axisLength: 7, inner: 1 });
  assert.deepEqual(axisView([17], 0), { axis: 0, outer: 1, axisLength: 17, inner: 1 });
  // every flat index is visited exactly once by the decomposition
  const shape = [2, 3, 4, 5];
  for (let axis = 0; axis < 4; axis++) {
    const { outer, axisLength, inner } = axisView(shape, axis);
    const seen = new Uint8Array(120);
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < axisLength; c++) for (let i = 0; i < inner; i++) seen[(o * axisLength + c) * inner + i]++;
    }
    assert.ok(seen.every((v) => v === 1));
    // the coordinate along the axis of flat index f is floor(f / inner) % axisLength
    const strides = [60, 20, 5, 1];
    for (let f = 0; f < 120; f++) {
      assert.equal(Math.floor(f / inner) % axisLength, Math.floor(f / strides[axis]) % shape[axis]);
    }
  }
});

Deno.test("normalizeAxis and out-of-range axes", () => {
  assert.equal(normalizeAxis(-3, 3), 0);
  assert.equal(normalizeAxis(2, 3), 2);
  for (const bad of [3, -4, 0.5, NaN]) {
    assert.throws(
      () => axisView([2, 3, 4], bad),
      (e: unknown) => e instanceof QuantlabError && e.code === "AXIS_OUT_OF_RANGE" && e.message.includes(String(bad)),
    );
  }
  assert.throws(
    () => normalizeAxis(0, 0, "ch axis"),
    (e: unknown) => e instanceof QuantlabError && e.message.includes("ch axis"),
  );
});
