/**
 * Non-uniform and extreme quantizers on 1M float32 values (N(0, 0.05^2)), per tensor and per channel
 * ([256, 4096], axis 0): fit + fakeQuantize for log2, Lloyd-Max and binary codes; fakeQuantize alone
 * (nearest and stochastic); binary (BinaryConnect, XNOR-Net), ternary (TWN, TTQ) and their gradients.
 *
 * - `deno bench -A benchmarks/nonuniform_bench.ts`: the Deno benchmarks.
 * - `deno run -A benchmarks/nonuniform_bench.ts --peer`: the same cases against reference Python in
 *   one run on the same input (scikit-learn `KMeans` 1-D from the same initial levels for Lloyd-Max;
 *   NumPy `searchsorted` + `take` for fake quantization to a sorted codebook; PyTorch (one thread) for
 *   XNOR-Net and TWN), printing ratios and checking that the Lloyd-Max levels agree.
 *
 * @module
 */
import { printComparison, runPeer, timeMs } from "./peer_harness.ts";
import { binary } from "../lib/extreme/binary.ts";
import { ternary } from "../lib/extreme/ternary.ts";
import { ttqGradient, xnorGradient } from "../lib/extreme/ste.ts";
import { type LevelKind, nonUniform } from "../lib/nonuniform/nonuniform_quantizer.ts";
import { Prng } from "../lib/tensor/prng.ts";
import { Tensor } from "../lib/tensor/tensor.ts";

const ROWS = 256, COLS = 4096, N = ROWS * COLS;
const w = new Prng(1).fillNormal(new Float32Array(N), 0, 0.05) as Float32Array;
const t = Tensor.from(w, [ROWS, COLS]);
const g = new Prng(2).fillNormal(new Float32Array(N)) as Float32Array;
const KINDS: LevelKind[] = ["log2", "lloyd-max", "binary-code"];

function registerBenches(): void {
  for (const kind of KINDS) {
    for (const bits of [2, 4, 8]) {
      const q = nonUniform().levels(kind).bits(bits);
      const fitted = q.fit(t);
      Deno.bench(`${kind} ${bits}-bit per-tensor: fit + fakeQuantize`, { group: `${kind} ${bits}-bit` }, () => {
        q.fit(t).fakeQuantize(t);
      });
      Deno.bench(`${kind} ${bits}-bit per-tensor: fakeQuantize`, { group: `${kind} ${bits}-bit` }, () => {
        fitted.fakeQuantize(t);
      });
      if (bits === 4) {
        const qs = q.rounding("stochastic", { seed: 1 });
        const fs = qs.fit(t);
        Deno.bench(`${kind} 4-bit per-tensor: fakeQuantize stochastic`, { group: `${kind} ${bits}-bit` }, () => {
          fs.fakeQuantize(t);
        });
        const qc = q.perChannel(0);
        Deno.bench(`${kind} 4-bit per-channel(256): fit + fakeQuantize`, { group: `${kind} ${bits}-bit` }, () => {
          qc.fit(t).fakeQuantize(t);
        });
      }
    }
  }
  const bc = binary().binaryConnect(), xn = binary().xnor(), st = binary().rounding("stochastic", { seed: 1 });
  Deno.bench("binary: BinaryConnect fakeQuantize", { group: "binary/ternary" }, () => void bc.fakeQuantize(t));
  Deno.bench("binary: XNOR per-channel fakeQuantize", { group: "binary/ternary" }, () => void xn.fakeQuantize(t));
  Deno.bench("binary: stochastic fakeQuantize", { group: "binary/ternary" }, () => void st.fakeQuantize(t));
  const twn = ternary(), ttq = ternary().ttq().perChannel(0);
  Deno.bench("ternary: TWN per-tensor fakeQuantize", { group: "binary/ternary" }, () => void twn.fakeQuantize(t));
  Deno.bench("ternary: TTQ per-channel fakeQuantize", { group: "binary/ternary" }, () => void ttq.fakeQuantize(t));
  const fttq = ttq.fit(t);
  const layout = { shape: t.shape, axis: 0 };
  Deno.bench("gradient: xnorGradient per-channel", { group: "gradients" }, () => void xnorGradient(w, g, layout));
  Deno.bench("gradient: ttqGradient per-channel", { group: "gradients" }, () => {
    ttqGradient(w, g, fttq.thresholds, fttq.positiveScale, fttq.negativeScale, layout);
  });
}

const PEER_PY = String.raw`
import json, sys, time
import numpy as np
import torch
from sklearn.cluster import KMeans
torch.set_num_threads(1)
job = json.load(sys.stdin)
w = np.fromfile(job["input"], dtype=np.float32)
def best(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); r = fn(); ts.append((time.perf_counter() - t0) * 1000)
    return sorted(ts)[len(ts) // 2], r
out = {}
for bits in job["lloyd_bits"]:
    k = 2 ** bits
    xs = np.sort(w.astype(np.float64)); n = len(xs)
    init = np.array([xs[(j * n) // k:((j + 1) * n) // k].mean() for j in range(k)])
    X = w.astype(np.float64).reshape(-1, 1)
    ms, km = best(lambda: KMeans(n_clusters=k, init=init.reshape(-1, 1), n_init=1, max_iter=100000, tol=0.0, algorithm="lloyd").fit(X), 1)
    out["lloyd%d_ms" % bits] = ms
    out["lloyd%d_levels" % bits] = np.sort(km.cluster_centers_.ravel()).tolist()
    out["lloyd%d_iter" % bits] = int(km.n_iter_)
levels = np.array(job["levels16"], dtype=np.float32)
mid = (levels[1:] + levels[:-1]) / 2
out["fq16_ms"], _ = best(lambda: np.take(levels, np.searchsorted(mid, w, side="left")), 7)
W = torch.from_numpy(w.reshape(256, 4096))
def xnor():
    a = W.abs().mean(dim=1, keepdim=True)
    return torch.where(W >= 0, a, -a)
def twn():
    d = 0.7 * W.abs().mean()
    m = W.abs() > d
    a = W.abs()[m].mean()
    return torch.where(W > d, a, torch.where(W < -d, -a, torch.zeros((), dtype=W.dtype)))
out["xnor_ms"], _ = best(xnor, 7)
out["twn_ms"], _ = best(twn, 7)
print(json.dumps(out))
`;

async function peer(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "quantlab_nonuniform_peer" });
  const input = `${dir}/w.f32`, script = `${dir}/peer.py`;
  await Deno.writeFile(input, new Uint8Array(w.buffer));
  await Deno.writeTextFile(script, PEER_PY);
  const ITER = { warmup: 2, iterations: 7 };
  const lloydBits = [2, 4];
  const ours: Record<string, number> = {};
  const levels: Record<number, Float32Array> = {};
  const iters: Record<number, number> = {};
  for (const bits of lloydBits) {
    const q = nonUniform().levels("lloyd-max").bits(bits);
    ours[`lloyd${bits}`] = timeMs(() => q.fit(t), ITER);
    const f = q.fit(t);
    levels[bits] = f.levelsOf(0);
    iters[bits] = f.iterations[0];
  }
  const f16 = nonUniform().levels("lloyd-max").bits(4).fit(t);
  ours.fq16 = timeMs(() => f16.fakeQuantize(t), { warmup: 3, iterations: 15 });
  ours.xnor = timeMs(() => binary().xnor().fakeQuantize(t), { warmup: 3, iterations: 15 });
  ours.twn = timeMs(() => ternary().fakeQuantize(t), { warmup: 3, iterations: 15 });
  const ref = await runPeer<Record<string, number | number[]>>(script, {
    input,
    lloyd_bits: lloydBits,
    levels16: Array.from(f16.levelsOf(0)),
  });
  await Deno.remove(dir, { recursive: true });
  const num = (k: string) => (ref ? ref[k] as number : NaN);
  printComparison("Non-uniform and extreme quantizers, 1M float32 values, one thread", "reference", [
    ...lloydBits.map((b) => ({
      name: `Lloyd-Max ${b}-bit fit to convergence (${iters[b]} iterations; sklearn KMeans 1-D, same init)`,
      oursMs: ours[`lloyd${b}`],
      peerMs: num(`lloyd${b}_ms`),
    })),
    { name: "fakeQuantize to 16 sorted levels (NumPy searchsorted + take)", oursMs: ours.fq16, peerMs: num("fq16_ms") },
    { name: "XNOR per-channel fakeQuantize [256, 4096] (PyTorch)", oursMs: ours.xnor, peerMs: num("xnor_ms") },
    { name: "TWN per-tensor fakeQuantize (PyTorch)", oursMs: ours.twn, peerMs: num("twn_ms") },
  ]);
  if (ref) {
    for (const b of lloydBits) {
      const theirs = ref[`lloyd${b}_levels`] as number[];
      let maxDiff = 0;
      theirs.forEach((v, j) => maxDiff = Math.max(maxDiff, Math.abs(v - levels[b][j])));
      console.log(
        `Lloyd-Max ${b}-bit: max |level difference| vs sklearn = ${maxDiff.toExponential(2)}` +
          ` (quantlab ${iters[b]} iterations, sklearn ${ref[`lloyd${b}_iter`]})`,
      );
    }
  } else console.log("reference Python unavailable: peer columns are n/a");
}

if (Deno.args.includes("--peer")) await peer();
else registerBenches();
