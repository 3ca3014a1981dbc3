import assert from "node:assert";
import { decodeCodebook, quantizeToCodebook, searchTables } from "../../lib/nonuniform/codebook_kernels.ts";
import { Prng } from "../../lib/tensor/prng.ts";

function bruteNearest(v: number, cb: Float32Array): number {
  let best = 0;
  for (let j = 1; j < cb.length; j++) {
    const d = Math.abs(v - cb[j]), b = Math.abs(v - cb[best]);
    if (d < b || (d === b && cb[j] < cb[best])) best = j;
  }
  return best;
}

Deno.test("nearest encoding equals a brute-force argmin for sorted and unsorted codebooks of every size", () => {
  const rng = new Prng(1);
  for (const k of [1, 2, 3, 5, 7, 8, 15, 16, 100, 255, 256]) {
    const cb = new Float32Array(k);
    for (let j = 0; j < k; j++) cb[j] = rng.nextNormal();
    const x = new Float32Array(3000);
    for (let i = 0; i < x.length; i++) x[i] = 1.5 * rng.nextNormal();
    x[0] = cb[0]; // exactly on a level
    const codes = new Uint8Array(x.length), values = new Float32Array(x.length);
    quantizeToCodebook(x, [x.length], { kind: "tensor" }, searchTables(cb, 1, k), "nearest", 0, codes, values);
    for (let i = 0; i < x.length; i++) {
      const b = bruteNearest(x[i], cb);
      assert.strictEqual(cb[codes[i]], cb[b], `k ${k} i ${i}`);
      assert.strictEqual(values[i], cb[b]);
    }
    // decode(encode(x)) is the fake-quantized value; encode(decode(c)) = c for distinct levels
    assert.deepStrictEqual(decodeCodebook(codes, [x.length], { kind: "tensor" }, cb, k), values);
    const again = new Uint8Array(x.length);
    quantizeToCodebook(values, [x.length], { kind: "tensor" }, searchTables(cb, 1, k), "nearest", 0, again);
    assert.deepStrictEqual(again, codes);
  }
  // a midpoint tie goes to the lower level
  const codes = new Uint8Array(1);
  quantizeToCodebook(
    new Float32Array([0.5]),
    [1],
    { kind: "tensor" },
    searchTables(new Float32Array([1, 0]), 1, 2),
    "nearest",
    0,
    codes,
  );
  assert.strictEqual(codes[0], 1);
});

Deno.test("stochastic rounding between neighbouring levels is unbiased, seeded and stays on the neighbours", () => {
  const cb = new Float32Array([-2, -0.5, 0, 0.25, 1, 4]);
  const t = searchTables(cb, 1, cb.length);
  const probes = [-1.7, -0.3, 0.1, 0.2, 0.9, 3.1];
  const reps = 40000;
  const x = new Float32Array(probes.length * reps);
  for (let i = 0; i < x.length; i++) x[i] = probes[i % probes.length];
  const v = new Float32Array(x.length), v2 = new Float32Array(x.length), v3 = new Float32Array(x.length);
  quantizeToCodebook(x, [x.length], { kind: "tensor" }, t, "stochastic", 42, undefined, v);
  quantizeToCodebook(x, [x.length], { kind: "tensor" }, t, "stochastic", 42, undefined, v2);
  quantizeToCodebook(x, [x.length], { kind: "tensor" }, t, "stochastic", 43, undefined, v3);
  assert.deepStrictEqual(v, v2);
  assert.notDeepStrictEqual(v, v3);
  probes.forEach((p, j) => {
    let lo = -Infinity, hi = Infinity;
    for (const c of cb) {
      if (c <= p && c > lo) lo = c;
      if (c > p && c < hi) hi = c;
    }
    let s = 0;
    for (let r = 0; r < reps; r++) {
      const q = v[r * probes.length + j];
      assert.ok(q === lo || q === hi, `${p} -> ${q} is not a neighbour (${lo}, ${hi})`);
      s += q;
    }
    const mean = s / reps;
    const pr = (p - lo) / (hi - lo);
    const sd = (hi - lo) * Math.sqrt(pr * (1 - pr) / reps);
    assert.ok(Math.abs(mean - p) < 5 * sd, `probe ${p}: mean ${mean}, sd ${sd}`);
  });
  // outside the level range: the end level
  const o = new Float32Array(2);
  quantizeToCodebook(new Float32Array([-9, 9]), [2], { kind: "tensor" }, t, "stochastic", 0, undefined, o);
  assert.deepStrictEqual(Array.from(o), [-2, 4]);
  // exactly on a level: that level, always
  quantizeToCodebook(new Float32Array([0.25, 0.25]), [2], { kind: "tensor" }, t, "stochastic", 5, undefined, o);
  assert.deepStrictEqual(Array.from(o), [0.25, 0.25]);
});

Deno.test("stochastic rounding on large codebooks (binary-search path) stays on neighbours and is unbiased", () => {
  for (const k of [17, 64, 256]) {
    const cb = new Float32Array(k);
    for (let j = 0; j < k; j++) cb[j] = Math.fround((j - k / 2) ** 3 / k ** 2); // non-uniform, ascending
    const t = searchTables(cb, 1, k);
    const probe = Math.fround(cb[Math.floor(k / 3)] * 0.3 + cb[Math.floor(k / 3) + 1] * 0.7);
    const reps = 20000;
    const x = new Float32Array(reps + 2).fill(probe);
    x[reps] = cb[k - 1] + 1; // above the top level
    x[reps + 1] = cb[k - 1]; // exactly the top level
    const v = new Float32Array(x.length);
    quantizeToCodebook(x, [x.length], { kind: "tensor" }, t, "stochastic", 7, undefined, v);
    const lo = cb[Math.floor(k / 3)], hi = cb[Math.floor(k / 3) + 1];
    let s = 0;
    for (let r = 0; r < reps; r++) {
      assert.ok(v[r] === lo || v[r] === hi, `k ${k}: ${v[r]} not in (${lo}, ${hi})`);
      s += v[r];
    }
    const pr = (probe - lo) / (hi - lo);
    assert.ok(
      Math.abs(s / reps - probe) < 5 * (hi - lo) * Math.sqrt(pr * (1 - pr) / reps),
      `k ${k}: ${s / reps} vs ${probe}`,
    );
    assert.strictEqual(v[reps], cb[k - 1]);
    assert.strictEqual(v[reps + 1], cb[k - 1]);
  }
});
