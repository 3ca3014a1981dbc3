import assert from "node:assert/strict";
import { convWeights, granularityComparison } from "../../lib/experiments/granularity.ts";
import { meanSliceSqnr } from "../../lib/quant/metrics.ts";
import { quantizer } from "../../lib/quant/quantizer.ts";

Deno.test("granularity: meanSliceSqnr is the mean of per-channel SQNRs", () => {
  const x = new Float32Array([3, 4, 1, 0]);
  const y = new Float32Array([3, 3, 0, 0]);
  // channel 0: 25 / 1 -> 13.979 dB; channel 1: 1 / 1 -> 0 dB
  assert.ok(Math.abs(meanSliceSqnr(x, y, 2) - 10 * Math.log10(25) / 2) < 1e-12);
});

Deno.test("granularity: per-channel is never worse than per-tensor, per-kernel never worse than per-channel", () => {
  const w = convWeights(16, 8, 3, 5);
  for (const b of [2, 4, 8]) {
    const pt = quantizer().int(b).perTensor().fakeQuantize(w).values;
    const pc = quantizer().int(b).perChannel(0).fakeQuantize(w).values;
    const pk = quantizer().int(b).perGroup(9, -1).fakeQuantize(w.reshape([16, 72])).values;
    const e = (v: Float32Array) => meanSliceSqnr(w.data, v, w.data.length / 16);
    assert.ok(e(pc.data) >= e(pt.data) - 1e-9 && e(pk.data) >= e(pc.data) - 0.5, `${b} bits`);
  }
});

Deno.test("granularity: the experiment shows a large per-channel gain at 4 bits", async () => {
  const r = await granularityComparison({ quick: true, progress: "none" });
  assert.ok(r.numbers["gain4.channel"] > 6, r.findingsText());
  assert.ok(r.numbers["gain4.kernel"] > r.numbers["gain4.group"] && r.numbers["gain4.group"] > 0);
  assert.ok(r.findings.every((f) => f.holds), r.findingsText());
  assert.equal(r.table("granularity").rows.length, 4);
});
