// The per-layer latency table (lib/mixed/latency.ts): the 4-bit MatMulNBits probe computes x W^T with the packed
// codes dequantized as (q - 8) * scale on both ONNX Runtime bindings; the int8 probes run with the captured shapes;
// the table is cached by key; and a latency budget from a measured table changes the allocation compared with the
// size proxy.
import assert from "node:assert/strict";
import { HawqAnalysis, type HawqLayer } from "../../lib/mixed/hawq.ts";
import {
  latencyForBits,
  latencyTable,
  layerProbe,
  type MeasuredLatency,
  measureLayerLatency,
  packNBits,
} from "../../lib/mixed/latency.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { createSession } from "../../lib/onnx/session.ts";
import { tensorValues } from "../../lib/onnx/tensor_data.ts";
import { QuantPlan } from "../../lib/ptq/plan.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";

const digits = await OnnxModel.load(new URL("../../datasets/models/digits_cnn.onnx", import.meta.url).pathname);

Deno.test("MatMulNBits probe: y = x (dequant W)^T with W = (q - 8) * scale, packed low nibble first (node, web)", async () => {
  // fc of the digits CNN: Gemm [N, 32] x [10, 32]^T (transB), K = 32 < block 32 boundary cases via K = 32.
  const shapes = { input: [3, 32], output: [3, 10] };
  const probe = layerProbe(digits, "fc", "int4", shapes, 7)!;
  assert.equal(probe.op, "MatMulNBits");
  const g = probe.model.graph;
  const packed = tensorValues(g.initializer.find((t) => t.name === "w")!) as Uint8Array;
  const scale = tensorValues(g.initializer.find((t) => t.name === "w_scale")!) as Float32Array;
  const K = 32, N = 10, block = 32, blocks = Math.ceil(K / block);
  const x = (probe.feeds.x as { data: Float32Array }).data;
  const want = new Float64Array(3 * N);
  for (let r = 0; r < 3; r++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const byte = packed[n * blocks * (block / 2) + Math.floor(k / block) * (block / 2) + ((k % block) >> 1)];
        const q = k & 1 ? byte >> 4 : byte & 15;
        s += x[r * K + k] * (q - 8) * scale[n * blocks + Math.floor(k / block)];
      }
      want[r * N + n] = s;
    }
  }
  for (const backend of ["node", "web"] as const) {
    const s = await createSession(probe.model, { backend, threads: 1, cache: false });
    const y = (await s.run(probe.feeds)).y;
    await s.release();
    assert.deepEqual(y.shape, [3, 10]);
    for (let i = 0; i < want.length; i++) {
      assert.ok(
        Math.abs(y.data[i] - want[i]) <= 1e-4 * (1 + Math.abs(want[i])),
        `${backend} ${i}: ${y.data[i]} vs ${want[i]}`,
      );
    }
  }
  // packNBits with a partial last block (K = 40, block 32): row stride 2 blocks x 16 bytes, padding zero.
  const codes = Uint8Array.from({ length: 2 * 40 }, (_, i) => i % 16);
  const p = packNBits(codes, 2, 40, 32);
  assert.equal(p.length, 2 * 2 * 16);
  assert.equal(p[32 + 16 + 3], (((40 + 39) % 16) << 4) | ((40 + 38) % 16)); // row 1, block 1, codes 38/39
  assert.equal(p[16 + 4], 0); // row 0, block 1 beyond K: zero
  assert.equal(layerProbe(digits, "conv1", "int4", { input: [1, 1, 8, 8], output: [1, 16, 8, 8] }, 0), undefined);
});

Deno.test("measured table: every conv has float32 and QLinearConv timings with the captured shapes; cached by key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const opts = { backend: "node" as const, batch: 2, runs: 5, warmup: 1, cacheDir: dir };
    const t = await measureLayerLatency(digits, opts);
    assert.deepEqual(t.layers.map((l) => l.node), ["conv1", "conv2", "conv3", "fc"]);
    assert.deepEqual(t.layers[0].inputShape, [2, 1, 8, 8]);
    assert.equal(t.layers[2].inputShape[0], 2);
    for (const l of t.layers) {
      const k = l.kernels;
      assert.ok(k.float32!.median > 0 && k.float32!.min <= k.float32!.q1 && k.float32!.q3 <= k.float32!.max);
      assert.equal(k.float32!.runs, 5);
      assert.equal(k.int8!.op, l.opType === "Conv" ? "QLinearConv" : "QGemm");
      assert.equal(k.int4?.op, l.opType === "Conv" ? undefined : "MatMulNBits");
    }
    assert.equal(t.key.model.length, 64);
    // Same key: read back from the cache (same measuredAt); another batch: measured again.
    const again = await measureLayerLatency(digits, opts);
    assert.equal(again.measuredAt, t.measuredAt);
    assert.deepEqual(again.layers, t.layers);
    const other = await measureLayerLatency(digits, { ...opts, batch: 1, nodes: ["conv2"] });
    assert.deepEqual(other.layers.map((l) => l.node), ["conv2"]);
    assert.deepEqual(other.layers[0].inputShape.slice(0, 2), [1, 16]);
    assert.equal([...Deno.readDirSync(dir)].length, 2);
    // Another kernel set is another key: measured again, only float32.
    const floatOnly = await measureLayerLatency(digits, { ...opts, kernels: ["float32"] });
    assert.notEqual(floatOnly.measuredAt, t.measuredAt);
    assert.deepEqual(Object.keys(floatOnly.layers[0].kernels), ["float32"]);
    await assert.rejects(() => measureLayerLatency(digits, { ...opts, nodes: ["bn1"] }), /not a weight layer/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a latency budget from a measured table changes the allocation compared with the size proxy", async () => {
  // Two layers of equal sensitivity: "big" has 4x the weights but a fast int8 kernel; "slow" is small but slow.
  const t = (median: number, op: string) => ({ op, median, min: median, q1: median, q3: median, max: median, runs: 1 });
  const measured: MeasuredLatency = {
    version: 1,
    measuredAt: "",
    key: { model: "", backend: "node", threads: 1, batch: 8, runs: 1, warmup: 0, ort: "" },
    layers: [
      {
        node: "big",
        opType: "Conv",
        inputShape: [],
        weightShape: [],
        outputShape: [],
        kernels: { float32: t(0.3, "Conv"), int8: t(0.1, "QLinearConv") },
      },
      {
        node: "slow",
        opType: "Conv",
        inputShape: [],
        weightShape: [],
        outputShape: [],
        kernels: { float32: t(2, "Conv"), int8: t(1, "QLinearConv") },
      },
    ],
  };
  assert.deepEqual(latencyForBits(measured.layers[1], 2), { ms: 0.25, source: "bops-model", op: "QLinearConv x 2/8" });
  assert.equal(latencyForBits(measured.layers[1], 32).ms, 2);
  const q = quantizer().int(8).perChannel();
  const layer = (node: string, params: number): HawqLayer => ({
    node,
    tensor: `${node}.w`,
    opType: "Conv",
    params,
    macs: params * 100,
    activationBits: 8,
    bits: [2, 8],
    trace: {
      tensor: `${node}.w`,
      params,
      trace: 1,
      tracePerParam: 1 / params,
      stderr: 0,
      iterations: 1,
      converged: true,
    },
    delta2: { 2: 1, 8: 0.01 },
    sensitivity: { 2: 1, 8: 0.01 },
  });
  const plan = new QuantPlan(
    [["big", 4000], ["slow", 1000]].map(([n]) => ({
      kind: "weight" as const,
      tensor: `${n}.w`,
      role: "weight" as const,
      node: n as string,
      opType: "Conv",
      axis: 0,
      quantizer: q,
      bits: 8,
    })),
  );
  const a = new HawqAnalysis(
    [layer("big", 4000), layer("slow", 1000)],
    [],
    plan,
    (_e, b) => q.int(b),
    latencyTable(measured, [2, 8]),
  );
  // Half the way from all-2-bit to all-8-bit, by size and by latency.
  const bySize = await a.allocate({ size: a.budgetAt("size", 2, 8, 0.5) });
  const byLatency = await a.allocate({ latency: a.budgetAt("latency", 2, 8, 0.5) });
  assert.deepEqual(bySize.bits, { big: 2, slow: 8 });
  assert.deepEqual(byLatency.bits, { big: 8, slow: 2 });
});
