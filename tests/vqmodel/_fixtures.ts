// Shared helpers for the model-level VQ tests: the PyTorch fixture (tests/fixtures/make_vqmodel_fixtures.py).
import assert from "node:assert/strict";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { VqLayer } from "../../lib/vqmodel/layer.ts";
import { weightSites } from "../../lib/vqmodel/fit.ts";
import type { BlockOrder } from "../../lib/vq/weight_layout.ts";

export const FIXTURES = new URL("../fixtures/", import.meta.url);

export function b64f32(s: string): Float32Array {
  const bin = atob(s);
  const u = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
  return new Float32Array(u.buffer);
}

/** |got - want| <= rel * max|want| + abs elementwise. */
export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, rel: number, what: string, abs = 1e-7) {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 1e-6;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    assert.ok(
      Math.abs(got[i] - want[i]) <= rel * scale + abs,
      `${what}[${i}]: got ${got[i]}, PyTorch ${want[i]} (scale ${scale})`,
    );
  }
}

export interface FixtureLayer {
  weight: string;
  shape: number[];
  blockSize: number;
  order: BlockOrder;
  k: number;
  codes: number[];
  codebook: string;
  grad: string;
}

export interface Fixtures {
  input: string;
  inputShape: number[];
  labels: number[];
  cases: { name: string; reduce: "sum" | "mean"; loss: number; layers: FixtureLayer[] }[];
  grams: { weight: string; blockSize: number; order: BlockOrder; gram: number[] }[];
}

export const fixtures: Fixtures = JSON.parse(await Deno.readTextFile(new URL("vqmodel_fixtures.json", FIXTURES)));
export const tinyPath: string = new URL("vqmodel_tiny.onnx", FIXTURES).pathname;

export async function tinyModel(): Promise<OnnxModel> {
  return await OnnxModel.load(tinyPath);
}

export function fixtureInput(): Tensor<"float32"> {
  return new Tensor(b64f32(fixtures.input), fixtures.inputShape);
}

/** The fixture's layers as VqLayers of `model`. */
export function fixtureLayers(model: OnnxModel, c: Fixtures["cases"][number]): VqLayer[] {
  const sites = new Map(weightSites(model).map((s) => [s.weight, s]));
  return c.layers.map((l) =>
    new VqLayer({
      ...sites.get(l.weight)!,
      method: c.reduce === "sum" ? "kmeans" : "pq",
      blockSize: l.blockSize,
      order: l.order,
      k: l.k,
      codes: Int32Array.from(l.codes),
      codebook: b64f32(l.codebook),
    })
  );
}
