/**
 * Peak extra memory of one codec operation, measured in a fresh process (Linux: `/proc/self/status` VmHWM after
 * resetting it through `/proc/self/clear_refs`). Run as
 * `deno run -A --v8-flags=--expose-gc tests/hostile/_mem_probe.ts <case> <megabytes>`; prints one JSON line
 * `{ case, inputBytes, extraBytes, seconds }`. Cases: `decode-unknown`, `decode-empty-nodes`, `encode-large`.
 *
 * @module
 */
import { decodeModel, encodeModel, type ModelProto } from "../../lib/onnx/proto.ts";
import { emptyNodeFlood, largeModel, unknownFieldFlood } from "./_gen.ts";

function status(key: string): number {
  const m = new RegExp(`${key}:\\s+(\\d+) kB`).exec(Deno.readTextFileSync("/proc/self/status"));
  return m ? Number(m[1]) * 1024 : NaN;
}

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const [kind, mbArg] = Deno.args;
const mb = Number(mbArg ?? 5);
let input: Uint8Array | undefined;
let proto: ModelProto | undefined;
if (kind === "decode-unknown") input = unknownFieldFlood(mb * 1e6);
else if (kind === "decode-empty-nodes") input = emptyNodeFlood(mb * 1e6);
else if (kind === "encode-large") proto = largeModel(mb);
else throw new Error(`unknown case ${kind}`);
const inputBytes = input?.length ?? mb * 1048576;
gc();
gc();
await new Promise((r) => setTimeout(r, 50));
Deno.writeTextFileSync("/proc/self/clear_refs", "5");
const before = status("VmRSS");
const t0 = performance.now();
let result: unknown;
try {
  result = input ? decodeModel(input, kind) : encodeModel(proto!);
} catch (e) {
  result = (e as { code?: string }).code ?? String(e);
}
const seconds = (performance.now() - t0) / 1000;
const peak = status("VmHWM");
console.log(JSON.stringify({
  case: kind,
  inputBytes,
  extraBytes: peak - before,
  seconds,
  result: typeof result === "string" ? result : "ok",
  keep: result ? 1 : 0,
}));
