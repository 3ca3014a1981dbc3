/**
 * Extreme quantization: binary (BinaryConnect, XNOR-Net, stochastic) and ternary
 * (TWN, TTQ-style) weights and their straight-through gradients (sparsity and
 * bits-per-weight accounting live in lib/quant/accounting.ts).
 *
 * @module
 */
export * from "./slot_stats.ts";
export * from "./ste.ts";
export * from "./binary.ts";
export * from "./ternary.ts";
