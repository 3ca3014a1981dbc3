/**
 * Peer comparison: quantlab's product quantizer against faiss's `ProductQuantizer` (Debian python3-faiss,
 * one thread) on the same data in the same run.
 *
 * Task (issue 4): d = 64, M = 8, K = 256, 25 iterations, 100,000 standard-normal float32 vectors; train on
 * up to 256 points per centroid (65,536 vectors), then encode all 100,000. Targets: train and encode each
 * no slower than faiss; reconstruction MSE (per vector) at most 1.02x faiss's.
 *
 * Run: `deno run -A benchmarks/pq_peer.ts [--reps 3] [--n 100000] [--backend simd|js]`
 *
 * @module
 */
import { Prng } from "../lib/tensor/prng.ts";
import { productQuantizer } from "../lib/vq/mod.ts";
import type { NearestBackend } from "../lib/vq/mod.ts";
import { printComparison, runPeer } from "./peer_harness.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

const n = Number(arg("n", "100000")), d = 64, M = 8, K = 256, iterations = 25, maxPpc = 256;
const reps = Number(arg("reps", "3"));
const backend = arg("backend", "simd") as NearestBackend;
const x = new Prng(42).fillNormal(new Float32Array(n * d)) as Float32Array;
const path = await Deno.makeTempFile({ suffix: ".f32" });
await Deno.writeFile(path, new Uint8Array(x.buffer));

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const train: number[] = [], encode: number[] = [];
let mse = NaN;
for (let r = 0; r < reps; r++) {
  const t0 = performance.now();
  const pq = productQuantizer().subvectors(M).centroids(K).iterations(iterations).seed(1234)
    .maxPointsPerCentroid(maxPpc).backend(backend).fit(x, d);
  const t1 = performance.now();
  const codes = pq.encode(x, d);
  const t2 = performance.now();
  train.push(t1 - t0);
  encode.push(t2 - t1);
  mse = pq.reconstructionError(x, codes).squaredErrorPerVector;
}

const peer = await runPeer<{ train_ms: number; encode_ms: number; mse: number; faiss: string; train_all_ms: number[] }>(
  new URL("./pq_peer.py", import.meta.url),
  { path, n, d, M, nbits: Math.log2(K), iterations, maxPointsPerCentroid: maxPpc, seed: 1234, threads: 1, reps },
);
await Deno.remove(path);

console.log(
  `quantlab train runs (ms): ${train.map((t) => t.toFixed(0)).join(", ")}; encode runs: ${
    encode.map((t) => t.toFixed(0)).join(", ")
  }`,
);
if (peer) console.log(`faiss ${peer.faiss} train runs (ms): ${peer.train_all_ms.map((t) => t.toFixed(0)).join(", ")}`);
printComparison(`PQ d=${d} M=${M} K=${K}, ${iterations} iterations, n=${n} (${backend})`, "faiss", [
  { name: "train", oursMs: median(train), peerMs: peer?.train_ms ?? NaN, maxRatio: 1 },
  { name: "encode all", oursMs: median(encode), peerMs: peer?.encode_ms ?? NaN, maxRatio: 1 },
]);
const ratio = peer ? mse / peer.mse : NaN;
console.log(
  `\nreconstruction MSE per vector: quantlab ${mse.toFixed(4)}, faiss ${peer?.mse.toFixed(4) ?? "n/a"}, ratio ${
    ratio.toFixed(4)
  } (target <= 1.02: ${ratio <= 1.02 ? "met" : "MISSED"})`,
);
