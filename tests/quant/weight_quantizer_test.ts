import assert from "node:assert/strict";
import { QuantlabError } from "../../lib/errors.ts";
import { binary, binaryFromRecipe } from "../../lib/extreme/binary.ts";
import { ternary, ternaryFromRecipe } from "../../lib/extreme/ternary.ts";
import { nonUniform, nonUniformFromRecipe } from "../../lib/nonuniform/nonuniform_quantizer.ts";
import { percentile } from "../../lib/quant/calibrate/percentile.ts";
import { entropy } from "../../lib/quant/calibrate/entropy.ts";
import { fakeQuantizeTensor } from "../../lib/quant/affine.ts";
import { quantizer, uniformFromRecipe } from "../../lib/quant/quantizer.ts";
import {
  type FittedWeights,
  isWeightQuantizer,
  type WeightQuantizer,
  type WeightQuantizerRecipe,
} from "../../lib/quant/weight_quantizer.ts";
import { Prng } from "../../lib/tensor/prng.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { kmeans, kmeansFromRecipe } from "../../lib/vq/kmeans.ts";
import { productFromRecipe, productQuantizer } from "../../lib/vq/product_quantizer.ts";

function randomWeight(shape: number[], seed: number): Tensor<"float32"> {
  const n = shape.reduce((a, b) => a * b, 1);
  return new Tensor(new Prng(seed).fillNormal(new Float32Array(n), 0, 0.2) as Float32Array, shape);
}

/** The two weights of the brief: a 3x3 conv (output axis 0) and a MatMul-style matrix (output axis 1). */
const CASES = [
  { w: randomWeight([8, 3, 3, 3], 1), axis: 0, name: "conv1.weight" },
  { w: randomWeight([16, 10], 2), axis: 1, name: "fc.weight" },
];

function bits(a: ArrayLike<number>): Uint32Array {
  return new Uint32Array(Float32Array.from(a).buffer);
}

function assertBitIdentical(a: Tensor<"float32">, b: Tensor<"float32">, what: string): void {
  assert.deepEqual(a.shape, b.shape, `${what}: shape`);
  assert.deepEqual(bits(a.data), bits(b.data), `${what}: values`);
}

function throwsCode(fn: () => unknown, code: string, mention?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof QuantlabError, `expected QuantlabError, got ${e}`);
    assert.equal(e.code, code, e.message);
    if (mention) assert.ok(e.message.includes(mention), `"${e.message}" should mention ${mention}`);
    return true;
  });
}

interface Family {
  readonly label: string;
  readonly q: WeightQuantizer;
  readonly fromRecipe: (r: WeightQuantizerRecipe) => WeightQuantizer;
  /** Whether fitted weights report the op's axis (per-channel / product) or undefined (per-tensor). */
  readonly usesAxis: boolean;
}

const FAMILIES: Family[] = [
  {
    label: "uniform int4 per-channel",
    q: quantizer().int(4).perChannel(),
    fromRecipe: uniformFromRecipe,
    usesAxis: true,
  },
  {
    label: "uniform uint8 asymmetric per-tensor, percentile",
    q: quantizer().uint(8).asymmetric().calibrate(percentile({ percentile: 99 })),
    fromRecipe: uniformFromRecipe,
    usesAxis: false,
  },
  {
    label: "uniform int6 stochastic rounding, entropy",
    q: quantizer().int(6).rounding("stochastic", { seed: 3 }).calibrate(entropy({ bins: 256, startBin: 16 })),
    fromRecipe: uniformFromRecipe,
    usesAxis: false,
  },
  {
    label: "non-uniform lloyd-max 2-bit per-channel",
    q: nonUniform().levels("lloyd-max").bits(2).perChannel(),
    fromRecipe: nonUniformFromRecipe,
    usesAxis: true,
  },
  {
    label: "non-uniform log2 3-bit per-tensor",
    q: nonUniform().levels("log2").bits(3),
    fromRecipe: nonUniformFromRecipe,
    usesAxis: false,
  },
  {
    label: "non-uniform binary-code 2-bit per-channel, stochastic",
    q: nonUniform().levels("binary-code").bits(2).perChannel().rounding("stochastic", { seed: 4 }),
    fromRecipe: nonUniformFromRecipe,
    usesAxis: true,
  },
  { label: "binary XNOR", q: binary().xnor(), fromRecipe: binaryFromRecipe, usesAxis: true },
  { label: "binary sign", q: binary().binaryConnect(), fromRecipe: binaryFromRecipe, usesAxis: false },
  {
    label: "binary stochastic mean-abs",
    q: binary().scale("mean-abs").rounding("stochastic", { seed: 5 }),
    fromRecipe: binaryFromRecipe,
    usesAxis: false,
  },
  { label: "ternary TWN", q: ternary().twn(), fromRecipe: ternaryFromRecipe, usesAxis: false },
  { label: "ternary TTQ per-channel", q: ternary().ttq().perChannel(), fromRecipe: ternaryFromRecipe, usesAxis: true },
  {
    label: "k-means 3-bit linear init",
    q: kmeans().bits(3).init("linear"),
    fromRecipe: kmeansFromRecipe,
    usesAxis: false,
  },
  {
    label: "k-means 8 centroids k-means++",
    q: kmeans().centroids(8).seed(2).maxPointsPerCentroid(Infinity),
    fromRecipe: kmeansFromRecipe,
    usesAxis: false,
  },
  { label: "product K=8", q: productQuantizer().centroids(8), fromRecipe: productFromRecipe, usesAxis: true },
  {
    label: "product K=4 blocks of 1 along channels",
    q: productQuantizer().centroids(4).blockSize(1).blockOrder("channels").init("kmeans++"),
    fromRecipe: productFromRecipe,
    usesAxis: true,
  },
];

for (const fam of FAMILIES) {
  Deno.test(`weight quantizer contract: ${fam.label}`, () => {
    const q = fam.q;
    assert.ok(isWeightQuantizer(q));
    assert.ok(Number.isFinite(q.nominalBits) && q.nominalBits > 0);
    const json = JSON.parse(JSON.stringify(q.toRecipe())) as WeightQuantizerRecipe;
    assert.equal(json.kind, q.kind);
    const back = fam.fromRecipe(json);
    assert.equal(back.toString(), q.toString());
    assert.deepEqual(back.toRecipe(), json);
    assert.equal(back.nominalBits, q.nominalBits);
    for (const { w, axis, name } of CASES) {
      const what = `${fam.label} on ${name}`;
      const fw: FittedWeights = q.fitWeights(w, { axis, name });
      assert.equal(fw.kind, q.kind, what);
      assert.deepEqual(fw.shape, w.shape, what);
      assert.equal(fw.axis, fam.usesAxis ? axis : undefined, `${what}: axis`);
      assert.equal(fw.affine === undefined, q.kind !== "uniform", `${what}: affine`);
      const fake = fw.fakeQuantize();
      // decode(encode(w)) equals fakeQuantize(w) bit for bit, for the fitted tensor and for a copy of it
      const enc = fw.encode();
      assert.equal(enc.kind, q.kind);
      assert.deepEqual(enc.shape, w.shape);
      assertBitIdentical(fw.decode(enc), fake, `${what}: decode(encode)`);
      const copy = w.clone();
      assertBitIdentical(fw.fakeQuantize(copy), fake, `${what}: fakeQuantize(copy)`);
      assertBitIdentical(fw.decode(fw.encode(copy)), fake, `${what}: decode(encode(copy))`);
      // the stored form survives a trip through plain arrays (what a file would hold)
      const stored = JSON.parse(JSON.stringify({
        codes: Array.from(enc.codes.data),
        tables: Object.fromEntries(Object.entries(enc.tables).map(([k, v]) => [k, [v.constructor.name, ...v]])),
      }));
      const codes = new Tensor(
        enc.codes.dtype === "int8"
          ? Int8Array.from(stored.codes)
          : enc.codes.dtype === "uint8"
          ? Uint8Array.from(stored.codes)
          : Int32Array.from(stored.codes),
        enc.codes.shape,
      ) as typeof enc.codes;
      const tables = Object.fromEntries(
        Object.entries(stored.tables as Record<string, [string, ...number[]]>).map((
          [k, [type, ...v]],
        ) => [k, type === "Int32Array" ? Int32Array.from(v) : Float32Array.from(v)]),
      );
      assertBitIdentical(fw.decode({ kind: enc.kind, shape: enc.shape, codes, tables }), fake, `${what}: stored`);
      // fake-quantization actually quantizes: few distinct values per tensor
      assert.ok(new Set(fake.data).size < w.size, `${what}: distinct values`);
      // a recipe rebuilt from JSON fits the same
      const fw2 = back.fitWeights(w, { axis, name });
      assertBitIdentical(fw2.fakeQuantize(), fake, `${what}: recipe round trip`);
      assert.deepEqual(Array.from(fw2.encode().codes.data), Array.from(enc.codes.data), `${what}: recipe codes`);
      assert.equal(fw2.bitsPerWeight(), fw.bitsPerWeight());
      assert.ok(fw.bitsPerWeight() > 0 && fw.bitsPerWeight() < 32, `${what}: ${fw.bitsPerWeight()}`);
      assert.ok(fw.toString().includes(name), fw.toString());
      // bad input: NaN weight and axis out of range name the tensor; a stored form of another shape is refused
      const bad = w.clone();
      bad.data[5] = NaN;
      throwsCode(() => q.fitWeights(bad, { axis, name }), "NON_FINITE", name);
      throwsCode(() => q.fitWeights(w, { axis: w.rank, name }), "AXIS_OUT_OF_RANGE", name);
      throwsCode(() => q.fitWeights(w, { axis: -w.rank - 1, name }), "AXIS_OUT_OF_RANGE", name);
      throwsCode(() => fw.fakeQuantize(bad), "NON_FINITE", name);
      throwsCode(() => fw.encode(w.reshape([w.size])), "SHAPE_MISMATCH", name);
      throwsCode(() => fw.decode({ ...enc, shape: [w.size] }), "SHAPE_MISMATCH", name);
      throwsCode(() => fw.decode({ ...enc, kind: q.kind === "binary" ? "ternary" : "binary" }), "INVALID_ARGUMENT");
      throwsCode(() => q.fitWeights(new Tensor(new Float32Array(0), [0, 3]), { name }), "EMPTY_TENSOR", name);
    }
  });
}

Deno.test("uniform fitWeights equals the PyTorch-exact fakeQuantize path and takes the op's axis", () => {
  for (const { w, axis, name } of CASES) {
    // per-channel: the op's axis overrides the builder's own
    const fw = quantizer().int(4).perChannel(0).fitWeights(w, { axis, name });
    const ref = quantizer().int(4).perChannel(axis).fit(w);
    assert.deepEqual(fw.affine.granularity, { kind: "channel", axis });
    assertBitIdentical(fw.fakeQuantize(), quantizer().int(4).perChannel(axis).fakeQuantize(w).values, name);
    assertBitIdentical(fw.fakeQuantize(), fakeQuantizeTensor(w, ref.params), name);
    assertBitIdentical(fw.fitted.dequantize(fw.encode().codes), fw.fakeQuantize(), name);
    assert.deepEqual(bits(fw.affine.scale), bits(ref.params.scale));
    assert.equal(fw.affine.scale.length, w.shape[axis]);
    // per-tensor ignores the axis
    const ft = quantizer().int(8).fitWeights(w, { axis, name });
    assert.equal(ft.axis, undefined);
    assertBitIdentical(ft.fakeQuantize(), quantizer().int(8).fakeQuantize(w).values, name);
    // per-group keeps its own block axis and holds group parameters
    const fg = quantizer().int(4).perGroup(w.shape[w.rank - 1] === 3 ? 3 : 5).fitWeights(w, { axis, name });
    assert.equal(fg.affine.granularity.kind, "group");
    assert.equal(fg.axis, w.rank - 1);
    assertBitIdentical(fg.decode(fg.encode()), fg.fakeQuantize(), `${name} per-group`);
  }
});

Deno.test("uniform fitWeights reproduces torch's fake_quantize fixtures (min-max observer cases)", () => {
  const fixture = JSON.parse(Deno.readTextFileSync(new URL("../fixtures/fake_quant.json", import.meta.url))) as {
    cases: {
      name: string;
      shape: number[];
      axis: number | null;
      bits: number;
      signed: boolean;
      symmetric: boolean;
      range: "full" | "restricted";
      observer: string | null;
      observedPatch?: unknown[];
      x: string;
      scale: string;
      y: string;
      codes?: number[];
    }[];
  };
  const f32 = (b64: string) => new Float32Array(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer);
  let checked = 0;
  for (const c of fixture.cases) {
    if (!c.observer || (c.observedPatch && c.observedPatch.length > 0)) continue;
    let q = c.signed ? quantizer().int(c.bits) : quantizer().uint(c.bits);
    q = c.symmetric ? q.symmetric(c.range) : q.asymmetric();
    if (c.axis !== null) q = q.perChannel();
    const w = new Tensor<"float32">(f32(c.x), c.shape);
    const fw = q.fitWeights(w, { axis: c.axis ?? undefined, name: c.name });
    assert.deepEqual(bits(fw.affine.scale), bits(f32(c.scale)), `${c.name} scale`);
    assert.deepEqual(bits(fw.fakeQuantize().data), bits(f32(c.y)), `${c.name} values`);
    assert.deepEqual(bits(fw.decode(fw.encode()).data), bits(f32(c.y)), `${c.name} decode`);
    if (c.codes) assert.deepEqual(Array.from(fw.encode().codes.data), c.codes, `${c.name} codes`);
    checked++;
  }
  assert.ok(checked >= 15, `checked ${checked}`);
});

Deno.test("bitsPerWeight by hand, one case per family", () => {
  const conv = CASES[0].w, fc = CASES[1].w; // 216 and 160 weights
  const near = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
  // uniform int4 per-channel on the conv: 4-bit codes + 8 float32 scales
  near(quantizer().int(4).perChannel().fitWeights(conv, { axis: 0 }).bitsPerWeight(), 4 + (8 * 32) / 216);
  // asymmetric uint8 per-tensor: + one 8-bit zero point
  near(quantizer().uint(8).asymmetric().fitWeights(fc).bitsPerWeight(), 8 + (32 + 8) / 160);
  // non-uniform lloyd-max 2-bit per-channel on the matrix (axis 1: 10 channels): 2 + 10 * 4 levels * 32 / 160
  near(
    nonUniform().levels("lloyd-max").bits(2).perChannel().fitWeights(fc, { axis: 1 }).bitsPerWeight(),
    2 + (10 * 4 * 32) / 160,
  );
  // log2 per-tensor: one alpha; binary-code per-tensor: `bits` bases
  near(nonUniform().levels("log2").bits(3).fitWeights(conv).bitsPerWeight(), 3 + 32 / 216);
  near(nonUniform().levels("binary-code").bits(2).fitWeights(conv).bitsPerWeight(), 2 + 64 / 216);
  // binary: 1 bit (+ a scale per output channel for XNOR, none for sign)
  near(binary().fitWeights(conv).bitsPerWeight(), 1);
  near(binary().xnor().fitWeights(fc, { axis: 1 }).bitsPerWeight(), 1 + (10 * 32) / 160);
  // ternary: 2-bit codes + one (TWN) or two (TTQ) scales per slot
  near(ternary().fitWeights(conv).bitsPerWeight(), 2 + 32 / 216);
  near(ternary().ttq().perChannel().fitWeights(conv, { axis: 0 }).bitsPerWeight(), 2 + (8 * 2 * 32) / 216);
  // k-means: ceil(log2 k)-bit codes + k float32 centroids
  near(kmeans().bits(3).fitWeights(conv).bitsPerWeight(), 3 + (8 * 32) / 216);
  near(kmeans().centroids(5).fitWeights(conv).bitsPerWeight(), 3 + (5 * 32) / 216);
  // product: conv 3x3 -> 24 blocks of 9, 3-bit codes, 8 x 9 floats; fc (axis 1) -> 40 blocks of 4
  const pc = productQuantizer().centroids(8).fitWeights(conv, { axis: 0 });
  assert.equal(pc.blockSize, 9);
  assert.deepEqual(pc.encode().codes.shape, [8, 3]);
  near(pc.bitsPerWeight(), (24 * 3 + 8 * 9 * 32) / 216);
  const pf = productQuantizer().centroids(8).fitWeights(fc, { axis: 1 });
  assert.equal(pf.blockSize, 4);
  assert.deepEqual(pf.encode().codes.shape, [10, 4]);
  near(pf.bitsPerWeight(), (40 * 3 + 8 * 4 * 32) / 160);
  // channel blocks of 3 input channels at each of the 9 positions of the conv: 72 blocks, 2-bit codes
  const pch = productQuantizer().centroids(4).blockSize(3).blockOrder("channels").fitWeights(conv);
  assert.deepEqual(pch.encode().codes.shape, [8, 9]);
  near(pch.bitsPerWeight(), (72 * 2 + 4 * 3 * 32) / 216);
  assertBitIdentical(pch.decode(pch.encode()), pch.fakeQuantize(), "channel blocks");
  // nominal bits
  assert.equal(quantizer().int(4).nominalBits, 4);
  assert.equal(nonUniform().bits(3).nominalBits, 3);
  assert.equal(binary().nominalBits, 1);
  assert.equal(ternary().nominalBits, 2);
  assert.equal(kmeans().bits(5).nominalBits, 5);
  assert.equal(productQuantizer().centroids(256).blockSize(8).nominalBits, 1);
});

Deno.test("k-means weight sharing: linear init spans [min, max]; product blocks follow the output-channel axis", () => {
  const w = CASES[0].w;
  let lo = Infinity, hi = -Infinity;
  for (const v of w.data) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  // zero iterations: the centroids are the linear initialisation itself
  const fw = kmeans().bits(2).init("linear").iterations(0).fitWeights(w);
  const c = fw.encode().tables.centroids as Float32Array;
  assert.deepEqual(Array.from(c), Array.from(Float32Array.from([0, 1, 2, 3], (i) => lo + ((hi - lo) * i) / 3)));
  assert.equal(fw.model.k, 4);
  assert.equal(fw.encode().codes.dtype, "uint8");
  assert.equal(kmeans().centroids(300).fitWeights(randomWeight([30, 20], 3)).encode().codes.dtype, "int32");
  // a MatMul weight [in, out] with axis 1 quantizes like its transpose [out, in] with axis 0
  const fc = CASES[1].w;
  const t = new Tensor<"float32">(new Float32Array(fc.size), [10, 16]);
  for (let i = 0; i < 16; i++) for (let o = 0; o < 10; o++) t.data[o * 16 + i] = fc.data[i * 10 + o];
  const q = productQuantizer().centroids(8).seed(1);
  const a = q.fitWeights(fc, { axis: 1 }).fakeQuantize(), b = q.fitWeights(t, { axis: 0 }).fakeQuantize();
  for (let i = 0; i < 16; i++) {
    for (let o = 0; o < 10; o++) assert.equal(a.data[i * 10 + o], b.data[o * 16 + i]);
  }
});

Deno.test("weight quantizers reject bad settings with typed errors naming the tensor", () => {
  const fc = CASES[1].w;
  throwsCode(() => kmeans().centroids(200).fitWeights(fc, { name: "fc.weight" }), "INVALID_ARGUMENT", "fc.weight");
  throwsCode(
    () => productQuantizer().centroids(64).fitWeights(fc, { axis: 1, name: "fc.weight" }),
    "INVALID_ARGUMENT",
    "fc.weight",
  );
  throwsCode(
    () => productQuantizer().centroids(4).blockSize(3).fitWeights(fc, { name: "fc.weight" }),
    "SHAPE_MISMATCH",
    "fc.weight",
  );
  throwsCode(
    () => productQuantizer().centroids(2).fitWeights(Tensor.from([1, 2, 3, 4]), { name: "b" }),
    "SHAPE_MISMATCH",
    "b",
  );
  throwsCode(() => kmeans().bits(0), "BITS_OUT_OF_RANGE");
  throwsCode(() => productQuantizer().blockSize(0), "INVALID_ARGUMENT");
  throwsCode(() => productQuantizer().blockOrder("rows" as "flat"), "INVALID_ARGUMENT");
  throwsCode(() => uniformFromRecipe({ kind: "binary", config: {} }), "INVALID_ARGUMENT");
  throwsCode(() => kmeansFromRecipe(null as unknown as WeightQuantizerRecipe), "INVALID_ARGUMENT");
  throwsCode(() => binaryFromRecipe({ kind: "binary", config: { scale: "max" } }), "INVALID_ARGUMENT");
  throwsCode(() => uniformFromRecipe({ kind: "uniform", config: { bits: 1 } }), "BITS_OUT_OF_RANGE");
  throwsCode(
    () => uniformFromRecipe({ kind: "uniform", config: { bits: 8, calibrator: { name: "nope", options: {} } } }),
    "INVALID_ARGUMENT",
  );
  // a hand-made calibrator without toRecipe cannot be written into a recipe
  const custom = { name: "custom", create: percentile().create, toString: () => "custom()" };
  throwsCode(() => quantizer().calibrate(custom).toRecipe(), "UNSUPPORTED", "custom()");
  // a wrong table in a stored form is refused
  const fw = ternary().ttq().fitWeights(fc);
  const enc = fw.encode();
  throwsCode(() => fw.decode({ ...enc, tables: { positiveScale: enc.tables.positiveScale } }), "SHAPE_MISMATCH");
  throwsCode(
    () => fw.decode({ ...enc, codes: new Tensor<"uint8">(new Uint8Array(fc.size), fc.shape) }),
    "INVALID_ARGUMENT",
  );
  const fk = kmeans().bits(2).fitWeights(fc);
  const ek = fk.encode();
  throwsCode(
    () => fk.decode({ ...ek, codes: new Tensor<"uint8">(new Uint8Array(fc.size).fill(9), fc.shape) }),
    "INVALID_ARGUMENT",
  );
});
