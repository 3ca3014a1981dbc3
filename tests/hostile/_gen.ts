/**
 * Generators of large and hostile ONNX inputs for the hostile suite and the codec benchmark (raw protobuf bytes
 * written by hand, so they do not depend on the encoder under test).
 *
 * @module
 */
import { emptyModel, encodeModel, type ModelProto, type NodeProto } from "../../lib/onnx/proto.ts";
import { makeTensorProto } from "../../lib/onnx/tensor_data.ts";

const TEXT = new TextEncoder();

/** A valid model of `n` Relu nodes: a chain (`"chain"`) or all reading the input (`"wide"`, many ready at once). */
export function manyNodeModel(n: number, shape: "chain" | "wide" = "wide"): ModelProto {
  const p = emptyModel(17);
  p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ value: 4 }] } } });
  const nodes: NodeProto[] = [];
  for (let i = 0; i < n; i++) {
    const input = shape === "chain" && i > 0 ? `v${i - 1}` : "x";
    nodes.push({ input: [input], output: [`v${i}`], name: "", opType: "Relu", domain: "", attribute: [] });
  }
  // Reverse the order so the decoder's topological check has real work (nothing is in order for "chain").
  p.graph.node = shape === "chain" ? nodes.reverse() : nodes;
  p.graph.output.push({ name: `v${n - 1}` });
  return p;
}

function varint(out: number[], v: number): void {
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

/** A valid model (one Relu) followed by `bytes` bytes of small unknown top-level fields (field 99, varint 1). */
export function unknownFieldFlood(bytes: number): Uint8Array {
  const base = encodeModel(manyNodeModel(1));
  const field: number[] = [];
  varint(field, 99 * 8 + 0);
  field.push(1);
  const count = Math.floor(bytes / field.length);
  const out = new Uint8Array(base.length + count * field.length);
  out.set(base);
  for (let i = 0, at = base.length; i < count; i++, at += field.length) out.set(field, at);
  return out;
}

/** A model whose graph holds `bytes` bytes of empty `node` entries (tag + zero length each). */
export function emptyNodeFlood(bytes: number): Uint8Array {
  const nodes = new Uint8Array(Math.floor(bytes / 2) * 2);
  for (let i = 0; i < nodes.length; i += 2) nodes[i] = 0x0a; // GraphProto.node, length 0
  const graph: number[] = [];
  const head: number[] = [0x08, 0x08]; // ir_version 8
  head.push(0x3a); // ModelProto.graph
  varint(head, nodes.length);
  const opset = [0x42, 0x02, 0x10, 0x11]; // opset_import { version: 17 }
  const out = new Uint8Array(head.length + nodes.length + opset.length + graph.length);
  out.set(head);
  out.set(nodes, head.length);
  out.set(opset, head.length + nodes.length);
  return out;
}

/** A model with `megabytes` MB of float32 initializers (chunks of 1 MB) feeding nothing but graph outputs. */
export function largeModel(megabytes: number): ModelProto {
  const p = emptyModel(17);
  p.graph.input.push({ name: "x", type: { tensorType: { elemType: 1, shape: [{ value: 1 }] } } });
  p.graph.node.push({ input: ["x"], output: ["y"], name: "relu", opType: "Relu", domain: "", attribute: [] });
  p.graph.output.push({ name: "y" });
  const per = 262144; // 1 MB of float32
  for (let i = 0; i < megabytes; i++) {
    const v = new Float32Array(per);
    for (let k = 0; k < per; k += 1024) v[k] = i + k;
    p.graph.initializer.push(makeTensorProto(`w${i}`, v, [per]));
    p.graph.output.push({ name: `w${i}` });
  }
  return p;
}

/** UTF-8 bytes of a string (test helper). */
export function utf8(s: string): Uint8Array {
  return TEXT.encode(s);
}
