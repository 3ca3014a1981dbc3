/**
 * One session interface over ONNX Runtime's two official JavaScript bindings, which share one API:
 * onnxruntime-node (native CPU kernels, loaded by Deno through Node-API; 2-3x faster on conv here) and
 * onnxruntime-web (WASM; runs everywhere). `backend: "auto"` uses native when it loads and WASM otherwise;
 * {@link OrtSession.backend} says which is in use. Both are pinned to the same release.
 *
 * The bindings are heavy (about 150 MB and 290 MB of npm cache), so they are imported lazily on first use
 * with the specifier in a variable; importing this module costs nothing. onnxruntime-web defaults to one
 * thread under Deno. Native sessions use the machine's cores unless `threads` says otherwise. WASM sessions
 * default to ONE thread: measured here (Deno 2.9.6, onnxruntime-web 1.30.0, 2 cores), `numThreads = 2` deadlocks
 * in `run()` for batches of 128+ images of the residual fixture (4 threads did not), so more WASM threads are opt-in
 * via `threads` (process-wide, fixed at the first WASM session). Sessions are cached by model bytes, backend
 * and threads.
 *
 * @module
 */
// Types only (1.2 MB package); the project pins npm: specifiers inside lib/ instead of an import map.
// deno-lint-ignore no-import-prefix
import type { InferenceSession as OrtInferenceSession, Tensor as OrtTensor } from "npm:onnxruntime-common@1.30.0";
import { QuantlabError } from "../errors.ts";
import { Tensor } from "../tensor/tensor.ts";
import { OnnxModel } from "./model.ts";
import { decodeModel, encodeModel, type ModelProto } from "./proto.ts";
import { blockedConvolutions, nchwcProbe } from "./nchwc.ts";
import { inlineExternalData } from "./external_data.ts";

/**
 * The pinned onnxruntime release used by both bindings.
 *
 * @example
 * ```ts
 * import { ORT_VERSION } from "./session.ts";
 * if (!/^\d+\.\d+\.\d+$/.test(ORT_VERSION)) throw new Error("bad");
 * ```
 */
export const ORT_VERSION = "1.30.0";
const WEB_SPEC = `npm:onnxruntime-web@${ORT_VERSION}`;
const NODE_SPEC = `npm:onnxruntime-node@${ORT_VERSION}`;

/** An ONNX Runtime binding. */
export type Backend = "node" | "web";

/** Session options. */
export interface SessionOptions {
  /** `"auto"` (default: native if it loads, else WASM), `"node"` (native, error if unavailable) or `"web"`. */
  backend?: "auto" | Backend;
  /** Intra-op threads (default: the machine's cores for native, 1 for WASM). WASM: process-wide, fixed at first use. */
  threads?: number;
  /** Reuse a cached session for the same bytes, backend, threads and optimization level (default true). */
  cache?: boolean;
  /**
   * ONNX Runtime's graph optimization level (default `"all"`). At `"all"` (and `"extended"` on node) a QDQ model's
   * QuantizeLinear/DequantizeLinear pairs around Conv/MatMul are fused into integer kernels, whose requantization
   * rounds differently from the float fake-quantization a training graph computes; `"basic"` or `"disabled"` keeps
   * the QDQ arithmetic in float, so a QDQ export then reproduces its training graph's outputs exactly.
   */
  optimization?: "disabled" | "basic" | "extended" | "all";
  /**
   * Whether ONNX Runtime's intra-op worker threads spin while waiting for work (native backend; default true, ONNX
   * Runtime's default). On a machine shared with other jobs, `false` (`session.intra_op.allow_spinning = 0`) stops
   * the spinning from competing with the work: a 2-thread QAT step of the ResNet-8 went from 1.21-1.24 s to 0.76 s at
   * load 6.5 (one-off A/B recorded in `benchmarks/qat_parity.md`); on a quiet machine spinning pays: the ResNet-8
   * training step took 150 ms with it and 168 ms without (`benchmarks/train_session_ab.ts`).
   */
  spinning?: boolean;
  /**
   * Native backend: run independent nodes of the graph concurrently on this many inter-op threads (ONNX Runtime's
   * `executionMode: "parallel"`), each node still using `threads` intra-op threads. Default 1 (sequential execution,
   * ONNX Runtime's default). Ignored on WASM. For the ResNet-8 training step (batch 128, quiet 2-core machine) it is
   * slower: 275 ms (2 inter-op x 1 intra-op) and 347 ms (2 x 2) against 150 ms sequential on 2 intra-op threads
   * (`benchmarks/train_session_ab.ts`); wide graphs of many small independent nodes are where it can pay.
   */
  interOpThreads?: number;
  /**
   * Native backend at optimization `"all"`: run convolutions whose weights are computed at run time (a training
   * graph's parameters fed as inputs, fake-quantized weights, the flipped kernels of input gradients) on ONNX Runtime's
   * blocked NCHWc kernels, which ONNX Runtime itself uses only for constant weights (see `nchwc.ts`). Default true.
   * The block size is found once per process by a probe conv; where no block size reproduces a plain Conv (WASM, a
   * CPU without the kernels) nothing is rewritten. Results differ from plain Conv only by float summation order. The
   * ResNet-8 training step at batch 128 on 2 threads: 152 -> 122 ms (`benchmarks/train_session_ab.ts`).
   * {@link OrtSession.blockedConvolutions} lists the convs rewritten.
   */
  blockedConvolutions?: boolean;
}

/** The parts of an ONNX Runtime JS binding quantlab uses (onnxruntime-node and onnxruntime-web share them). */
interface OrtModule {
  InferenceSession: {
    create(bytes: Uint8Array, options?: OrtInferenceSession.SessionOptions): Promise<OrtInferenceSession>;
  };
  Tensor: new (type: string, data: unknown, dims: readonly number[]) => OrtTensor;
  env: { wasm: { numThreads?: number; simd?: boolean }; logLevel?: string };
}

const modules = new Map<Backend, Promise<OrtModule | null>>();
let wasmThreads: number | undefined;

function defaultThreads(): number {
  const n = (globalThis.navigator as { hardwareConcurrency?: number } | undefined)?.hardwareConcurrency;
  return Math.max(1, Math.min(16, n ?? 1));
}

const loadErrors = new Map<Backend, string>();

function loadModule(backend: Backend): Promise<OrtModule | null> {
  let p = modules.get(backend);
  if (!p) {
    const spec = backend === "node" ? NODE_SPEC : WEB_SPEC;
    p = import(spec).then((m) => (m.default?.InferenceSession ? m.default : m) as OrtModule).catch((e) => {
      loadErrors.set(backend, String((e as Error)?.message ?? e).split("\n")[0]);
      return null;
    });
    modules.set(backend, p);
  }
  return p;
}

/** The binding `"auto"` chose and why (issue 16: said once, and shown in report headers). */
let autoChoice: { backend: Backend; reason: string } | undefined;

function ffiGranted(): boolean {
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
}

/**
 * Which binding `backend: "auto"` chose in this process and why, or `undefined` before the first ONNX Runtime use.
 * Without `--allow-ffi` the native binding is not tried (nor downloaded: it is 290 MB of npm cache); when it is
 * tried and fails, the reason names the error. A fall-back to WASM is also said once on stderr.
 *
 * @example
 * ```ts
 * import { backendChoice } from "./session.ts";
 * const c = backendChoice(); // undefined until a session was created with backend "auto"
 * if (c !== undefined && !["node", "web"].includes(c.backend)) throw new Error("bad");
 * ```
 */
export function backendChoice(): { readonly backend: Backend; readonly reason: string } | undefined {
  return autoChoice;
}

async function loadAuto(): Promise<{ backend: Backend; ort: OrtModule } | undefined> {
  const native = ffiGranted();
  if (native) {
    const ort = await loadModule("node");
    if (ort) {
      autoChoice ??= { backend: "node", reason: "native kernels loaded (--allow-ffi granted)" };
      return { backend: "node", ort };
    }
  }
  const ort = await loadModule("web");
  if (!ort) return undefined;
  if (!autoChoice) {
    autoChoice = {
      backend: "web",
      reason: native
        ? `onnxruntime-node did not load (${loadErrors.get("node") ?? "unknown error"})`
        : "onnxruntime-node needs --allow-ffi (Node-API), so it was neither tried nor downloaded",
    };
    console.warn(
      `quantlab: ONNX Runtime runs on onnxruntime-web (WASM, 2-3x slower than native): ${autoChoice.reason}`,
    );
  }
  return { backend: "web", ort };
}

/**
 * Load an ONNX Runtime binding: `"auto"` tries native then WASM. Throws `UNSUPPORTED` when the requested
 * binding cannot load. (Left out of the generated docs: `ort` is ONNX Runtime's own module, not quantlab's API.)
 *
 * @ignore
 *
 * @example
 * ```ts ignore
 * import { loadBackend } from "./session.ts";
 * const { backend } = await loadBackend("auto");
 * console.log(backend); // "node" where native kernels load, else "web"
 * ```
 */
export async function loadBackend(preferred: "auto" | Backend = "auto"): Promise<{ backend: Backend; ort: OrtModule }> {
  if (preferred === "auto") {
    const found = await loadAuto();
    if (found) return found;
  } else {
    const ort = await loadModule(preferred);
    if (ort) return { backend: preferred, ort };
  }
  throw new QuantlabError(
    "UNSUPPORTED",
    `onnxruntime-${
      preferred === "auto" ? "node and onnxruntime-web" : preferred
    }@${ORT_VERSION} could not be loaded (run with -A so npm packages and Node-API load)`,
  );
}

/** Typed arrays ORT accepts as inputs besides quantlab tensors. */
export type FeedValue = Tensor | { type: "int64"; data: BigInt64Array; dims: readonly number[] };

/**
 * A loaded model on one ONNX Runtime binding. Create with {@link createSession}.
 *
 * @example
 * ```ts ignore
 * import { createSession } from "./session.ts";
 * import { OnnxModel } from "./model.ts";
 * const s = await createSession(await OnnxModel.load("tests/fixtures/models/resnet8_op13.onnx"));
 * const { logits } = await s.run({ input: Tensor.zeros([1, 1, 28, 28]) });
 * ```
 */
export class OrtSession {
  /** Which binding runs this session. */
  readonly backend: Backend;
  /** Intra-op threads in use. */
  readonly threads: number;
  /** Conv nodes (names, or first outputs) this session runs on blocked NCHWc kernels with runtime weights. */
  readonly blockedConvolutions: readonly string[];
  #session: OrtInferenceSession;
  #ort: OrtModule;

  /** Use {@link createSession}. */
  constructor(
    backend: Backend,
    threads: number,
    session: OrtInferenceSession,
    ort: OrtModule,
    blockedConvolutions: readonly string[] = [],
  ) {
    this.backend = backend;
    this.threads = threads;
    this.#session = session;
    this.#ort = ort;
    this.blockedConvolutions = blockedConvolutions;
  }

  /** Model input names. */
  get inputNames(): readonly string[] {
    return this.#session.inputNames;
  }

  /** Model output names. */
  get outputNames(): readonly string[] {
    return this.#session.outputNames;
  }

  /**
   * Run the model. Feeds are quantlab tensors (float32, int8, uint8, int32) or int64 arrays; outputs come back
   * as quantlab tensors (int64 outputs as int32 when they fit, bool as uint8, float64/float16 as float32).
   * Throws `SHAPE_MISMATCH` or `INVALID_ARGUMENT` with ORT's message when the feeds do not fit the model.
   */
  async run(feeds: Record<string, FeedValue>, outputs?: readonly string[]): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, OrtTensor> = {};
    for (const name of this.inputNames) {
      if (!(name in feeds)) {
        throw new QuantlabError(
          "INVALID_ARGUMENT",
          `session run: missing feed "${name}" (model inputs: ${this.inputNames.join(", ")})`,
        );
      }
    }
    for (const [name, v] of Object.entries(feeds)) {
      const type = v instanceof Tensor ? v.dtype : v.type;
      ortFeeds[name] = new this.#ort.Tensor(type, v.data, [...dimsOf(v)]);
    }
    let result: Record<string, OrtTensor>;
    try {
      result =
        (outputs ? await this.#session.run(ortFeeds, [...outputs]) : await this.#session.run(ortFeeds)) as Record<
          string,
          OrtTensor
        >;
    } catch (e) {
      const msg = String((e as Error)?.message ?? e);
      const code = /shape|dimension|rank/i.test(msg) ? "SHAPE_MISMATCH" : "INVALID_ARGUMENT";
      throw new QuantlabError(code, `onnxruntime-${this.backend} run failed: ${msg}`, { cause: e });
    }
    const out: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(result)) out[name] = fromOrt(name, t);
    return out;
  }

  /** Free the native/WASM session (it is also dropped from the cache). */
  async release(): Promise<void> {
    for (const [k, v] of cache) if ((await v.catch(() => null)) === this) cache.delete(k);
    await this.#session.release();
  }
}

function dimsOf(v: FeedValue): readonly number[] {
  return v instanceof Tensor ? v.shape : v.dims;
}

function fromOrt(name: string, t: OrtTensor): Tensor {
  const dims = t.dims.map(Number);
  const d = t.data as unknown;
  switch (t.type) {
    case "float32":
    case "int8":
    case "uint8":
    case "int32":
      return new Tensor(d as Float32Array, dims, name);
    case "bool":
      return new Tensor(Uint8Array.from(d as Uint8Array), dims, name);
    case "float64":
    case "float16":
      return new Tensor(Float32Array.from(d as Float64Array), dims, name);
    case "int64": {
      const src = d as BigInt64Array;
      const out = new Int32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        const v = Number(src[i]);
        if (v !== (v | 0)) {
          throw new QuantlabError("UNSUPPORTED", `output "${name}": int64 value ${src[i]} does not fit int32`);
        }
        out[i] = v;
      }
      return new Tensor(out, dims, name);
    }
  }
  throw new QuantlabError("UNSUPPORTED", `output "${name}" has type ${t.type}, which quantlab tensors cannot hold`);
}

const cache = new Map<string, Promise<OrtSession>>();

let blockSize: Promise<number | undefined> | undefined;

/** The running CPU's NCHWc block size for onnxruntime-node, or undefined: found once by running the probe both ways. */
function probeBlockSize(ort: OrtModule): Promise<number | undefined> {
  blockSize ??= (async () => {
    const probe = nchwcProbe();
    const feeds = {
      x: new ort.Tensor("float32", probe.x, [...probe.xDims]),
      w: new ort.Tensor("float32", probe.w, [...probe.wDims]),
    };
    const run = async (proto: ModelProto) => {
      const s = await ort.InferenceSession.create(encodeModel(proto), {
        intraOpNumThreads: 1,
        graphOptimizationLevel: "disabled",
        logSeverityLevel: 3,
      });
      try {
        return ((await s.run(feeds)) as Record<string, OrtTensor>).y.data as Float32Array;
      } finally {
        await s.release();
      }
    };
    try {
      const want = await run(probe.model);
      for (const block of probe.blocks) {
        const got = await run(blockedConvolutions(probe.model, block).proto).catch(() => undefined);
        if (got && got.length === want.length && got.every((v, i) => v === want[i])) return block;
      }
    } catch {
      // The plain probe itself failed to run: no blocked kernels to offer.
    }
    return undefined;
  })();
  return blockSize;
}

function fingerprint(bytes: Uint8Array): string {
  // FNV-1a over all bytes, plus the length: cheap next to session creation.
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return `${bytes.length}:${(h >>> 0).toString(16)}`;
}

/**
 * Create (or reuse from the cache) an ONNX Runtime session for a model or its bytes.
 *
 * @example
 * ```ts ignore
 * import { createSession } from "./session.ts";
 * const s = await createSession(bytes, { backend: "web", threads: 2 });
 * console.log(s.backend, s.threads);
 * ```
 */
export async function createSession(model: OnnxModel | Uint8Array, options: SessionOptions = {}): Promise<OrtSession> {
  if (!(model instanceof Uint8Array) && !(model instanceof OnnxModel)) {
    throw new QuantlabError("INVALID_ARGUMENT", "createSession expects an OnnxModel or ONNX bytes");
  }
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1)) {
    throw new QuantlabError("INVALID_ARGUMENT", `session threads must be a positive integer, got ${options.threads}`);
  }
  const { backend, ort } = await loadBackend(options.backend ?? "auto");
  const requested = options.threads ?? (backend === "web" ? 1 : defaultThreads());
  let threads = requested;
  if (backend === "web") {
    // numThreads is process-wide and read when the WASM module initialises (first session).
    if (wasmThreads === undefined) {
      ort.env.wasm.numThreads = requested;
      wasmThreads = requested;
    }
    threads = wasmThreads;
  }
  const optimization = options.optimization ?? "all";
  if (!["disabled", "basic", "extended", "all"].includes(optimization)) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `session optimization must be "disabled", "basic", "extended" or "all", got ${String(optimization)}`,
    );
  }
  const spinning = options.spinning ?? true;
  const interOp = backend === "node" ? options.interOpThreads ?? 1 : 1;
  if (!Number.isInteger(interOp) || interOp < 1) {
    throw new QuantlabError("INVALID_ARGUMENT", `session interOpThreads must be an integer >= 1, got ${interOp}`);
  }
  let bytes: Uint8Array, blocked: readonly string[] = [];
  if (model instanceof Uint8Array) bytes = model;
  else {
    // External data is checked (and inlined) here, never resolved by ONNX Runtime (see external_data.ts).
    let proto = await inlineExternalData(model.proto, model.origin, model.source);
    if (backend === "node" && optimization === "all" && options.blockedConvolutions !== false) {
      const block = await probeBlockSize(ort);
      if (block !== undefined) ({ proto, rewritten: blocked } = blockedConvolutions(proto, block));
    }
    bytes = encodeModel(proto);
  }
  const key = `${backend}|${threads}|${optimization}|${spinning}|${interOp}|${fingerprint(bytes)}`;
  const useCache = options.cache ?? true;
  const hit = useCache ? cache.get(key) : undefined;
  if (hit) return hit;
  if (model instanceof Uint8Array) {
    // Bytes have no folder: external references are refused before ONNX Runtime sees them.
    await inlineExternalData(decodeModel(bytes, "model bytes"), { kind: "bytes" }, "model bytes");
  }
  const made = (async () => {
    try {
      const s = await ort.InferenceSession.create(bytes, {
        intraOpNumThreads: backend === "node" ? threads : undefined,
        graphOptimizationLevel: optimization,
        logSeverityLevel: 3,
        ...(interOp > 1 ? { executionMode: "parallel" as const, interOpNumThreads: interOp } : {}),
        ...(spinning || backend !== "node" ? {} : { extra: { session: { intra_op: { allow_spinning: "0" } } } }),
      });
      return new OrtSession(backend, threads, s, ort, blocked);
    } catch (e) {
      cache.delete(key);
      const label = model instanceof Uint8Array ? "model bytes" : model.source;
      throw new QuantlabError(
        "MALFORMED_MODEL",
        `onnxruntime-${backend} rejected ${label}: ${String((e as Error)?.message ?? e)}`,
        {
          cause: e,
        },
      );
    }
  })();
  if (useCache) cache.set(key, made);
  return made;
}

/**
 * The channel block of ONNX Runtime's NCHWc kernels on this CPU for onnxruntime-node (16 with AVX-512, 8 with AVX2),
 * found once per process by running a probe conv plain and blocked; undefined when the native backend does not load
 * or no block size reproduces the plain conv. {@link createSession} uses it for `blockedConvolutions`.
 *
 * @example
 * ```ts
 * import { nchwcBlockSize } from "./session.ts";
 * const block = await nchwcBlockSize();
 * if (block !== undefined && block !== 8 && block !== 16) throw new Error("unexpected block");
 * ```
 */
export async function nchwcBlockSize(): Promise<number | undefined> {
  let ort: OrtModule;
  try {
    ort = (await loadBackend("node")).ort;
  } catch {
    return undefined;
  }
  return probeBlockSize(ort);
}

/**
 * Drop every cached session (releasing them).
 *
 * @example
 * ```ts
 * import { clearSessionCache } from "./session.ts";
 * await clearSessionCache();
 * ```
 */
export async function clearSessionCache(): Promise<void> {
  const all = [...cache.values()];
  cache.clear();
  for (const p of all) {
    const s = await p.catch(() => null);
    if (s) await s.release().catch(() => {});
  }
}
