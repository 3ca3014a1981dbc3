/**
 * ONNX models: protobuf codec, graph IR, shapes and intermediates, BatchNorm folding, safe writing, blocked convolutions for runtime weights, and one
 * session interface over onnxruntime-node and onnxruntime-web (loaded lazily).
 *
 * @module
 */
export * from "./wire.ts";
export * from "./proto.ts";
export * from "./tensor_data.ts";
export * from "./graph.ts";
export * from "./model.ts";
export * from "./capture.ts";
export * from "./fold_bn.ts";
export * from "./io.ts";
export * from "./external_data.ts";
export * from "./nchwc.ts";
export * from "./session.ts";
