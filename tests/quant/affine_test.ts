import assert from "node:assert/strict";
import { QuantlabError } from "../../lib/errors.ts";
import { codeDtype, dequantizeTensor, fakeQuantizeTensor, quantizeTensor } from "../../lib/quant/affine.ts";
import { type Granularity, paramsFromRange, type QuantParams, type QuantScheme } from "../../lib/quant/params.ts";
import { ROUNDING_MODES } from "../../lib/quant/rounding.ts";
import { slotMinMax } from "../../lib/quant/slots.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { simdAvailable, useSimd } from "../../lib/tensor/simd.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";

// ---------------------------------------------------------------------------------------------
// PyTorch golden fixtures (tests/fixtures/make_fake_quant_fixtures.py -> fake_quant.json)

interface RawCase {
  name: string;
  shape: number[];
  axis: number | null;
  bits: number;
  signed: boolean;
  symmetric: boolean;
  range: "full" | "restricted";
  qmin: number;
  qmax: number;
  observer: string | null;
  x: string;
  scale: string;
  zeroPoint: number[];
  y: string;
  ties: number;
  clamped: number;
  codes?: number[];
  observedPatch?: [number, number][];
}

function f32(b64: string): Float32Array {
  return new Float32Array(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer);
}

const FIXTURE = JSON.parse(
  Deno.readTextFileSync(new URL("../fixtures/fake_quant.json", import.meta.url)),
) as { torch: string; cases: RawCase[] };

const CASES = FIXTURE.cases.map((c) => {
  const x = f32(c.x);
  let observed: Float32Array | null = null;
  if (c.observer) {
    observed = x.slice();
    for (const [i, v] of c.observedPatch ?? []) observed[i] = v;
  }
  return { ...c, x, observed, scale: f32(c.scale), zeroPoint: Int32Array.from(c.zeroPoint), y: f32(c.y) };
});
type Case = (typeof CASES)[number];

function paramsOf(c: Case, g: Granularity): QuantParams {
  return {
    bits: c.bits,
    signed: c.signed,
    symmetric: c.symmetric,
    range: c.range,
    qmin: c.qmin,
    qmax: c.qmax,
    scale: c.scale,
    zeroPoint: c.zeroPoint,
    granularity: g,
  };
}

function granularities(c: Case): Granularity[] {
  if (c.axis === null) return [{ kind: "tensor" }];
  // the same axis, also written negative
  return [{ kind: "channel", axis: c.axis }, { kind: "channel", axis: c.axis - c.shape.length }];
}

/** Index of the first element that differs in the Object.is sense (-1 if none). */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

function assertBitIdentical(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  const d = firstDiff(actual, expected);
  assert.equal(d, -1, `${what}: element ${d} is ${actual[d]}, expected ${expected[d]}`);
}

/** Run `fn` with the Wasm SIMD kernels on and with the scalar fallback. */
function bothPaths(fn: (path: string) => void): void {
  useSimd(true);
  fn(simdAvailable() ? "simd" : "scalar");
  useSimd(false);
  try {
    fn("scalar");
  } finally {
    useSimd(true);
  }
}

Deno.test("fixtures cover the cases the brief asks for", () => {
  const bits = new Set(CASES.map((c) => c.bits));
  for (let b = 2; b <= 16; b++) assert.ok(bits.has(b), `bits ${b} missing`);
  assert.ok(CASES.some((c) => c.signed) && CASES.some((c) => !c.signed));
  assert.ok(CASES.some((c) => c.range === "restricted") && CASES.some((c) => !c.symmetric));
  const axes = new Set(CASES.filter((c) => c.axis !== null).map((c) => `${c.axis}/${c.shape.length}`));
  for (const a of ["0/3", "1/3", "2/3", "0/2", "1/2", "0/1"]) assert.ok(axes.has(a), `axis ${a} missing`);
  // exact .5 ties and clamping both occur, so nearest-even and clamping are really exercised
  assert.ok(CASES.reduce((n, c) => n + c.ties, 0) > 300);
  assert.ok(CASES.reduce((n, c) => n + c.clamped, 0) > 300);
  assert.ok(CASES.filter((c) => c.observer).length > 150);
});

Deno.test("fakeQuantizeTensor is bit-identical to torch.fake_quantize_per_{tensor,channel}_affine", () => {
  bothPaths((path) => {
    for (const c of CASES) {
      for (const g of granularities(c)) {
        const y = fakeQuantizeTensor(Tensor.from(c.x, c.shape), paramsOf(c, g), { name: c.name });
        assertBitIdentical(y.data, c.y, `${c.name} (${path}, axis ${g.kind === "channel" ? g.axis : "-"})`);
      }
    }
  });
});

Deno.test("observer parameters: slotMinMax + paramsFromRange equal torch's _calculate_qparams bit for bit", () => {
  let checked = 0;
  for (const c of CASES) {
    if (!c.observed) continue;
    for (const g of granularities(c)) {
      const { min, max } = slotMinMax(c.observed, c.shape, g, c.scale.length);
      const p = paramsFromRange(min, max, c, g);
      assert.equal(p.qmin, c.qmin, c.name);
      assert.equal(p.qmax, c.qmax, c.name);
      assertBitIdentical(p.scale, c.scale, `${c.name} scale`);
      assertBitIdentical(p.zeroPoint, c.zeroPoint, `${c.name} zero point`);
      checked++;
    }
  }
  assert.ok(checked > 150);
});

Deno.test("quantizeTensor codes equal torch.quantize_per_{tensor,channel}().int_repr(); dequantize equals torch's fake quant", () => {
  let checked = 0;
  for (const c of CASES) {
    if (!c.codes) continue;
    for (const g of granularities(c)) {
      const p = paramsOf(c, g);
      const q = quantizeTensor(Tensor.from(c.x, c.shape), p);
      assert.equal(q.dtype, c.signed ? "int8" : "uint8");
      assertBitIdentical(q.data, c.codes, `${c.name} codes`);
      assertBitIdentical(dequantizeTensor(q, p).data, c.y, `${c.name} dequantized`);
      checked++;
    }
  }
  assert.ok(checked >= 20);
  // every bit width: dequantize(quantize(x)) reproduces torch's fake quantization exactly
  for (const c of CASES) {
    const p = paramsOf(c, granularities(c)[0]);
    assertBitIdentical(dequantizeTensor(quantizeTensor(Tensor.from(c.x, c.shape), p), p).data, c.y, c.name);
  }
});

Deno.test("tie cases only pass with nearest-even: other modes disagree with torch there", () => {
  const ties = CASES.filter((c) => c.name.startsWith("ties/"));
  assert.ok(ties.length >= 10);
  for (const c of ties) {
    assert.ok(c.ties > 0, c.name);
    for (const mode of ["nearest-away", "floor", "ceil"] as const) {
      const y = fakeQuantizeTensor(Tensor.from(c.x, c.shape), paramsOf(c, granularities(c)[0]), { rounding: mode });
      assert.notEqual(firstDiff(y.data, c.y), -1, `${c.name} with ${mode} should differ from torch`);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Wasm SIMD path vs scalar path on large random data

function randomParams(rng: Prng, scheme: QuantScheme, g: Granularity, slots: number): QuantParams {
  const min = new Float64Array(slots), max = new Float64Array(slots);
  for (let k = 0; k < slots; k++) {
    const a = rng.nextNormal() * 2, b = rng.nextNormal() * 2;
    min[k] = Math.fround(Math.min(a, b));
    max[k] = Math.fround(Math.max(a, b) + 1e-3);
  }
  return paramsFromRange(min, max, scheme, g);
}

Deno.test("SIMD and scalar fake quantization agree exactly on large random tensors (with ties and clamping)", () => {
  const rng = new Prng(11);
  const schemes: QuantScheme[] = [
    { bits: 8, signed: true, symmetric: true, range: "restricted" },
    { bits: 4, signed: false, symmetric: false, range: "full" },
    { bits: 16, signed: true, symmetric: false, range: "full" },
    { bits: 2, signed: true, symmetric: true, range: "full" },
  ];
  const shape = [6, 259];
  for (const scheme of schemes) {
    for (const g of [{ kind: "tensor" }, { kind: "channel", axis: 0 }] as Granularity[]) {
      const slots = g.kind === "tensor" ? 1 : 6;
      const p = randomParams(rng, scheme, g, slots);
      const x = rng.fillNormal(new Float32Array(6 * 259), 0, 3) as Float32Array;
      // plant exact ties k + 0.5 (power-of-two scale) and -0
      const p2: QuantParams = { ...p, scale: p.scale.map(() => 0.125) };
      const xt = x.map((v, i) => i % 3 === 0 ? (Math.round(v * 8) + 0.5) / 8 : v);
      xt[5] = -0;
      for (const [params, data] of [[p, x], [p2, xt]] as const) {
        const t = Tensor.from(data, shape);
        useSimd(true);
        const a = fakeQuantizeTensor(t, params).data;
        useSimd(false);
        const b = fakeQuantizeTensor(t, params).data;
        useSimd(true);
        assertBitIdentical(a, b, `${JSON.stringify(scheme)} ${g.kind}`);
        // and both equal the scalar formula, written out here independently
        for (let i = 0; i < data.length; i++) {
          const k = g.kind === "tensor" ? 0 : Math.floor(i / 259);
          const s = params.scale[k], z = params.zeroPoint[k];
          const v = Math.fround(data[i] * Math.fround(1 / s));
          let q = Math.round(v);
          if (Math.abs(v % 1) === 0.5 && q % 2 !== 0) q -= 1; // ties to even (Math.round: ties up)
          q = Math.min(params.qmax, Math.max(params.qmin, q + z));
          assert.ok(Object.is(a[i], Math.fround((q - z) * s)), `element ${i}`);
        }
      }
    }
  }
});

Deno.test("fake quantization in place (out = input) equals the out-of-place result", () => {
  const x = new Prng(3).fillNormal(new Float32Array(1000)) as Float32Array;
  const p = randomParams(
    new Prng(4),
    { bits: 5, signed: true, symmetric: false, range: "full" },
    { kind: "tensor" },
    1,
  );
  const want = fakeQuantizeTensor(Tensor.from(x), p).data;
  const y = x.slice();
  fakeQuantizeTensor(Tensor.from(y), p, { out: y });
  assertBitIdentical(y, want, "in place");
});

// ---------------------------------------------------------------------------------------------
// Properties over seeded random cases

const SCHEMES: QuantScheme[] = [];
for (const bits of [2, 3, 4, 5, 8, 12, 16]) {
  SCHEMES.push({ bits, signed: true, symmetric: true, range: "restricted" });
  SCHEMES.push({ bits, signed: true, symmetric: true, range: "full" });
  SCHEMES.push({ bits, signed: true, symmetric: false, range: "full" });
  SCHEMES.push({ bits, signed: false, symmetric: false, range: "full" });
  SCHEMES.push({ bits, signed: false, symmetric: true, range: "restricted" });
}

function randomCase(rng: Prng) {
  const scheme = SCHEMES[rng.nextInt(SCHEMES.length)];
  const rank = 1 + rng.nextInt(3);
  const shape = Array.from({ length: rank }, () => 1 + rng.nextInt(9));
  const size = shape.reduce((a, b) => a * b, 1);
  const x = rng.fillNormal(new Float32Array(size), rng.nextNormal(), 0.1 + 3 * rng.nextFloat()) as Float32Array;
  const axis = rng.nextInt(rank);
  const kinds: Granularity[] = [{ kind: "tensor" }, { kind: "channel", axis }];
  const divisors = [];
  for (let d = 1; d <= shape[axis]; d++) if (shape[axis] % d === 0) divisors.push(d);
  kinds.push({ kind: "group", axis, groupSize: divisors[rng.nextInt(divisors.length)] });
  const g = kinds[rng.nextInt(3)];
  const slots = g.kind === "tensor" ? 1 : g.kind === "channel" ? shape[axis] : size / g.groupSize;
  const { min, max } = slotMinMax(x, shape, g, slots);
  const p = paramsFromRange(min, max, scheme, g);
  // evaluate on data that partly leaves the fitted range
  const xe = x.map((v) => v * (0.5 + rng.nextFloat()));
  return { scheme, shape, x: xe, p };
}

Deno.test("property: codes stay in [qmin, qmax], quantize(dequantize(q)) === q, fake quantization is idempotent", () => {
  const rng = new Prng(2024);
  for (let trial = 0; trial < 300; trial++) {
    const { shape, x, p } = randomCase(rng);
    const mode = ROUNDING_MODES[trial % ROUNDING_MODES.length];
    const q = quantizeTensor(Tensor.from(x, shape), p, { rounding: mode, seed: trial });
    assert.equal(q.dtype, codeDtype(p));
    for (const v of q.data) assert.ok(v >= p.qmin && v <= p.qmax && Number.isInteger(v), `code ${v}`);
    const r = dequantizeTensor(q, p);
    for (const m of ["nearest-even", "nearest-away"] as const) {
      // dequantized values sit on the grid up to float32 rounding (far below 0.5 code), so nearest modes map
      // them back to q (floor/ceil need not: fround((q - Z) S) / S may land a hair below q - Z)
      assertBitIdentical(quantizeTensor(r, p, { rounding: m, seed: 1 }).data, q.data, `trial ${trial} ${m}`);
    }
    const y = fakeQuantizeTensor(Tensor.from(x, shape), p, { rounding: mode, seed: trial });
    assertBitIdentical(fakeQuantizeTensor(y, p).data, y.data, `idempotent, trial ${trial}`);
    if (mode !== "stochastic") assertBitIdentical(y.data, r.data, `fake = dequantize(quantize), trial ${trial}`);
  }
});

Deno.test("property: zero is exact (fakeQuantize(0) === +0) for every fitted scheme and granularity", () => {
  const rng = new Prng(99);
  for (let trial = 0; trial < 200; trial++) {
    const { shape, p } = randomCase(rng);
    const zeros = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (const v of fakeQuantizeTensor(Tensor.from(zeros, shape), p).data) assert.ok(Object.is(v, 0));
    zeros.fill(-0);
    for (const v of fakeQuantizeTensor(Tensor.from(zeros, shape), p).data) assert.ok(Object.is(v, 0));
  }
});

Deno.test("property: error is non-increasing in bits on the same data", () => {
  const rng = new Prng(5);
  for (let trial = 0; trial < 20; trial++) {
    const x = rng.fillNormal(new Float32Array(2000), 0, 1 + trial) as Float32Array;
    const t = Tensor.from(x, [20, 100]);
    for (
      const base of [{ signed: true, symmetric: true, range: "restricted" }, {
        signed: false,
        symmetric: false,
        range: "full",
      }] as const
    ) {
      for (const g of [{ kind: "tensor" }, { kind: "channel", axis: 0 }] as Granularity[]) {
        let prev = Infinity;
        for (let bits = 2; bits <= 16; bits++) {
          const { min, max } = slotMinMax(x, t.shape, g, g.kind === "tensor" ? 1 : 20);
          const p = paramsFromRange(min, max, { bits, ...base }, g);
          const y = fakeQuantizeTensor(t, p).data;
          let mse = 0;
          for (let i = 0; i < x.length; i++) mse += (x[i] - y[i]) ** 2;
          assert.ok(mse <= prev * (1 + 1e-9), `bits ${bits}: ${mse} > ${prev}`);
          prev = mse;
        }
      }
    }
  }
});

Deno.test("stochastic rounding in the kernel is unbiased, with variance frac * (1 - frac), and seeded", () => {
  const s = 0.25;
  const p: QuantParams = {
    bits: 8,
    signed: true,
    symmetric: true,
    range: "restricted",
    qmin: -127,
    qmax: 127,
    scale: new Float32Array([s]),
    zeroPoint: new Int32Array([0]),
    granularity: { kind: "tensor" },
  };
  for (const v of [0.3, -1.1, 2.0625, 5.2]) {
    for (const n of [1000, 20000]) {
      const x = new Float32Array(n).fill(v);
      const y = fakeQuantizeTensor(Tensor.from(x), p, { rounding: "stochastic", seed: n }).data;
      const u = Math.fround(v * Math.fround(1 / s));
      const frac = u - Math.floor(u);
      let mean = 0, m2 = 0;
      for (const e of y) {
        const d = e / s - u;
        mean += d;
        m2 += d * d;
      }
      mean /= n;
      const variance = m2 / n - mean * mean;
      const sigma = Math.sqrt(frac * (1 - frac));
      assert.ok(Math.abs(mean) <= 4 * sigma / Math.sqrt(n) + 1e-12, `v=${v} n=${n} mean ${mean}`);
      // Var[(X - p)^2] = pq(1 - 4pq) for X ~ Bernoulli(p): allow 4 sigma
      const pq = frac * (1 - frac);
      assert.ok(Math.abs(variance - pq) <= 4 * Math.sqrt(pq * (1 - 4 * pq) / n) + 1e-3 * pq, `v=${v} n=${n}`);
      for (const e of y) assert.ok(e / s === Math.floor(u) || e / s === Math.ceil(u));
    }
  }
  const x = new Prng(8).fillNormal(new Float32Array(500)) as Float32Array;
  const a = fakeQuantizeTensor(Tensor.from(x), p, { rounding: "stochastic", seed: 3 }).data;
  const b = fakeQuantizeTensor(Tensor.from(x), p, { rounding: "stochastic", seed: 3 }).data;
  const c = fakeQuantizeTensor(Tensor.from(x), p, { rounding: "stochastic", seed: 4 }).data;
  assertBitIdentical(a, b, "same seed");
  assert.notEqual(firstDiff(a, c), -1);
});

Deno.test("every rounding mode in the kernel on hand cases", () => {
  const p: QuantParams = {
    bits: 4,
    signed: true,
    symmetric: false,
    range: "full",
    qmin: -8,
    qmax: 7,
    scale: new Float32Array([1]),
    zeroPoint: new Int32Array([1]),
    granularity: { kind: "tensor" },
  };
  const x = Tensor.from([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.2, -0.2, 9.5, -20]);
  const want: Record<string, number[]> = {
    "nearest-even": [-2, -2, 0, 0, 2, 2, 0, 0, 6, -9],
    "nearest-away": [-3, -2, -1, 1, 2, 3, 0, 0, 6, -9],
    floor: [-3, -2, -1, 0, 1, 2, 0, -1, 6, -9],
    ceil: [-2, -1, 0, 1, 2, 3, 1, 0, 6, -9],
  };
  for (const [mode, codes] of Object.entries(want)) {
    const y = fakeQuantizeTensor(x, p, { rounding: mode as "floor" });
    assert.deepEqual(Array.from(y.data), codes, mode);
    assert.deepEqual(quantizeTensor(x, p, { rounding: mode as "floor" }).toArray(), codes.map((c) => c + 1), mode);
  }
});

Deno.test("per-group (ONNX blocked layout): scale shape = input shape with the axis divided by the group size", () => {
  // [2, 3, 4], groups of 2 along axis 2 -> scale shape [2, 3, 2] (12 slots); along axis 1 (size 3, groups of 3) -> [2, 1, 4]
  const rng = new Prng(6);
  const x = rng.fillNormal(new Float32Array(24)) as Float32Array;
  const shape = [2, 3, 4];
  const scheme: QuantScheme = { bits: 3, signed: true, symmetric: true, range: "restricted" };
  for (const [axis, gs, scaleShape] of [[2, 2, [2, 3, 2]], [1, 3, [2, 1, 4]], [0, 1, [2, 3, 4]]] as const) {
    const g: Granularity = { kind: "group", axis, groupSize: gs };
    const slots = (scaleShape as readonly number[]).reduce((a, b) => a * b, 1);
    const { min, max } = slotMinMax(x, shape, g, slots);
    const p = paramsFromRange(min, max, scheme, g);
    const y = fakeQuantizeTensor(Tensor.from(x, shape), p).data;
    // reference: element (i, j, k) uses scale index with the axis coordinate divided by gs
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 3; j++) {
        for (let k = 0; k < 4; k++) {
          const idx = [i, j, k];
          idx[axis] = Math.floor(idx[axis] / gs);
          const slot = (idx[0] * scaleShape[1] + idx[1]) * scaleShape[2] + idx[2];
          const flat = (i * 3 + j) * 4 + k;
          // the slot's range is the min/max over its block
          let lo = Infinity, hi = -Infinity;
          for (let f = 0; f < 24; f++) {
            const c = [Math.floor(f / 12), Math.floor(f / 4) % 3, f % 4];
            c[axis] = Math.floor(c[axis] / gs);
            if ((c[0] * scaleShape[1] + c[1]) * scaleShape[2] + c[2] === slot) {
              lo = Math.min(lo, x[f]);
              hi = Math.max(hi, x[f]);
            }
          }
          assert.equal(min[slot], lo);
          assert.equal(max[slot], hi);
          const s = p.scale[slot];
          let q = Math.fround(x[flat] * Math.fround(1 / s));
          q = Math.min(3, Math.max(-3, q - Math.floor(q) === 0.5 ? 2 * Math.round(q / 2) : Math.round(q))) + 0; // +0, not -0
          assert.ok(Object.is(y[flat], Math.fround(q * s)), `axis ${axis} element ${flat}`);
        }
      }
    }
  }
});

Deno.test("quantize dtypes: int8, uint8 and int32 codes", () => {
  const x = Tensor.from([-1, 0, 1]);
  const make = (qmin: number, qmax: number): QuantParams => ({
    bits: 8,
    signed: qmin < 0,
    symmetric: false,
    range: "full",
    qmin,
    qmax,
    scale: new Float32Array([1 / 64]),
    zeroPoint: new Int32Array([qmin < 0 ? 0 : 100]),
    granularity: { kind: "tensor" },
  });
  assert.equal(quantizeTensor(x, make(-128, 127)).dtype, "int8");
  assert.deepEqual(quantizeTensor(x, make(-128, 127)).toArray(), [-64, 0, 64]);
  assert.equal(quantizeTensor(x, make(0, 255)).dtype, "uint8");
  assert.deepEqual(quantizeTensor(x, make(0, 255)).toArray(), [36, 100, 164]);
  const wide = quantizeTensor(x, make(-32768, 32767));
  assert.equal(wide.dtype, "int32");
  assert.deepEqual(wide.toArray(), [-64, 0, 64]);
  assert.deepEqual(dequantizeTensor(wide, make(-32768, 32767)).toArray(), [-1, 0, 1]);
  assert.deepEqual(dequantizeTensor(new Tensor(new Uint8Array([36, 100, 164])), make(0, 255)).toArray(), [-1, 0, 1]);
});

// ---------------------------------------------------------------------------------------------
// Bad input

function throwsCode(fn: () => unknown, code: string, mention?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof QuantlabError, `expected QuantlabError, got ${e}`);
    assert.equal(e.code, code, e.message);
    if (mention) assert.ok(e.message.includes(mention), `"${e.message}" should mention ${mention}`);
    return true;
  });
}

Deno.test("bad input raises QuantlabError with the right code and the tensor name", () => {
  const p = paramsFromRange([-1], [1], { bits: 8, signed: true, symmetric: true, range: "restricted" }, {
    kind: "tensor",
  });
  const name = "conv1.weight";
  bothPaths(() => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      for (const n of [5, 100]) {
        const x = new Float32Array(n).fill(0.5);
        x[n - 2] = bad;
        throwsCode(() => fakeQuantizeTensor(Tensor.from(x), p, { name }), "NON_FINITE", name);
        throwsCode(() => quantizeTensor(Tensor.from(x), p, { name }), "NON_FINITE", name);
        throwsCode(() => fakeQuantizeTensor(Tensor.from(x), p, { name, rounding: "floor" }), "NON_FINITE", name);
        throwsCode(() => slotMinMax(x, [n], { kind: "tensor" }, 1, undefined, name), "NON_FINITE", name);
        throwsCode(() => slotMinMax(x, [1, n], { kind: "channel", axis: 1 }, n, undefined, name), "NON_FINITE", name);
      }
    }
  });
  // wrong parameter counts for the granularity
  const pc = paramsFromRange([-1, -1], [1, 1], p, { kind: "channel", axis: 0 });
  throwsCode(() => fakeQuantizeTensor(Tensor.from([1, 2, 3, 4, 5, 6], [3, 2]), pc, { name }), "SHAPE_MISMATCH", name);
  throwsCode(() => quantizeTensor(Tensor.from([1, 2, 3, 4, 5, 6], [3, 2]), pc, { name }), "SHAPE_MISMATCH", name);
  throwsCode(() => dequantizeTensor(new Tensor(new Int8Array(6), [3, 2]), pc, { name }), "SHAPE_MISMATCH", name);
  // axis out of range, group size not dividing the axis
  const pa = { ...pc, granularity: { kind: "channel", axis: 2 } } as QuantParams;
  throwsCode(() => fakeQuantizeTensor(Tensor.from([1, 2, 3, 4], [2, 2]), pa, { name }), "AXIS_OUT_OF_RANGE", name);
  const pg = { ...pc, granularity: { kind: "group", axis: 1, groupSize: 2 } } as QuantParams;
  throwsCode(() => fakeQuantizeTensor(Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]), pg, { name }), "GROUP_SIZE", name);
  // output buffer of the wrong size, float codes, bad rounding mode
  throwsCode(
    () => fakeQuantizeTensor(Tensor.from([1, 2]), p, { name, out: new Float32Array(3) }),
    "SHAPE_MISMATCH",
    name,
  );
  throwsCode(() => dequantizeTensor(Tensor.from([1, 2]), p, { name }), "INVALID_ARGUMENT", name);
  throwsCode(() => fakeQuantizeTensor(Tensor.from([1]), p, { rounding: "banker" as "floor" }), "INVALID_ARGUMENT");
  // empty tensors are a no-op for the kernels (parameters are given)
  assert.equal(fakeQuantizeTensor(Tensor.from([]), p).size, 0);
});
