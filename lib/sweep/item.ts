/**
 * Sweep items and their identity: an item is one (experiment, config, seed)
 * trial at one quantlab version, identified by the SHA-256 of its canonical
 * JSON. The hash is the result's key in the store and the job id on a queue,
 * so the same trial is never run or stored twice.
 *
 * @module
 */
import denoJson from "../../deno.json" with { type: "json" };
import { QuantlabError } from "../errors.ts";
import type { Json, TrialConfig } from "../experiments/registry.ts";

/** The quantlab version a result was computed with (part of every hash). */
export const QUANTLAB_VERSION: string = denoJson.version;

/** One trial of a sweep. */
export interface SweepItem {
  /** Content hash of the other four fields (hex SHA-256 of their canonical JSON). */
  readonly hash: string;
  /** Registered experiment id. */
  readonly experiment: string;
  /** Its configuration. */
  readonly config: TrialConfig;
  /** Seed. */
  readonly seed: number;
  /** quantlab version. */
  readonly version: string;
}

/** A finished item: the item, its result and where and how long it ran. */
export interface ResultRecord extends SweepItem {
  /** The trial's JSON result. */
  readonly result: Json;
  /** Wall time of the trial in seconds. */
  readonly seconds: number;
  /** Which worker ran it (`host:pid`). */
  readonly worker: string;
  /** ISO time it finished. */
  readonly finishedAt: string;
}

/**
 * JSON with object keys sorted at every level (so equal values give equal
 * text); rejects non-finite numbers and non-JSON values.
 *
 * @example
 * ```ts
 * import { canonicalJson } from "./item.ts";
 * if (canonicalJson({ b: 1, a: [true, { d: null, c: "x" }] }) !== '{"a":[true,{"c":"x","d":null}],"b":1}') {
 *   throw new Error("bad");
 * }
 * ```
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new QuantlabError("NON_FINITE", `canonicalJson: non-finite number ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const o = value as Record<string, unknown>;
    return `{${
      Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
        .join(",")
    }}`;
  }
  throw new QuantlabError("INVALID_ARGUMENT", `canonicalJson: not a JSON value: ${String(value)}`);
}

/**
 * The item for (experiment, config, seed) at `version` (default {@link QUANTLAB_VERSION}), with its hash.
 *
 * @example
 * ```ts
 * import { sweepItem } from "./item.ts";
 * const a = await sweepItem("uniform", { quick: true, bits: 4 }, 0, "0.1.0");
 * const b = await sweepItem("uniform", { bits: 4, quick: true }, 0, "0.1.0");
 * const c = await sweepItem("uniform", { bits: 4, quick: true }, 1, "0.1.0");
 * if (a.hash !== b.hash || a.hash === c.hash || a.hash.length !== 64) throw new Error("bad");
 * ```
 */
export async function sweepItem(
  experiment: string,
  config: TrialConfig,
  seed: number,
  version: string = QUANTLAB_VERSION,
): Promise<SweepItem> {
  if (typeof experiment !== "string" || experiment === "") {
    throw new QuantlabError("INVALID_ARGUMENT", "sweep item: experiment id must be a non-empty string");
  }
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new QuantlabError("INVALID_ARGUMENT", `sweep item: seed must be a non-negative integer, got ${seed}`);
  }
  const text = canonicalJson({ experiment, config, seed, version });
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  const hash = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  return { hash, experiment, config: JSON.parse(canonicalJson(config)), seed, version };
}
