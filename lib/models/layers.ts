/**
 * A small layer vocabulary for writing networks directly as ONNX graphs (opset 17): Conv, BatchNormalization
 * (inference form, with running statistics as initializers), Relu, MaxPool, GlobalAveragePool, Add, Flatten and
 * Gemm, with seeded PyTorch-style initialisation. The reference models are built with it; the gradient
 * compiler turns BatchNormalization into its training form when training.
 *
 * Initialisation (seeded xoshiro128**, so the same seed gives the same model on every platform):
 * - Conv weights: Kaiming normal with fan-out and ReLU gain, `N(0, 2 / (cout * kh * kw))`, as torchvision's
 *   ResNet; conv biases (when present) `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, PyTorch's default.
 * - Gemm (Linear): PyTorch's default `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` for weight and bias.
 * - BatchNormalization: scale 1, bias 0, running mean 0, running variance 1, epsilon 1e-5, and ONNX momentum
 *   0.9 (the ONNX convention `running = momentum * running + (1 - momentum) * batch`, i.e. PyTorch's 0.1).
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { Prng } from "../tensor/prng.ts";
import { floatAttr, GraphBuilder, intAttr, intsAttr } from "../onnx/graph.ts";
import { emptyModel } from "../onnx/proto.ts";
import { OnnxModel } from "../onnx/model.ts";
import { DataType } from "../onnx/tensor_data.ts";

/** Options of a convolution. */
export interface ConvOptions {
  /** Square kernel size (default 3). */
  kernel?: number;
  /** Stride (default 1). */
  stride?: number;
  /** Symmetric padding (default kernel >> 1, "same" for odd kernels at stride 1). */
  pad?: number;
  /** Add a bias (default false: BatchNorm follows). */
  bias?: boolean;
}

/**
 * Builds an image classifier graph: input `"input"` `[N, C, H, W]` float32, output `"logits"` `[N, classes]`.
 * Parameter names follow PyTorch's module paths (`layer1.conv1.weight`, `layer1.bn1.running_mean`, ...).
 *
 * @example
 * ```ts
 * import { NetBuilder } from "./layers.ts";
 * const net = new NetBuilder({ channels: 1, height: 4, width: 4, seed: 1 });
 * let x = net.relu(net.batchNorm("bn", net.conv("conv", net.input, 1, 2, {})));
 * x = net.linear("fc", net.flatten(net.globalAveragePool(x)), 2, 3);
 * const model = net.finish(x, "tiny");
 * if (model.graph.node.length !== 6 || net.channelsOf("bn") !== 2) throw new Error("bad");
 * ```
 */
export class NetBuilder {
  /** The graph input's name. */
  readonly input = "input";
  readonly #b: GraphBuilder;
  readonly #rng: Prng;
  readonly #model = emptyModel(17);
  readonly #channels = new Map<string, number>();

  /** Start a graph for `[N, channels, height, width]` inputs; `seed` drives every initial value. */
  constructor(readonly shape: { channels: number; height: number; width: number; seed: number }) {
    for (const k of ["channels", "height", "width"] as const) {
      if (!Number.isInteger(shape[k]) || shape[k] < 1) {
        throw new QuantlabError("INVALID_ARGUMENT", `NetBuilder ${k} must be a positive integer, got ${shape[k]}`);
      }
    }
    const g = this.#model.graph;
    g.input.push({
      name: this.input,
      type: {
        tensorType: {
          elemType: DataType.FLOAT,
          shape: [{ param: "N" }, { value: shape.channels }, { value: shape.height }, { value: shape.width }],
        },
      },
    });
    this.#b = new GraphBuilder(g);
    this.#rng = new Prng(shape.seed);
  }

  #param(name: string, values: Float32Array, dims: number[]): string {
    const got = this.#b.initializer(name, values, dims);
    if (got !== name) throw new QuantlabError("INVALID_ARGUMENT", `NetBuilder: parameter name "${name}" is used twice`);
    return got;
  }

  #uniform(n: number, bound: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = (2 * this.#rng.nextFloat() - 1) * bound;
    return out;
  }

  /** Conv2d `cin -> cout` named `name` (`name.weight`, `name.bias`). Returns the output value name. */
  conv(name: string, x: string, cin: number, cout: number, o: ConvOptions): string {
    const k = o.kernel ?? 3, stride = o.stride ?? 1, pad = o.pad ?? (k >> 1);
    const fanIn = cin * k * k, fanOut = cout * k * k;
    const w = new Float32Array(cout * cin * k * k);
    this.#rng.fillNormal(w, 0, Math.sqrt(2 / fanOut));
    const inputs = [x, this.#param(`${name}.weight`, w, [cout, cin, k, k])];
    if (o.bias) inputs.push(this.#param(`${name}.bias`, this.#uniform(cout, 1 / Math.sqrt(fanIn)), [cout]));
    const [y] = this.#b.node("Conv", inputs, {
      name,
      outputs: [`${name}.out`],
      attributes: [
        intsAttr("kernel_shape", [k, k]),
        intsAttr("strides", [stride, stride]),
        intsAttr("pads", [pad, pad, pad, pad]),
        intsAttr("dilations", [1, 1]),
        intAttr("group", 1),
      ],
    });
    return y;
  }

  /** BatchNormalization over `channels` named `name` (`name.weight`, `.bias`, `.running_mean`, `.running_var`). */
  batchNorm(name: string, x: string, channels?: number): string {
    const c = channels ?? this.#lastChannels(x);
    const ones = new Float32Array(c).fill(1);
    const inputs = [
      x,
      this.#param(`${name}.weight`, ones.slice(), [c]),
      this.#param(`${name}.bias`, new Float32Array(c), [c]),
      this.#param(`${name}.running_mean`, new Float32Array(c), [c]),
      this.#param(`${name}.running_var`, ones.slice(), [c]),
    ];
    this.#channels.set(name, c);
    const [y] = this.#b.node("BatchNormalization", inputs, {
      name,
      outputs: [`${name}.out`],
      attributes: [floatAttr("epsilon", 1e-5), floatAttr("momentum", 0.9)],
    });
    return y;
  }

  #lastChannels(x: string): number {
    const n = this.#model.graph.node.find((m) => m.output.includes(x));
    const w = n?.opType === "Conv" ? this.#model.graph.initializer.find((t) => t.name === n.input[1]) : undefined;
    if (!w) {
      throw new QuantlabError("INVALID_ARGUMENT", `NetBuilder.batchNorm: give channels for "${x}" (not a Conv output)`);
    }
    return w.dims[0];
  }

  /** Channels of the BatchNormalization named `name` (for tests and summaries). */
  channelsOf(name: string): number | undefined {
    return this.#channels.get(name);
  }

  /** Relu. */
  relu(x: string): string {
    return this.#b.node("Relu", [x])[0];
  }

  /** Elementwise sum (residual connections). */
  add(a: string, b: string): string {
    return this.#b.node("Add", [a, b])[0];
  }

  /** MaxPool with a square window (no padding). */
  maxPool(x: string, kernel: number, stride = kernel): string {
    return this.#b.node("MaxPool", [x], {
      attributes: [intsAttr("kernel_shape", [kernel, kernel]), intsAttr("strides", [stride, stride])],
    })[0];
  }

  /** GlobalAveragePool: `[N, C, H, W] -> [N, C, 1, 1]`. */
  globalAveragePool(x: string): string {
    return this.#b.node("GlobalAveragePool", [x])[0];
  }

  /** Flatten to `[N, rest]`. */
  flatten(x: string): string {
    return this.#b.node("Flatten", [x], { attributes: [intAttr("axis", 1)] })[0];
  }

  /** Fully connected layer `fin -> fout` as Gemm with transB (PyTorch Linear layout `[fout, fin]`). */
  linear(name: string, x: string, fin: number, fout: number): string {
    const bound = 1 / Math.sqrt(fin);
    const w = this.#param(`${name}.weight`, this.#uniform(fout * fin, bound), [fout, fin]);
    const b = this.#param(`${name}.bias`, this.#uniform(fout, bound), [fout]);
    return this.#b.node("Gemm", [x, w, b], { name, outputs: [`${name}.out`], attributes: [intAttr("transB", 1)] })[0];
  }

  /** Rename `x` to the graph output `"logits"` `[N, classes]` and return the validated model. */
  finish(x: string, name: string, classes?: number): OnnxModel {
    const g = this.#model.graph;
    g.name = name;
    const producer = g.node.find((n) => n.output.includes(x));
    if (!producer) throw new QuantlabError("INVALID_ARGUMENT", `NetBuilder.finish: "${x}" is not produced by a node`);
    producer.output = producer.output.map((o) => (o === x ? "logits" : o));
    for (const n of g.node) n.input = n.input.map((i) => (i === x ? "logits" : i));
    const fout = classes ?? g.initializer.find((t) => t.name === producer.input[1])?.dims[0];
    g.output.push({
      name: "logits",
      type: { tensorType: { elemType: DataType.FLOAT, shape: [{ param: "N" }, fout ? { value: fout } : {}] } },
    });
    this.#model.docString = `quantlab reference model ${name}`;
    return OnnxModel.fromProto(this.#model, name);
  }
}

/**
 * Parameter counts of a model's float initializers: total, and excluding BatchNorm running statistics.
 *
 * @example
 * ```ts
 * import { countParameters, NetBuilder } from "./layers.ts";
 * const net = new NetBuilder({ channels: 1, height: 1, width: 1, seed: 0 });
 * const m = net.finish(net.linear("fc", net.flatten(net.batchNorm("bn", net.input, 1)), 1, 3), "toy");
 * const c = countParameters(m);
 * if (c.trainable !== 2 + 6 || c.total !== 4 + 6) throw new Error(JSON.stringify(c));
 * ```
 */
export function countParameters(model: OnnxModel): { trainable: number; total: number } {
  let total = 0, trainable = 0;
  for (const t of model.graph.initializer) {
    if (t.dataType !== DataType.FLOAT) continue;
    const n = t.dims.reduce((a, b) => a * b, 1);
    total += n;
    if (!/running_(mean|var)$/.test(t.name)) trainable += n;
  }
  return { trainable, total };
}
