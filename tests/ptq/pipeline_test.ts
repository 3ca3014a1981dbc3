import assert from "node:assert/strict";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { createSession } from "../../lib/onnx/session.ts";
import { loadFashionMnist } from "../../lib/data/fashion_mnist.ts";
import { subset } from "../../lib/data/batching.ts";
import { ptq } from "../../lib/ptq/pipeline.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { minMax } from "../../lib/quant/calibrate/min_max.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { fashionMnistAvailable, modelPath, reference } from "../onnx/_fixtures.ts";

const ignore = !fashionMnistAvailable();

Deno.test({
  name:
    "PTQ W8A8 per-channel on the residual net: QDQ within 0.5 points of float on all 10k test images; QOperator within 1 LSB",
  ignore,
  fn: async () => {
    const [train, test] = await Promise.all([loadFashionMnist("train"), loadFashionMnist("test")]);
    const model = await OnnxModel.load(modelPath("resnet8_op13"));
    const pipeline = ptq(model)
      .weights(quantizer().int(8).symmetric().perChannel())
      .activations(quantizer().uint(8).asymmetric().calibrate(minMax()))
      .calibrateOn(train, { count: 1024 })
      .batchSize(500)
      .session({ backend: "node" });
    const report = await pipeline.evaluate(test, { sqnrImages: 500 });
    const float = report.top1("float")!, qdq = report.top1("qdq")!, qop = report.top1("qoperator")!;
    assert.ok(
      Math.abs(float - reference.resnet8.accuracy) < 1e-3,
      `float ${float} vs torch ${reference.resnet8.accuracy}`,
    );
    assert.ok(float - qdq <= 0.005, `QDQ ${qdq} vs float ${float}`);
    assert.ok(report.data.qoperatorMaxLsb! <= 1, `QOperator differs by ${report.data.qoperatorMaxLsb} LSB`);
    assert.ok(Math.abs(qop - qdq) <= 0.002);
    assert.deepStrictEqual(report.data.floatNodes, []);
    assert.ok(report.data.layerSqnr.length >= 10 && report.data.layerSqnr.every((l) => l.sqnrDb > 15 && l.sqnrDb < 60));
    assert.ok(report.data.outputKl > 0 && report.data.outputKl < 0.01);
    assert.ok(report.data.rows[2].bytes < report.data.rows[0].bytes / 2.5, "int8 weights shrink the model");
    assert.match(report.toString(), /qoperator/);
    console.log(report.toString());

    // The same QDQ/QOperator models on onnxruntime-web agree with native (first 1000 test images).
    const qdqModel = OnnxModel.decode(await pipeline.export("qdq"));
    const qopModel = OnnxModel.decode(await pipeline.export("qoperator"));
    assert.ok(
      qopModel.graph.node.filter((n) => n.opType === "QuantizeLinear" || n.opType === "DequantizeLinear").length === 2,
    );
    const small = subset(test, 0, 1000);
    const webReport = await ptq(model).calibrateOn(train, { count: 1024 }).batchSize(500).session({ backend: "web" })
      .evaluate(small, { sqnrImages: 100 });
    assert.ok(webReport.data.qoperatorMaxLsb! <= 1);
    const x = (await import("../../lib/data/batching.ts")).batches(small, { batchSize: 200 }).next().value!.x;
    for (const m of [qdqModel, qopModel]) {
      const a = (await (await createSession(m, { backend: "node" })).run({ input: x })).logits.data as Float32Array;
      const b = (await (await createSession(m, { backend: "web" })).run({ input: x })).logits.data as Float32Array;
      const scale = 0.2; // generous bound: outputs are on a ~0.05-0.1 grid; allow 1-2 LSB flips between backends
      for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= scale, `node/web ${i}: ${a[i]} ${b[i]}`);
    }
  },
});

Deno.test({
  name: "PTQ on the Gemm/MatMul/MaxPool/AveragePool model: lowering, float fallbacks listed, atomic save",
  ignore,
  fn: async () => {
    const [train, test] = await Promise.all([loadFashionMnist("train"), loadFashionMnist("test")]);
    const path = modelPath("poolnet_op17");
    const model = await OnnxModel.load(path);
    const p = ptq(model).calibrateOn(train, { count: 512 }).batchSize(256).session({ backend: "node" });
    const report = await p.evaluate(subset(test, 0, 2000), { sqnrImages: 256 });
    const { qoperator } = await p.quantize();
    const ops = qoperator.model.graph.node.map((n) => n.opType);
    for (const op of ["QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd", "MaxPool", "QLinearAveragePool"]) {
      assert.ok(ops.includes(op), op);
    }
    assert.ok(report.top1("float")! - report.top1("qdq")! <= 0.01, report.toString());
    assert.ok(report.data.qoperatorMaxLsb! <= 1, report.toString());
    // Writing: atomic, and never over the input.
    await assert.rejects(p.save("qdq", path), (e: unknown) => e instanceof QuantlabError && e.code === "IO");
    const dir = await Deno.makeTempDir();
    await p.save("qoperator", `${dir}/q.onnx`);
    assert.deepStrictEqual(await Deno.readFile(`${dir}/q.onnx`), await p.export("qoperator"));
    assert.deepStrictEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["q.onnx"]);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("PTQ pipeline argument errors", async () => {
  const model = await OnnxModel.load(modelPath("poolnet_op17"));
  assert.throws(
    () => ptq(model).activations(quantizer().uint(8).perChannel(1)),
    (e: unknown) => e instanceof QuantlabError && e.code === "UNSUPPORTED",
  );
  // Weights wider than 8 bits have no int8 QDQ form: they are accepted and stored as fake-quantized floats.
  ptq(model).weights(quantizer().int(12));
  assert.throws(
    () => ptq(model).weights({} as never),
    (e: unknown) => e instanceof QuantlabError && e.code === "INVALID_ARGUMENT",
  );
  await assert.rejects(
    ptq(model).export("qdq"),
    (e: unknown) => e instanceof QuantlabError && e.code === "NOT_CALIBRATED",
  );
  assert.throws(
    () => ptq(model).calibrateOn([]),
    (e: unknown) => e instanceof QuantlabError && (e.code === "EMPTY_TENSOR" || e.code === "INVALID_ARGUMENT"),
  );
  await assert.rejects(
    ptq(model).export("int4" as "qdq"),
    (e: unknown) => e instanceof QuantlabError && e.code === "INVALID_ARGUMENT",
  );
});
