import assert from "node:assert/strict";
import { compareOutputs } from "../../lib/ptq/evaluate.ts";
import { readerFromFeeds, readerFromTensors } from "../../lib/data/reader.ts";
import { imageDataset } from "../../lib/data/images.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { NetBuilder } from "../../lib/models/layers.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { twoInputModel } from "../data/_models.ts";

const session = { backend: "auto" as const, threads: 1 };

function data(rows: number, seed: number) {
  const rng = new Prng(seed);
  const a = new Float32Array(rows * 3), b = new Float32Array(rows * 3);
  for (let i = 0; i < a.length; i++) {
    a[i] = rng.nextNormal();
    b[i] = rng.nextNormal();
  }
  return { a: new Tensor<"float32">(a, [rows, 3]), b: new Tensor<"float32">(b, [rows, 1, 3]) };
}

/** KL(softmax(p) || softmax(q)) per row in float64, written out independently. */
function meanKl(p: Float32Array, q: Float32Array, n: number, c: number): number {
  let total = 0;
  for (let i = 0; i < n; i++) {
    const row = (x: Float32Array) => {
      const v = Array.from(x.subarray(i * c, i * c + c));
      const z = v.reduce((s, u) => s + Math.exp(u), 0);
      return v.map((u) => Math.exp(u) / z);
    };
    const P = row(p), Q = row(q);
    total += P.reduce((s, pi, j) => s + pi * Math.log(pi / Q[j]), 0);
  }
  return total / n;
}

Deno.test("compareOutputs: closed forms on a two-input, three-output model (approx = ref * (1 + e))", async () => {
  const e = 0.01;
  const ref = twoInputModel(2), approx = twoInputModel(2 * (1 + e));
  const x = data(10, 1);
  const c = await compareOutputs(ref, approx, readerFromTensors(x, { batchSize: 4 }), session);
  assert.equal(c.batches, 3);
  assert.deepEqual(c.outputs.map((o) => o.name), ["ab", "as", "bs"]);
  const [ab, as, bs] = c.outputs;
  // "ab" does not depend on k: identical.
  assert.deepEqual([ab.sqnrDb, ab.cosine, ab.maxAbsError, ab.meanKl, ab.count], [Infinity, 1, 0, 0, 30]);
  assert.deepEqual(ab.shape, [4, 3]);
  // Scaling by (1 + e): SQNR = -20 log10(e) = 40 dB, cosine 1, max error = 2e max|x|.
  const amax = Math.max(...x.a.data.map(Math.abs)), bmax = Math.max(...x.b.data.map(Math.abs));
  for (const [o, m] of [[as, amax], [bs, bmax]] as const) {
    assert.ok(Math.abs(o.sqnrDb - -20 * Math.log10(e)) < 1e-4, `${o.name} ${o.sqnrDb}`);
    assert.ok(Math.abs(o.cosine - 1) < 1e-7, `${o.name} cosine ${o.cosine}`);
    assert.ok(Math.abs(o.maxAbsError - 2 * e * m) < 1e-5 * m, `${o.name} max ${o.maxAbsError}`);
    assert.equal(o.count, 30);
  }
  // KL only for the 2-D output; the 3-D one has none.
  const kl = meanKl(
    x.a.data.map((v) => Math.fround(v * 2)),
    x.a.data.map((v) => Math.fround(v * Math.fround(2 * (1 + e)))),
    10,
    3,
  );
  assert.ok(as.meanKl! > 0 && Math.abs(as.meanKl! - kl) < 1e-9 + 1e-6 * kl, `${as.meanKl} vs ${kl}`);
  assert.equal(bs.meanKl, undefined);
  assert.deepEqual(bs.shape, [4, 1, 3]);
  assert.ok(c.identity.startsWith("tensors:"));
});

Deno.test("compareOutputs: a sign flip gives SQNR 10 log10(1 / 4) dB and cosine -1", async () => {
  // k = 1 against k = -1: noise = (2a)^2, so SQNR = 10 log10(1 / 4) and cosine = -1.
  const c = await compareOutputs(twoInputModel(1), twoInputModel(-1), [data(6, 2)], {
    ...session,
    outputs: ["as"],
  });
  assert.equal(c.outputs.length, 1);
  assert.ok(Math.abs(c.outputs[0].sqnrDb - 10 * Math.log10(1 / 4)) < 1e-9);
  assert.ok(Math.abs(c.outputs[0].cosine + 1) < 1e-9);
});

Deno.test("compareOutputs: a single-input classifier compared on a dataset directly", async () => {
  const net = new NetBuilder({ channels: 1, height: 2, width: 2, seed: 0 });
  const model = net.finish(net.linear("fc", net.flatten(net.input), 4, 3), "toy");
  const ds = imageDataset({
    name: "toy",
    pixels: Uint8Array.from({ length: 40 }, (_, i) => (i * 37) % 256),
    labels: new Uint8Array(10),
    height: 2,
    width: 2,
  });
  const c = await compareOutputs(model, model, ds, { ...session, batchSize: 4 });
  assert.equal(c.batches, 3);
  assert.equal(c.outputs[0].sqnrDb, Infinity);
  assert.equal(c.outputs[0].meanKl, 0);
  assert.ok(c.identity.startsWith("dataset:toy"));
});

Deno.test("compareOutputs: typed errors for mismatched models and data", async () => {
  const ref = twoInputModel(2);
  const x = data(2, 3);
  const bad = (p: Promise<unknown>, re: RegExp) =>
    assert.rejects(p, (e) => e instanceof QuantlabError && re.test(e.message));
  await bad(compareOutputs(ref, ref, [x], { ...session, outputs: ["nope"] }), /no graph output\(s\) nope/);
  await bad(compareOutputs(ref, ref, readerFromFeeds([{ a: x.a }]), session), /missing b/);
  await bad(compareOutputs(ref, ref, 7 as never, session), /expected calibration data.*got number 7/);
  const net = new NetBuilder({ channels: 1, height: 1, width: 3, seed: 0 });
  const other = net.finish(net.linear("fc", net.flatten(net.input), 3, 3), "other");
  await bad(compareOutputs(ref, other, [x], session), /other lacks input\(s\) a, b/);
});
