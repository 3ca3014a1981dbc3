// Min-max and moving-average observers against torch.ao.quantization (fixtures from
// tests/fixtures/make_observer_fixtures.py): running min/max and the scale / zero point of
// calculate_qparams(), per-tensor and per-channel, over several batches.
import assert from "node:assert/strict";
import fixture from "../../fixtures/observers.json" with { type: "json" };
import { calibrate } from "../../../lib/quant/calibrate/mod.ts";
import type { Calibrator } from "../../../lib/quant/calibrate/observer.ts";
import { quantizer, type QuantizerBuilder } from "../../../lib/quant/quantizer.ts";
import { paramsFromRange, type QuantScheme } from "../../../lib/quant/params.ts";
import { Tensor } from "../../../lib/tensor/tensor.ts";

type Case = (typeof fixture.observers)[number];

function builder(scheme: QuantScheme): QuantizerBuilder {
  let q = scheme.signed ? quantizer().int(scheme.bits) : quantizer().uint(scheme.bits);
  q = scheme.symmetric ? q.symmetric(scheme.range) : q.asymmetric();
  return q;
}

function calibratorOf(c: Case): Calibrator {
  return c.kind === "minmax"
    ? calibrate.minMax()
    : calibrate.movingAverage({ averagingConstant: c.averagingConstant as number });
}

function batchesOf(name: string): Tensor<"float32">[] {
  const d = fixture.datasets[name as keyof typeof fixture.datasets];
  return d.batches.map((b) => Tensor.from(b, d.shape));
}

Deno.test("min-max and moving-average observers match PyTorch", async (t) => {
  assert.ok(fixture.observers.length >= 100);
  for (const c of fixture.observers) {
    const label = `${c.kind}(${c.averagingConstant ?? ""}) ${c.scheme} dataset ${c.dataset} axis ${c.axis}`;
    await t.step(label, () => {
      const scheme = fixture.schemes[c.scheme as keyof typeof fixture.schemes] as QuantScheme;
      const batches = batchesOf(c.dataset);
      let q = builder(scheme).calibrate(calibratorOf(c));
      q = c.axis === null ? q.perTensor() : q.perChannel(c.axis);
      // The observer's running range equals PyTorch's min_val / max_val bit for bit.
      const obs = q.observer("x");
      for (const b of batches) obs.observe(b);
      const r = obs.range();
      assert.deepEqual(Array.from(r.min), c.min, `${label}: min`);
      assert.deepEqual(Array.from(r.max), c.max, `${label}: max`);
      // fit() over the batches gives PyTorch's calculate_qparams().
      const { params } = q.fit(batches);
      assert.deepEqual(Array.from(params.scale), c.scale, `${label}: scale`);
      assert.deepEqual(Array.from(params.zeroPoint), c.zeroPoint, `${label}: zero point`);
      // And so does paramsFromRange on the observer's range.
      const p2 = paramsFromRange(r.min, r.max, scheme, params.granularity);
      assert.deepEqual(Array.from(p2.scale), c.scale);
    });
  }
});

Deno.test("moving average differs from min-max on these batches (the fixture can tell them apart)", () => {
  const mm = fixture.observers.find((c) => c.kind === "minmax" && c.dataset === "A" && c.axis === null)!;
  const ma = fixture.observers.find((c) =>
    c.kind === "movingaverage" && c.dataset === "A" && c.axis === null && c.scheme === mm.scheme
  )!;
  assert.notDeepEqual(mm.min, ma.min);
});
