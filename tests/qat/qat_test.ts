/**
 * QAT on the digits CNN (datasets/models/digits_cnn.onnx, 99.2 % float): W4A4 (LSQ) and W2A2 (STE, first and last
 * layers at 8 bits) improve over PTQ at the same bits; the exported QDQ model's accuracy equals the training graph's
 * and QOperator agrees; distillation; checkpoints with the guarded writer; builder validation.
 */
import assert from "node:assert/strict";
import { trainTestSplit } from "../../lib/data/batching.ts";
import { loadDigits } from "../../lib/data/digits.ts";
import { evaluateModel } from "../../lib/grad/train.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { tensorValues } from "../../lib/onnx/tensor_data.ts";
import { ptq } from "../../lib/ptq/pipeline.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";
import { qat } from "../../lib/qat/mod.ts";

const MODEL = new URL("../../datasets/models/digits_cnn.onnx", import.meta.url);
const NODE = { backend: "node" as const, threads: 2 };
const { train, test } = trainTestSplit(await loadDigits(), { testFraction: 0.2, seed: 0 });

function base(model: OnnxModel, bits: number) {
  return ptq(model).weights(quantizer().int(bits).symmetric().perChannel())
    .activations(quantizer().uint(bits).asymmetric()).calibrateOn(train, { count: 512 }).session(NODE);
}

async function ptqAccuracy(p: ReturnType<typeof base>): Promise<number> {
  return (await evaluateModel((await p.quantize()).qdq, test, { session: NODE })).accuracy;
}

Deno.test("qat digits W4A4 LSQ: beats PTQ; QDQ export accuracy equals the training graph's; QOperator agrees", async () => {
  const model = await OnnxModel.load(MODEL);
  const p = base(model, 4);
  const before = await ptqAccuracy(p);
  const r = await qat(p).fakeQuant({ weights: "lsq", activations: "lsq" }).optimizer({ kind: "adam", lr: 1e-3 })
    .epochs(3).train(train, { test });
  const ev = await r.evaluate(test);
  assert.equal(r.history.length, 3);
  assert.equal(ev.training, r.history[2].testAccuracy, "final evaluation = last epoch's training-graph accuracy");
  assert.equal(ev.qdq, ev.training, `QDQ ${ev.qdq} vs training graph ${ev.training}`);
  assert.ok(
    ev.qoperator !== undefined && Math.abs(ev.qoperator - ev.training) <= 1 / test.count + 1e-9,
    `${ev.qoperator}`,
  );
  assert.ok(ev.qdq > before + 0.01, `QAT ${ev.qdq} vs PTQ ${before}`);
  assert.ok(ev.qdq >= 0.97, `${ev.qdq}`);
  // The learned steps reached the export: the QDQ weight scales are the trained LSQ steps.
  const w = r.state.plan!.weights[1].tensor;
  const step = r.params.get(r.run.trainable.quantizerParams.get(w)!.param)!;
  const scale = r.qdq.graph.initializer.find((t) => t.name === `${w}_scale`)!;
  assert.deepStrictEqual([...(tensorValues(scale) as Float32Array)], [...step]);
});

Deno.test("qat digits W2A2 (STE, first/last 8-bit): far above PTQ at the same bits; export matches", async () => {
  const model = await OnnxModel.load(MODEL);
  const p = base(model, 2).firstLast(8);
  const before = await ptqAccuracy(p);
  const r = await qat(p).optimizer({ kind: "adam", lr: 1e-3 }).epochs(6).seed(1).train(train, { test });
  const ev = await r.evaluate(test);
  assert.equal(ev.qdq, ev.training);
  assert.ok(
    ev.qoperator !== undefined && Math.abs(ev.qoperator - ev.training) <= 1 / test.count + 1e-9,
    `${ev.qoperator}`,
  );
  assert.ok(ev.qdq > before + 0.3, `QAT ${ev.qdq} vs PTQ ${before}`);
});

Deno.test("qat PACT with distillation from the float model; checkpoints refuse the source path", async () => {
  const model = await OnnxModel.load(MODEL);
  const dir = await Deno.makeTempDir();
  try {
    const q = qat(base(model, 4)).fakeQuant({ activations: "pact" }).pact({ init: 8, decay: 2e-4 })
      .distill(model, { alpha: 0.5, beta: 0.5, temperature: 4 }).optimizer({ kind: "adam", lr: 1e-3 }).epochs(2)
      .checkpoint(`${dir}/ckpt_{epoch}.onnx`);
    assert.ok(q.toString().includes("distill(") && q.toString().includes("pact(init=8"), q.toString());
    const r = await q.train(train, { test });
    const ev = await r.evaluate(test);
    assert.equal(ev.qdq, ev.training);
    assert.ok(ev.training > 0.9, `${ev.training}`);
    const alphas = [...r.run.trainable.quantizerParams.values()].filter((p) => p.kind === "pact");
    assert.ok(alphas.length >= 3 && alphas.every((a) => r.params.get(a.param)![0] !== 8), "alphas were learned");
    const ck = await OnnxModel.load(`${dir}/ckpt_2.onnx`);
    assert.equal((await evaluateModel(ck, test, { session: NODE })).accuracy, r.history[1].testAccuracy);
    const meta = Object.fromEntries(ck.proto.metadataProps.map((e) => [e.key, e.value]));
    assert.equal(meta.epoch, "2");
    await r.save("qoperator", `${dir}/out.onnx`);
    await assert.rejects(() => r.save("qdq", MODEL.pathname), (e: Error & { code?: string }) => e.code === "IO");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("qat builder validates eagerly and is immutable", async () => {
  const model = await OnnxModel.load(MODEL);
  const a = qat(model);
  const b = a.epochs(3).fakeQuant({ weights: "lsq" });
  assert.equal(a.recipe.epochs, 1);
  assert.equal(b.recipe.weights, "lsq");
  const bad = (f: () => unknown) => assert.throws(f, (e: Error & { code?: string }) => e.code === "INVALID_ARGUMENT");
  bad(() => a.epochs(0));
  bad(() => a.batchSize(1));
  bad(() => a.fakeQuant({ weights: "pact" as "ste" }));
  bad(() => a.pact({ init: -1 }));
  bad(() => a.distill(model, { alpha: 0, beta: 0 }));
  bad(() => a.optimizer({ kind: "rmsprop" as "adam", lr: 1 }));
  bad(() => a.from("scratch" as "ptq"));
});
