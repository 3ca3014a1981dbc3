import assert from "node:assert/strict";
import {
  equalBits,
  interpolateAt,
  scalarKMeans,
  vectorQuantizationComparison,
  type VqPoint,
  vqSweep,
} from "../../lib/experiments/vector_quantization.ts";
import { syntheticWeights } from "../../lib/experiments/weights.ts";
import { mse } from "../../lib/quant/metrics.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { pqCompression } from "../../lib/vq/compression.ts";

const poolnet = await Deno.readFile(new URL("../fixtures/models/poolnet_op17.onnx", import.meta.url));

Deno.test("vq: interpolateAt and equalBits compare PQ with the scalar curves at the same storage", () => {
  const pts = [{ x: 1, y: 2 }, { x: 3, y: 6 }, { x: 2, y: 5 }];
  assert.equal(interpolateAt(pts, 1.5), 3.5);
  assert.equal(interpolateAt(pts, 2.5), 5.5);
  assert.equal(interpolateAt(pts, 0.5), undefined);
  assert.equal(interpolateAt(pts, 3.5), undefined);
  const p = (method: string, bitsPerWeight: number, sqnr: number): VqPoint => ({
    method,
    setting: "",
    codeBits: 0,
    sideBits: 0,
    bitsPerWeight,
    ratio: 32 / bitsPerWeight,
    mse: 0,
    sqnr,
  });
  const rows = equalBits([
    p("uniform per-channel", 2, 6),
    p("uniform per-channel", 3, 12),
    p("k-means scalar", 1, 4),
    p("k-means scalar", 3, 14),
    p("PQ d=4, shared", 2.5, 10),
    p("PQ d=4, shared", 0.5, 1), // outside both scalar ranges: left out
  ]);
  assert.equal(rows.length, 1);
  assert.deepEqual([rows[0].uniform, rows[0].kmeans, rows[0].gain], [9, 11.5, -1.5]);
});

Deno.test("vq: the sweep's bit accounting counts codes and codebooks exactly", async () => {
  const w = syntheticWeights([16, 128], { seed: 2 }).tensor; // 2048 weights, rows of 128
  const pts = await vqSweep(w, { iterations: 5 });
  for (const q of pts) {
    assert.ok(Math.abs(q.bitsPerWeight * 2048 - (q.codeBits + q.sideBits)) < 1e-6, `${q.method} ${q.setting}`);
    assert.ok(Math.abs(q.ratio - 32 / q.bitsPerWeight) < 1e-9);
    assert.ok(q.mse > 0 && Number.isFinite(q.sqnr));
  }
  const find = (m: string, s: string) => pts.find((q) => q.method === m && q.setting === s)!;
  // uniform 3-bit: 3 bits per weight + one float32 scale per row
  assert.deepEqual([find("uniform per-channel", "3-bit").codeBits, find("uniform per-channel", "3-bit").sideBits], [
    6144,
    16 * 32,
  ]);
  // scalar k-means K = 8: 3 bits per weight + 8 float32 levels
  const k8 = find("k-means scalar", "K=8");
  assert.deepEqual([k8.codeBits, k8.sideBits], [6144, 256]);
  // PQ with one shared codebook of 16 four-dimensional centroids: 512 blocks x 4 bits + 16 x 4 x 32 bits
  const s16 = find("PQ d=4, shared", "K=16");
  assert.deepEqual([s16.codeBits, s16.sideBits], [2048, 2048]);
  // PQ with M = 4 codebooks over 16-weight vectors: 128 vectors x 4 codes x 6 bits + 4 x 64 x 4 x 32 bits
  const m64 = find("PQ M=4x4", "K=64");
  const c = pqCompression({ vectors: 128, subvectors: 4, centroids: 64, dimension: 16 });
  assert.deepEqual([m64.codeBits, m64.sideBits], [c.codeBits, c.codebookBits]);
  assert.deepEqual([c.codeBits, c.codebookBits], [128 * 4 * 6, 64 * 16 * 32]);
  // K at least the number of vectors is skipped, not an error (128 vectors of 16, 256 of 8: no K = 256)
  assert.equal(pts.filter((q) => q.method === "PQ M=4x4").length, 3);
  assert.equal(pts.filter((q) => q.method === "PQ d=8, shared").length, 2);
});

Deno.test("vq: error falls as bits grow, within every method", async () => {
  const w = syntheticWeights([32, 256], { seed: 5 }).tensor;
  const pts = await vqSweep(w, { iterations: 10 });
  for (const m of new Set(pts.map((q) => q.method))) {
    const s = pts.filter((q) => q.method === m).sort((a, b) => a.bitsPerWeight - b.bitsPerWeight);
    for (let i = 1; i < s.length; i++) {
      assert.ok(s[i].mse < s[i - 1].mse, `${m}: ${s[i].setting} MSE ${s[i].mse} not below ${s[i - 1].mse}`);
    }
  }
});

Deno.test("vq: scalar k-means with 2^b levels beats the uniform grid of the same levels on bell-shaped weights", () => {
  const w = syntheticWeights([8, 512], { seed: 1, spread: 0 }).tensor;
  const x = Tensor.from([0, 0.1, 5, 5.1, 5.2]);
  const v = scalarKMeans(x, 2);
  assert.ok(Math.abs(v[0] - 0.05) < 1e-6 && Math.abs(v[4] - 5.1) < 1e-6, String(v));
  for (const K of [4, 8, 16]) {
    const km = mse(w, scalarKMeans(w, K));
    // uniform K-level grid over [min, max]
    let lo = Infinity, hi = -Infinity;
    for (const t of w.data) [lo, hi] = [Math.min(lo, t), Math.max(hi, t)];
    const step = (hi - lo) / (K - 1);
    const uni = mse(w, w.data.map((t) => lo + Math.round((t - lo) / step) * step));
    assert.ok(km < uni, `K=${K}: k-means ${km} vs uniform ${uni}`);
  }
});

Deno.test("vq: the quick experiment reports both layers with consistent tables and charts", async () => {
  const r = await vectorQuantizationComparison({ quick: true, progress: "none" });
  assert.equal(r.charts.length, 3);
  const bits = r.table("bits").rows, large = r.table("bits-large").rows;
  assert.equal(bits.length, 22); // 5 uniform + 6 k-means + 4 + 3 + 4 PQ
  assert.ok(large.length >= bits.length);
  for (const row of r.table("equal-bits").rows) {
    const best = Math.max(Number(row.uniform ?? -Infinity), Number(row.kmeans ?? -Infinity));
    assert.ok(Math.abs(Number(row.pq) - best - Number(row.gain)) < 1e-9);
  }
  assert.equal(r.findings.length, 4);
  assert.ok(r.findings[2].holds, r.findingsText()); // codebook share falls with layer size
  assert.match(r.toString(), /SYNTHETIC linear weight \[32, 256\]/);
});

Deno.test("vq: with a model the largest real matrix is used and labelled", async () => {
  const r = await vectorQuantizationComparison({
    quick: true,
    progress: "none",
    model: poolnet,
    modelLabel: "PoolNet",
  });
  assert.match(r.toString(), /linear weight "fc\.weight" \[32, 784\] = 25088 weights of PoolNet \(real trained/);
  assert.equal(r.numbers.weights, 25088);
  // PQ with 4-dim blocks and K = 16 codes each block in 4 bits: 1 bit per weight plus the codebook
  const bpw = r.numbers["bpw.PQ d=4, shared.K=16"];
  assert.ok(Math.abs(bpw - (1 + (16 * 4 * 32) / 25088)) < 1e-12, String(bpw));
});
