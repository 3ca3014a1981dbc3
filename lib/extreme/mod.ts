/**
 * Extreme quantization: binary (BinaryConnect, XNOR-Net, stochastic) and ternary
 * (TWN, TTQ-style) weights, their straight-through gradients, sparsity and
 * bits-per-weight accounting.
 *
 * @module
 */
export * from "./accounting.ts";
export * from "./slot_stats.ts";
export * from "./ste.ts";
export * from "./binary.ts";
export * from "./ternary.ts";
