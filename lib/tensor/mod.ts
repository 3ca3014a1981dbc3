/**
 * Tensors, axis views and seeded random numbers.
 *
 * @module
 */
export * from "./tensor.ts";
export * from "./layout.ts";
export * from "./prng.ts";
