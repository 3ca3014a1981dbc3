/**
 * Reproduction (not product code): ONNX Runtime's training-mode BatchNormalization updates its running-mean and
 * running-variance INPUTS in place when its running outputs are consumed inside the graph (the CPU kernel is registered
 * with `Alias(3, 1).Alias(4, 2)`), initializers included. With momentum 0.3 and the running mean read by a Reshape, the
 * running-mean output drifts from run to run on the same input; read by an Identity that ends up a graph output, it
 * does not. With momentum 0 the outputs are the batch statistics and do not drift, but the initializer still gets
 * overwritten, which is why `buildGradientGraph` keeps those outputs as graph outputs and gives each node private
 * running inputs (`lib/grad/compiler.ts`). Run: `deno run -A benchmarks/ort_bn_alias_repro.ts`.
 *
 * Finding (2026-12-03, onnxruntime 1.30.0, node and web alike): "reshape mom 0.3" prints three different values.
 *
 * @module
 */
import { createSession } from "../lib/onnx/session.ts";
import { OnnxModel } from "../lib/onnx/model.ts";
import { emptyModel } from "../lib/onnx/proto.ts";
import { floatAttr, GraphBuilder, intAttr } from "../lib/onnx/graph.ts";
import { Tensor } from "../lib/tensor/tensor.ts";
const f32 = (name: string, dims: number[]) => ({
  name,
  type: { tensorType: { elemType: 1, shape: dims.map((value) => ({ value })) } },
});
for (const variant of ["reshape", "mul-direct", "identity"]) {
  for (const mom of [0, 0.3]) {
    for (const backend of ["node", "web"] as const) {
      const m = emptyModel(17);
      const b = new GraphBuilder(m.graph);
      m.graph.input.push(f32("x", [2, 3, 2, 2]));
      const s = b.initializer("s", Float32Array.from([1, 2, 3]), [3]),
        bb = b.initializer("b", Float32Array.from([0.1, 0.2, 0.3]), [3]);
      const rm = b.initializer("rm", Float32Array.from([1, 2, 3]), [3]),
        rv = b.initializer("rv", Float32Array.from([4, 5, 6]), [3]);
      b.node("BatchNormalization", ["x", s, bb, rm, rv], {
        outputs: ["y", "m", "v"],
        attributes: [intAttr("training_mode", 1), floatAttr("momentum", mom), floatAttr("epsilon", 1e-3)],
      });
      if (variant === "reshape") {
        const cs = b.initializer("cs", BigInt64Array.from([3n]), [1]);
        const [m4] = b.node("Reshape", ["m", cs]);
        b.node("Identity", [m4], { outputs: ["o"] });
      } else if (variant === "mul-direct") b.node("Mul", ["m", "v"], { outputs: ["o"] });
      else b.node("Identity", ["m"], { outputs: ["o"] });
      m.graph.output.push(f32("y", [2, 3, 2, 2]), f32("o", [3]));
      const x = Float32Array.from({ length: 24 }, (_, i) => (i * 7 % 5) - 1 + i / 10);
      const sess = await createSession(OnnxModel.fromProto(m), { backend, threads: 1, cache: false });
      const out = [];
      for (let r = 0; r < 3; r++) {
        const o = await sess.run({ x: new Tensor(x, [2, 3, 2, 2]) });
        out.push(`o=${[...o.o.data].map((z) => z.toFixed(3))}`);
      }
      console.log(`${variant} mom ${mom} ${backend}: ${out.join(" ; ")}`);
    }
  }
}
