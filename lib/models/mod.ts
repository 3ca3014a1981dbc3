/**
 * Reference architectures as ONNX graph builders: the digits CNN and ResNet-8 (Fashion-MNIST), and the layer
 * vocabulary they are written in. `deno task train` trains them with quantlab's own trainer.
 *
 * @module
 */
export * from "./layers.ts";
export * from "./digits_cnn.ts";
export * from "./resnet8.ts";
