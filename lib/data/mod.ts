/**
 * Data: the one labelled-images type with its preprocessing (images.ts), batching and splits, the loaders (the
 * embedded 8x8 digits, Fashion-MNIST), and the reader protocol for arbitrary named model inputs (reader.ts, .npy
 * files through npy.ts).
 *
 * @module
 */
export * from "./images.ts";
export * from "./digits.ts";
export * from "./idx.ts";
export * from "./batching.ts";
export * from "./fashion_mnist.ts";
export * from "./npy.ts";
export * from "./reader.ts";
