// Per-layer Hessian traces (lib/mixed/traces.ts): exact traces equal PyTorch's (tests/fixtures/make_grad_fixtures.py,
// "hvp": a tanh CNN and the exact trace of each parameter tensor's diagonal Hessian block); Hutchinson converges to
// them within its stated error; the power iteration finds the top eigenvalue of a dense block; seeded.
import assert from "node:assert/strict";
import { LayerHessian, PYHESSIAN_TRACE } from "../../lib/mixed/traces.ts";
import { OnnxModel } from "../../lib/onnx/model.ts";
import { Tensor } from "../../lib/tensor/tensor.ts";
import { b64f32, FIXTURES, gradFixtures } from "../grad/_fixtures.ts";

const h = gradFixtures.hvp;
const names: string[] = h.names;
const batch = { inputs: { input: new Tensor(b64f32(h.input), h.shape) }, labels: h.labels as number[] };
const model = await OnnxModel.load(new URL("grad_tiny.onnx", FIXTURES).pathname);
const hess = await LayerHessian.create(model, names, [batch], { session: { backend: "node", threads: 1 } });

Deno.test("exact per-tensor traces (sum of e_k^T H e_k) equal PyTorch's double-backprop traces", async () => {
  let steps = 0;
  const exact = await hess.exactTraces({ onProgress: () => steps++ });
  assert.equal(steps, [...hess.sizes.values()].reduce((a, b) => a + b, 0));
  for (const n of names) {
    const want = h.trace[n];
    assert.ok(Math.abs(exact.get(n)! - want) <= 1e-4 * Math.max(1, Math.abs(want)), `${n}: ${exact.get(n)} vs ${want}`);
  }
});

Deno.test("Hutchinson traces converge to the exact traces (joint and per-layer probes); same seed, same result", async () => {
  for (const probes of ["joint", "per-layer"] as const) {
    const est = await hess.traces({ maxIterations: 300, tolerance: 0, seed: 3, probes });
    for (const e of est) {
      const want = h.trace[e.tensor];
      assert.equal(e.iterations, 300);
      assert.ok(
        Math.abs(e.trace - want) <= 4 * e.stderr + 1e-4,
        `${probes} ${e.tensor}: ${e.trace} +- ${e.stderr} vs ${want}`,
      );
      assert.ok(Math.abs(e.tracePerParam * e.params - e.trace) < 1e-12);
    }
  }
  // PyHessian's rule (tol 1e-3, <= 100 probes): stops per layer, reports whether it converged.
  const events: number[] = [];
  const a = await hess.traces({ ...PYHESSIAN_TRACE, seed: 9, onProgress: (p) => events.push(p.active) });
  const b = await hess.traces({ seed: 9 });
  assert.deepEqual(a, b);
  assert.ok(events.length >= 2 && events.at(-1) === 0);
  for (const e of a) {
    assert.ok(e.iterations >= 2 && e.iterations <= 100);
    if (e.iterations < 100) assert.ok(e.converged);
  }
});

Deno.test("power iteration: top eigenvalue of each diagonal block matches the dense block's", async () => {
  const eig = await hess.topEigenvalues({ maxIterations: 200, tolerance: 1e-6, seed: 1 });
  for (const e of eig) {
    const n = hess.sizes.get(e.tensor)!;
    // the dense block, column by column
    const H: Float64Array[] = [];
    for (let k = 0; k < n; k++) {
      const v = new Float32Array(n);
      v[k] = 1;
      H.push(Float64Array.from((await hess.hvp(new Map([[e.tensor, v]]))).get(e.tensor)!));
    }
    // dominant eigenvalue by many dense power steps
    let x = new Float64Array(n).map((_, i) => 1 + i / n), lam = 0;
    for (let it = 0; it < 5000; it++) {
      const y = new Float64Array(n);
      for (let k = 0; k < n; k++) for (let i = 0; i < n; i++) y[i] += H[k][i] * x[k];
      let s = 0, q = 0;
      for (let i = 0; i < n; i++) (s += y[i] * y[i]), (q += y[i] * x[i]);
      lam = q;
      x = y.map((v) => v / Math.sqrt(s));
    }
    assert.ok(Math.abs(e.eigenvalue - lam) <= 2e-3 * Math.abs(lam) + 1e-5, `${e.tensor}: ${e.eigenvalue} vs ${lam}`);
  }
});
