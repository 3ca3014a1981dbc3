import assert from "node:assert/strict";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { clearSessionCache, createSession, loadBackend } from "../../lib/onnx/session.ts";
import { captureShapes } from "../../lib/onnx/capture.ts";
import { QuantlabError } from "../../lib/errors.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { b64f32, modelPath, reference } from "./_fixtures.ts";

const x = new Tensor(b64f32(reference.inputs), [8, 1, 28, 28]);

Deno.test("ORT outputs match PyTorch on both backends, and the backends agree", async () => {
  for (
    const [name, ref] of [["resnet8_op13", reference.resnet8], ["resnet8_op17", reference.resnet8], [
      "poolnet_op17",
      reference.poolnet,
    ]] as const
  ) {
    const want = b64f32(ref.logits);
    const outs: Float32Array[] = [];
    for (const backend of ["node", "web"] as const) {
      const s = await createSession(await OnnxModel.load(modelPath(name)), { backend });
      assert.equal(s.backend, backend);
      const y = (await s.run({ input: x })).logits;
      assert.deepStrictEqual(y.shape, [8, 10]);
      const d = y.data as Float32Array;
      for (let i = 0; i < want.length; i++) {
        assert.ok(Math.abs(d[i] - want[i]) <= 1e-4 * (1 + Math.abs(want[i])), `${name} ${backend} ${i}`);
      }
      outs.push(d);
    }
    for (let i = 0; i < outs[0].length; i++) {
      assert.ok(Math.abs(outs[0][i] - outs[1][i]) <= 1e-4 * (1 + Math.abs(outs[0][i])));
    }
  }
});

Deno.test("sessions: auto picks native, caching, threads, bad feeds are typed errors", async () => {
  assert.equal((await loadBackend("auto")).backend, "node");
  const bytes = await Deno.readFile(modelPath("poolnet_op17"));
  const a = await createSession(bytes, { backend: "node", threads: 1 });
  assert.equal(await createSession(bytes, { backend: "node", threads: 1 }), a);
  // The optimization level is part of the cache key; a bad level is a typed error.
  const unoptimized = await createSession(bytes, { backend: "node", threads: 1, optimization: "disabled" });
  assert.notEqual(unoptimized, a);
  assert.equal(await createSession(bytes, { backend: "node", threads: 1, optimization: "all" }), a);
  const calm = await createSession(bytes, { backend: "node", threads: 2, spinning: false });
  assert.notEqual(calm, await createSession(bytes, { backend: "node", threads: 2 }));
  const x = Tensor.zeros([1, 1, 28, 28]);
  assert.deepStrictEqual(
    [...(await calm.run({ input: x }))[calm.outputNames[0]].data],
    [
      ...(await createSession(bytes, { backend: "node", threads: 2 }).then((s) => s.run({ input: x })))[
        calm.outputNames[0]
      ].data,
    ],
  );
  // Parallel execution on inter-op threads: a separate cached session, same outputs; a bad count is a typed error.
  const wide = await createSession(bytes, { backend: "node", threads: 1, interOpThreads: 2 });
  assert.notEqual(wide, a);
  assert.deepStrictEqual(
    [...(await wide.run({ input: x }))[wide.outputNames[0]].data],
    [...(await a.run({ input: x }))[a.outputNames[0]].data],
  );
  await assert.rejects(
    createSession(bytes, { backend: "node", interOpThreads: 0 }),
    (e: unknown) => e instanceof QuantlabError && /interOpThreads/.test(e.message),
  );
  await assert.rejects(
    createSession(bytes, { optimization: "fast" as "all" }),
    (e: unknown) => e instanceof QuantlabError && /optimization/.test(e.message),
  );
  assert.equal(a.threads, 1);
  assert.deepStrictEqual(a.inputNames, ["input"]);
  await assert.rejects(a.run({}), (e: unknown) => e instanceof QuantlabError && /missing feed "input"/.test(e.message));
  await assert.rejects(
    a.run({ input: Tensor.zeros([1, 1, 27, 28]) }),
    (e: unknown) => e instanceof QuantlabError && (e.code === "SHAPE_MISMATCH" || e.code === "INVALID_ARGUMENT"),
  );
  await assert.rejects(
    createSession(new Uint8Array([8, 1]), { backend: "web" }),
    (e: unknown) => e instanceof QuantlabError && e.code === "MALFORMED_MODEL",
  );
  await clearSessionCache();
});

Deno.test("captureShapes records every intermediate's shape on the IR", async () => {
  const m = await OnnxModel.load(modelPath("resnet8_op13"));
  await captureShapes(m, { input: Tensor.zeros([2, 1, 28, 28]) });
  assert.deepStrictEqual(m.shape("/layer3/Relu_1_output_0"), [2, 32, 7, 7]);
  assert.deepStrictEqual(m.shape("/Flatten_output_0"), [2, 32]);
  assert.deepStrictEqual(m.declaredShape("input"), [-1, 1, 28, 28]);
});
