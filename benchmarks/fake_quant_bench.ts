/**
 * `deno bench -A benchmarks/fake_quant_bench.ts`: uniform affine kernels on a 256 x 4096 float32 matrix
 * (1 M elements): fake-quantize, quantize and dequantize per-tensor, per-channel and per-group, and the fluent
 * `quantizer().perChannel()` fit + fakeQuantize path. Peer comparison with PyTorch: fake_quant_peer.ts.
 *
 * @module
 */
import { dequantizeTensor, fakeQuantizeTensor, quantizeTensor } from "../lib/quant/affine.ts";
import { type Granularity, paramsFromRange, type QuantScheme, resolveGranularity } from "../lib/quant/params.ts";
import { quantizer } from "../lib/quant/quantizer.ts";
import { slotMinMax } from "../lib/quant/slots.ts";
import { Prng } from "../lib/tensor/prng.ts";
import { Tensor } from "../lib/tensor/tensor.ts";

const ROWS = 256, COLS = 4096;
const x = Tensor.from(new Prng(1).fillNormal(new Float32Array(ROWS * COLS), 0, 0.05) as Float32Array, [ROWS, COLS]);
const out = new Float32Array(ROWS * COLS);
const scheme: QuantScheme = { bits: 8, signed: true, symmetric: true, range: "restricted" };

const layouts: [string, Granularity][] = [
  ["per-tensor", { kind: "tensor" }],
  ["per-channel(axis 0)", { kind: "channel", axis: 0 }],
  ["per-channel(axis 1)", { kind: "channel", axis: 1 }],
  ["per-group(32, axis 1)", { kind: "group", axis: 1, groupSize: 32 }],
];

for (const [label, g] of layouts) {
  const { slots, granularity } = resolveGranularity(g, x.shape);
  const { min, max } = slotMinMax(x.data, x.shape, granularity, slots);
  const p = paramsFromRange(min, max, scheme, granularity);
  const codes = quantizeTensor(x, p);
  Deno.bench(`fakeQuantize ${label}`, { group: label, baseline: true }, () => {
    fakeQuantizeTensor(x, p, { out });
  });
  Deno.bench(`fakeQuantize ${label}, stochastic`, { group: label }, () => {
    fakeQuantizeTensor(x, p, { out, rounding: "stochastic", seed: 1 });
  });
  Deno.bench(`quantize ${label} (int8 codes)`, { group: label }, () => {
    quantizeTensor(x, p);
  });
  Deno.bench(`dequantize ${label}`, { group: label }, () => {
    dequantizeTensor(codes, p);
  });
  Deno.bench(`slotMinMax ${label}`, { group: label }, () => {
    slotMinMax(x.data, x.shape, granularity, slots);
  });
}

const q = quantizer().int(8).symmetric().perChannel(0);
Deno.bench("quantizer().int(8).symmetric().perChannel(0).fit(w).fakeQuantize(w)", { group: "builder" }, () => {
  q.fit(x).fakeQuantize(x);
});
Deno.bench("quantizer().int(4).perGroup(32).fakeQuantize(w)", { group: "builder" }, () => {
  quantizer().int(4).perGroup(32).fakeQuantize(x);
});
