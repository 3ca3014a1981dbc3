// A tiny two-input, three-output ONNX model for the reader and output-comparison tests:
//   a [N, 3], b [N, 1, 3]  ->  ab = a + Flatten(b) [N, 3],  as = a * k [N, 3],  bs = b * k [N, 1, 3].
import { GraphBuilder } from "../../lib/onnx/graph.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { emptyModel, type ValueInfo } from "../../lib/onnx/proto.ts";

function input(name: string, dims: (number | string)[]): ValueInfo {
  return {
    name,
    type: {
      tensorType: { elemType: 1, shape: dims.map((d) => typeof d === "number" ? { value: d } : { param: d }) },
    },
  };
}

/** The model with scale `k` (outputs `as` and `bs` scale by it). */
export function twoInputModel(k = 2, source = `two-input k=${k}`): OnnxModel {
  const p = emptyModel(13);
  p.graph.input.push(input("a", ["N", 3]), input("b", ["N", 1, 3]));
  const g = new GraphBuilder(p.graph);
  const kk = g.initializer("k", new Float32Array([k]), []);
  const [fb] = g.node("Flatten", ["b"]);
  g.node("Add", ["a", fb], { outputs: ["ab"] });
  g.node("Mul", ["a", kk], { outputs: ["as"] });
  g.node("Mul", ["b", kk], { outputs: ["bs"] });
  p.graph.output.push({ name: "ab" }, { name: "as" }, { name: "bs" });
  return OnnxModel.fromProto(p, source);
}
