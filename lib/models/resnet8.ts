/**
 * ResNet-8 for 28x28 grey images (Fashion-MNIST): a 3x3 stem and three stages of one basic block each
 * (16, 32, 64 channels; stride 2 entering stages 2 and 3, with a 1x1 conv + BN projection shortcut), global
 * average pooling and a linear classifier. Eight weight layers on the main path (stem, 2 x 3 block convs,
 * fc), BatchNorm after every conv, as He et al.'s CIFAR ResNets.
 *
 * ```
 * conv 3x3 1->16, BN, ReLU                                   28x28
 * layer1: [conv 3x3 16->16, BN, ReLU, conv 3x3, BN] + x, ReLU 28x28
 * layer2: [conv 3x3/2 16->32, BN, ReLU, conv 3x3, BN] + proj 14x14
 * layer3: [conv 3x3/2 32->64, BN, ReLU, conv 3x3, BN] + proj  7x7
 * GlobalAveragePool, Flatten, fc 64->10
 * ```
 *
 * @module
 */
import type { OnnxModel } from "../onnx/model.ts";
import { NetBuilder } from "./layers.ts";

function basicBlock(net: NetBuilder, name: string, x: string, cin: number, cout: number, stride: number): string {
  let y = net.relu(net.batchNorm(`${name}.bn1`, net.conv(`${name}.conv1`, x, cin, cout, { stride })));
  y = net.batchNorm(`${name}.bn2`, net.conv(`${name}.conv2`, y, cout, cout, {}));
  const shortcut = stride !== 1 || cin !== cout
    ? net.batchNorm(`${name}.down.bn`, net.conv(`${name}.down.conv`, x, cin, cout, { kernel: 1, stride, pad: 0 }))
    : x;
  return net.relu(net.add(y, shortcut));
}

/**
 * Build ResNet-8 (16/32/64 channels) with freshly initialised, seeded weights (77,754 trainable parameters).
 *
 * @example
 * ```ts
 * import { resnet8 } from "./resnet8.ts";
 * import { countParameters } from "./layers.ts";
 * const m = resnet8({ seed: 0 });
 * if (m.graph.node.filter((n) => n.opType === "Conv").length !== 9) throw new Error("bad");
 * if (countParameters(m).trainable !== 77754) throw new Error(`${countParameters(m).trainable}`);
 * ```
 */
export function resnet8(options: { seed?: number; channels?: readonly [number, number, number] } = {}): OnnxModel {
  const [c1, c2, c3] = options.channels ?? [16, 32, 64];
  const net = new NetBuilder({ channels: 1, height: 28, width: 28, seed: options.seed ?? 0 });
  let x = net.relu(net.batchNorm("bn", net.conv("conv", net.input, 1, c1, {})));
  x = basicBlock(net, "layer1", x, c1, c1, 1);
  x = basicBlock(net, "layer2", x, c1, c2, 2);
  x = basicBlock(net, "layer3", x, c2, c3, 2);
  x = net.linear("fc", net.flatten(net.globalAveragePool(x)), c3, 10);
  return net.finish(x, "resnet8");
}
