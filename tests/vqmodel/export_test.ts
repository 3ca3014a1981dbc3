// Compressed ONNX export: Gather(codebook, codes) (+ unpacking, Reshape, Transposes) decodes to exactly the
// reconstructed weights, in onnxruntime-node and onnxruntime-web; codes in the smallest type; atomic save.
import assert from "node:assert/strict";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { emptyModel } from "../../lib/onnx/proto.ts";
import { createSession } from "../../lib/onnx/session.ts";
import { DataType, makeTensorProto } from "../../lib/onnx/tensor_data.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { exportCompressed } from "../../lib/vqmodel/export.ts";
import { fitKMeansLayer, fitPqLayer, initializerValues, weightSites } from "../../lib/vqmodel/fit.ts";
import { reconstructedModel } from "../../lib/vqmodel/finetune.ts";
import type { VqLayer } from "../../lib/vqmodel/layer.ts";
import { vqModel } from "../../lib/vqmodel/vq_model.ts";
import { fixtureInput, fixtureLayers, fixtures, tinyModel, tinyPath } from "./_fixtures.ts";

async function logits(model: OnnxModel, x: Tensor<"float32">, backend: "node" | "web"): Promise<Float32Array> {
  const s = await createSession(model, { backend, cache: false });
  const out = await s.run({ [s.inputNames[0]]: x });
  await s.release();
  return out[s.outputNames[0]].data as Float32Array;
}

async function assertSameOutputs(float: OnnxModel, layers: VqLayer[], x: Tensor<"float32">, pack: boolean) {
  const inMemory = reconstructedModel(float, layers);
  const { model, layers: stored } = exportCompressed(inMemory, layers, { pack });
  const bytes = model.encode();
  const back = OnnxModel.decode(bytes, "compressed");
  for (const l of layers) {
    assert.ok(!back.graph.initializer.some((t) => t.name === l.weight), `${l.weight} still float`);
  }
  for (const backend of ["node", "web"] as const) {
    const want = await logits(inMemory, x, backend);
    const got = await logits(back, x, backend);
    assert.deepEqual([...got], [...want], `${backend}: compressed outputs differ (pack ${pack})`);
  }
  return { bytes, stored };
}

Deno.test("export: fixture k-means and PQ layouts (flat, channels) decode exactly in ORT node and web", async () => {
  const float = await tinyModel();
  const x = fixtureInput();
  for (const c of fixtures.cases) {
    for (const pack of [true, false]) {
      const { stored } = await assertSameOutputs(float, fixtureLayers(float, c), x, pack);
      // packed: exactly ceil(log2 k) bits (k = 4: 2 bits, k = 3: 2-bit codes, k = 5: 3-bit planes); else a byte
      for (const s of stored) assert.ok(s.codeBits === 8 || (pack && s.codeBits <= 3), `${c.name} ${s.codeBits}`);
    }
  }
});

function matmulModel(inF: number, outF: number, seed: number): OnnxModel {
  const p = emptyModel(17);
  const w = new Prng(seed).fillNormal(new Float32Array(inF * outF)) as Float32Array;
  p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ param: "N" }, { value: inF }] } } });
  p.graph.initializer.push(makeTensorProto("W", w, [inF, outF]));
  p.graph.node.push({ input: ["x", "W"], output: ["y"], name: "mm", opType: "MatMul", domain: "", attribute: [] });
  p.graph.output.push({ name: "y", type: { tensorType: { elemType: 1 } } });
  return OnnxModel.fromProto(p, "matmul");
}

Deno.test("export: MatMul weight (axis 1, Transpose back), 1/4-bit packing, 3/5-bit planes, uint16, f16 codebook", async () => {
  const float = matmulModel(64, 16, 1);
  const site = weightSites(float)[0];
  assert.equal(site.axis, 1);
  const w = initializerValues(float, "W");
  const x = new Tensor<"float32">(new Prng(2).fillNormal(new Float32Array(3 * 64)) as Float32Array, [3, 64]);
  const cases: [VqLayer, number][] = [
    [fitPqLayer(site, w, { k: 16, blockSize: 4 }), 4],
    [fitPqLayer(site, w, { k: 2, blockSize: 8 }), 1],
    [fitKMeansLayer(site, w, { k: 8 }), 3],
    [fitPqLayer(site, w, { k: 32, blockSize: 2 }), 5],
    [fitKMeansLayer(site, w, { k: 300 }), 16],
    [fitPqLayer(site, w, { k: 16, blockSize: 4, codebookBits: 16 }), 4],
  ];
  for (const [layer, bits] of cases) {
    const { bytes, stored } = await assertSameOutputs(float, [layer], x, true);
    assert.equal(stored[0].codeBits, bits);
    const m = OnnxModel.decode(bytes);
    const codes = m.graph.initializer.find((t) => t.name.startsWith("W.codes"))!;
    assert.equal(codes.dataType, bits === 16 ? DataType.UINT16 : DataType.UINT8);
    const cb = m.graph.initializer.find((t) => t.name.startsWith("W.codebook"))!;
    assert.equal(cb.dataType, layer.codebookBits === 16 ? DataType.FLOAT16 : DataType.FLOAT);
    assert.equal(stored[0].codebookBytes, (layer.codebookBits / 8) * layer.codebook.length);
    if (layer.codebookBits === 16) assert.ok(layer.codebook.every((v) => Math.f16round(v) === v));
    // stored bits per code: exactly ceil(log2 k) packed (bit planes for 3 and 5), two bytes above 256 centroids
    const planes = bits === 3 || bits === 5;
    const want = planes ? bits * Math.ceil(layer.blocks / 8) : Math.ceil((layer.blocks * bits) / 8);
    assert.equal(stored[0].codeBytes, want);
  }
});

Deno.test("save: digits CNN k-means 2 bits, smaller file, same accuracy, never overwrites the source", async () => {
  const model = await OnnxModel.load("datasets/models/digits_cnn.onnx");
  const q = await vqModel(model).kmeans({ bits: 2 }).quantize();
  const dir = await Deno.makeTempDir();
  try {
    const bytes = await q.save(`${dir}/digits_k4.onnx`);
    const floatBytes = (await Deno.readFile("datasets/models/digits_cnn.onnx")).length;
    assert.ok(bytes.length < floatBytes / 4, `${bytes.length} vs ${floatBytes}`);
    const x = new Tensor<"float32">(new Prng(3).fillNormal(new Float32Array(4 * 64)) as Float32Array, [4, 1, 8, 8]);
    const back = await OnnxModel.load(`${dir}/digits_k4.onnx`);
    assert.deepEqual([...await logits(back, x, "node")], [...await logits(q.model, x, "node")]);
    await assert.rejects(
      () => q.save("datasets/models/digits_cnn.onnx"),
      (e: Error & { code?: string }) => e.code === "IO",
    );
    const tiny = await vqModel(await tinyModel()).kmeans({ bits: 1 }).quantize();
    await assert.rejects(() => tiny.save(tinyPath), (e: Error & { code?: string }) => e.code === "IO");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
