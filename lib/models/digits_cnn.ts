/**
 * The small digits CNN: a reference model for the embedded 8x8 digits (input `[N, 1, 8, 8]`, pixels / 16).
 *
 * ```
 * conv1 3x3 1->16, BN, ReLU      8x8
 * conv2 3x3 16->32, BN, ReLU     8x8
 * MaxPool 2                      4x4
 * conv3 3x3 32->32, BN, ReLU     4x4
 * GlobalAveragePool, Flatten, fc 32->10
 * ```
 *
 * @module
 */
import type { OnnxModel } from "../onnx/model.ts";
import { NetBuilder } from "./layers.ts";

/**
 * Build the digits CNN with freshly initialised, seeded weights (14,458 parameters).
 *
 * @example
 * ```ts
 * import { digitsCnn } from "./digits_cnn.ts";
 * import { countParameters } from "./layers.ts";
 * const m = digitsCnn({ seed: 0 });
 * if (m.graph.node.filter((n) => n.opType === "BatchNormalization").length !== 3) throw new Error("bad");
 * if (countParameters(m).trainable !== 14458) throw new Error(`${countParameters(m).trainable}`);
 * ```
 */
export function digitsCnn(options: { seed?: number } = {}): OnnxModel {
  const net = new NetBuilder({ channels: 1, height: 8, width: 8, seed: options.seed ?? 0 });
  let x = net.relu(net.batchNorm("bn1", net.conv("conv1", net.input, 1, 16, {})));
  x = net.relu(net.batchNorm("bn2", net.conv("conv2", x, 16, 32, {})));
  x = net.maxPool(x, 2);
  x = net.relu(net.batchNorm("bn3", net.conv("conv3", x, 32, 32, {})));
  x = net.linear("fc", net.flatten(net.globalAveragePool(x)), 32, 10);
  return net.finish(x, "digits_cnn");
}
