/**
 * The one error family of quantlab.
 *
 * Every error quantlab throws on bad input is a {@link QuantlabError} with a
 * machine-readable {@link QuantlabErrorCode} and a message that names the
 * argument, tensor, node, op or file and says what was expected.
 *
 * @module
 */

/** Machine-readable reasons for a {@link QuantlabError}. */
export type QuantlabErrorCode =
  | "INVALID_ARGUMENT"
  | "NON_FINITE"
  | "EMPTY_TENSOR"
  | "SHAPE_MISMATCH"
  | "BITS_OUT_OF_RANGE"
  | "AXIS_OUT_OF_RANGE"
  | "GROUP_SIZE"
  | "UNSUPPORTED"
  | "NOT_CALIBRATED"
  | "MALFORMED_MODEL"
  | "UNSUPPORTED_OP"
  | "DATASET"
  | "SOLVER_FAILED"
  | "IO";

/**
 * An error raised by quantlab for bad input or an unsupported request.
 *
 * @example
 * ```ts
 * import { QuantlabError } from "./errors.ts";
 * const e = new QuantlabError("BITS_OUT_OF_RANGE", "bits must be 2..16, got 1");
 * if (!(e instanceof Error) || e.code !== "BITS_OUT_OF_RANGE") throw new Error("bad");
 * ```
 */
export class QuantlabError extends Error {
  /** Machine-readable reason. */
  readonly code: QuantlabErrorCode;
  /** Create an error with a code and a message naming what and where. */
  constructor(code: QuantlabErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "QuantlabError";
    this.code = code;
  }
}

/**
 * Throw a `NON_FINITE` error naming `what` if `data` holds NaN or ±Infinity.
 *
 * @example
 * ```ts
 * import { assertFinite } from "./errors.ts";
 * assertFinite(new Float32Array([1, 2]), "weights"); // passes
 * ```
 */
export function assertFinite(data: ArrayLike<number>, what: string): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    // v - v is NaN for both NaN and ±Infinity.
    if (v - v !== 0) {
      throw new QuantlabError(
        "NON_FINITE",
        `${what} holds a non-finite value (${v}) at flat index ${i}; expected only finite numbers`,
      );
    }
  }
}

/**
 * Check that `bits` is an integer in `[min, max]`, else throw `BITS_OUT_OF_RANGE`.
 *
 * @example
 * ```ts
 * import { checkBits } from "./errors.ts";
 * checkBits(8, "weight bits"); // passes
 * ```
 */
export function checkBits(bits: number, what = "bits", min = 2, max = 16): void {
  if (!Number.isInteger(bits) || bits < min || bits > max) {
    throw new QuantlabError(
      "BITS_OUT_OF_RANGE",
      `${what} must be an integer from ${min} to ${max}, got ${bits}`,
    );
  }
}
