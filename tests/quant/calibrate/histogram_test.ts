import assert from "node:assert/strict";
import { SlotHistograms } from "../../../lib/quant/calibrate/histogram.ts";
import { QuantlabError } from "../../../lib/errors.ts";
import { Prng } from "../../../lib/tensor/prng.ts";
import { Tensor } from "../../../lib/tensor/tensor.ts";

function minMax(x: Float32Array): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of x) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  return [lo, hi];
}

function feed(h: SlotHistograms, x: Float32Array): void {
  const [lo, hi] = minMax(x);
  h.add(Tensor.from(x), { outer: 1, slots: 1, inner: x.length }, [lo], [hi]);
}

/** Bin all data directly on a given grid (the reference for exact re-binning). */
function direct(x: Float32Array, lo: number, w: number, B: number, abs: boolean): Float64Array {
  const c = new Float64Array(B);
  for (let v of x) {
    if (abs) v = Math.abs(v);
    c[Math.min(B - 1, Math.floor((v - lo) / w))]++;
  }
  return c;
}

Deno.test("signed histogram: growth to both sides equals binning everything on the final grid", () => {
  const rng = new Prng(2);
  const B = 64;
  const h = new SlotHistograms(B, "signed", true);
  const all: number[] = [];
  for (let b = 0; b < 6; b++) {
    const s = 2 ** b * 0.3; // the range grows every batch, to both sides
    const x = Float32Array.from({ length: 500 }, () => (rng.nextFloat() - 0.3) * s);
    all.push(...x);
    feed(h, x);
  }
  const xs = Float32Array.from(all);
  const [mn, mx] = minMax(xs);
  assert.ok(h.lo[0] <= mn && h.hi[0] >= mx);
  assert.ok(h.width[0] < (2 * (mx - mn)) / B, "width below twice the needed width");
  // Equal up to values on a bin edge, where an older grid's edge and the final grid's edge
  // (the same real number) round differently: at most a couple of the 3000 values move one bin.
  const ref = direct(xs, h.lo[0], h.width[0], B, false);
  let moved = 0;
  for (let k = 0; k < B; k++) moved += Math.abs(h.counts[k] - ref[k]);
  assert.ok(moved <= 4, `${moved} counts differ`);
  // Per-bin sums add up to the sum of the data.
  const sum = h.sums!.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - all.reduce((a, b) => a + b, 0)) < 1e-9);
  assert.equal(h.total(0), xs.length);
});

Deno.test("abs histogram: first batch sets [0, max|x|], growth doubles the width", () => {
  const h = new SlotHistograms(8, "abs");
  feed(h, Float32Array.of(-4, 1, 2));
  assert.equal(h.width[0], 0.5);
  feed(h, Float32Array.of(9));
  assert.equal(h.width[0], 2); // 4 -> 8 -> 16
  assert.equal(h.hi[0], 16);
  // 4 -> last bin of [0, 4), 1 -> bin 2, 2 -> bin 4; after two doublings 0, 0, 1; then 9 -> bin 4.
  assert.deepEqual(Array.from(h.counts), [1, 2, 0, 0, 1, 0, 0, 0]);
});

Deno.test("all-zero batches are counted and placed once a range exists", () => {
  const h = new SlotHistograms(4, "signed");
  feed(h, new Float32Array(5));
  assert.equal(h.width[0], 0);
  assert.equal(h.total(0), 5);
  assert.equal(h.quantile(0, 0.5), 0);
  feed(h, Float32Array.of(-1, 3));
  assert.equal(h.total(0), 7);
  assert.deepEqual(Array.from(h.counts), [1, 5, 0, 1]); // zeros land in bin [0, 1)
});

Deno.test("per-channel layout bins each slot separately", () => {
  // shape [2, 3] along axis 1: slots 0..2, outer 2, inner 1
  const x = Float32Array.of(1, -2, 3, 4, -5, 6);
  const h = new SlotHistograms(2, "signed");
  h.add(Tensor.from(x, [2, 3]), { outer: 2, slots: 3, inner: 1 }, [1, -5, 3], [4, -2, 6]);
  assert.equal(h.slots, 3);
  assert.deepEqual(Array.from(h.lo), [0, -5, 0]);
  assert.deepEqual(Array.from(h.counts), [1, 1, 1, 1, 0, 2]);
});

Deno.test("quantile interpolates inside the crossing bin", () => {
  const h = new SlotHistograms(10, "signed");
  const x = Float32Array.from({ length: 1000 }, (_, i) => (i + 0.5) / 1000);
  feed(h, x);
  for (const q of [0.01, 0.25, 0.5, 0.999, 1]) {
    const exact = x[Math.ceil(q * 1000) - 1]; // x_(ceil(qN)), the inverted-CDF quantile
    assert.ok(Math.abs(h.quantile(0, q) - exact) <= h.width[0], `q=${q}`);
  }
  // Exact for data uniform within bins: 10 bins of 100 evenly spread values over [0, 1].
  const h2 = new SlotHistograms(10, "signed");
  feed(h2, Float32Array.from({ length: 1001 }, (_, i) => i / 1000));
  assert.ok(Math.abs(h2.quantile(0, 0.5) - 0.5) < 2e-3);
});

Deno.test("odd bin counts are rejected", () => {
  assert.throws(() => new SlotHistograms(7, "abs"), QuantlabError);
  assert.throws(() => new SlotHistograms(0, "abs"), QuantlabError);
});
