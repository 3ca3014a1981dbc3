/**
 * ONNX codec costs (issue 15): decode time of many-node graphs, peak extra memory of decoding unknown-field and
 * minimal-node floods and of encoding a large model, each in a fresh process (`tests/hostile/_mem_probe.ts`,
 * Linux VmHWM).
 *
 * `deno bench -A benchmarks/onnx_codec_bench.ts` times decoding; `deno run -A benchmarks/onnx_codec_bench.ts`
 * prints the memory table recorded in `results_onnx.md`.
 *
 * @module
 */
import { OnnxModel } from "../lib/onnx/model.ts";
import { encodeModel } from "../lib/onnx/proto.ts";
import { largeModel, manyNodeModel } from "../tests/hostile/_gen.ts";

const wide = encodeModel(manyNodeModel(40_000, "wide"));
const chain = encodeModel(manyNodeModel(40_000, "chain"));
const big = largeModel(32);

Deno.bench("decode + validate 40,000-node wide graph (0.75 MB)", () => {
  OnnxModel.decode(wide);
});
Deno.bench("decode + validate 40,000-node reversed chain (0.94 MB)", () => {
  OnnxModel.decode(chain);
});
Deno.bench("encode a 32 MB model", () => {
  encodeModel(big);
});

if (import.meta.main) {
  const probe = new URL("../tests/hostile/_mem_probe.ts", import.meta.url).pathname;
  const rows: string[] = [];
  for (const [kind, mb] of [["decode-unknown", 5], ["decode-empty-nodes", 5], ["encode-large", 192]] as const) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--v8-flags=--expose-gc", probe, kind, String(mb)],
    }).output();
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    rows.push(
      `| ${kind} | ${(r.inputBytes / 1e6).toFixed(1)} MB | ${(r.extraBytes / 1e6).toFixed(1)} MB | ` +
        `${(r.extraBytes / r.inputBytes).toFixed(2)}x | ${r.seconds.toFixed(2)} s | ${r.result} |`,
    );
  }
  console.log("| case | input | peak extra memory | ratio | time | result |\n|---|---:|---:|---:|---:|---|");
  console.log(rows.join("\n"));
}
