/**
 * Datasets: the embedded 8x8 digits and seeded splits.
 *
 * @module
 */
export * from "./digits.ts";
export * from "./idx.ts";
export * from "./batching.ts";
export * from "./fashion_mnist.ts";
