import assert from "node:assert/strict";
import { adam, adamw, type Optimizer, sgd } from "../../lib/grad/optim.ts";
import { QuantlabError } from "../../lib/errors.ts";

interface OptRecord {
  name: string;
  options: Record<string, unknown> & { kind?: string };
  init: Record<string, number[]>;
  grads: Record<string, number[]>[];
  skip_b_at: number;
  decay_b: boolean;
  trajectory: Record<string, number[]>[];
  state: Record<string, Record<string, number[]>>;
}

const fixtures = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/optim_fixtures.json", import.meta.url)),
) as { optimizers: OptRecord[] };

function make(rec: OptRecord): Optimizer {
  const o = rec.options;
  const decay = rec.decay_b ? undefined : (name: string) => name !== "b";
  if (rec.name.startsWith("sgd")) {
    return sgd({
      lr: o.lr as number,
      momentum: o.momentum as number | undefined,
      dampening: o.dampening as number | undefined,
      nesterov: o.nesterov as boolean | undefined,
      weightDecay: o.weightDecay as number | undefined,
      maximize: o.maximize as boolean | undefined,
      decay,
    });
  }
  const opts = {
    lr: o.lr as number,
    betas: o.betas as [number, number] | undefined,
    eps: o.eps as number | undefined,
    weightDecay: o.weightDecay as number | undefined,
    amsgrad: o.amsgrad as boolean | undefined,
    maximize: o.maximize as boolean | undefined,
    decay,
  };
  return o.kind === "adamw" ? adamw(opts) : adam(opts);
}

function close(got: ArrayLike<number>, want: number[], what: string, rtol = 2e-6, atol = 2e-7): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    assert.ok(err <= atol + rtol * Math.abs(want[i]), `${what}[${i}]: got ${got[i]}, PyTorch ${want[i]} (err ${err})`);
  }
}

const STATE_KEYS: Record<string, string> = {
  momentum_buffer: "momentumBuffer",
  exp_avg: "expAvg",
  exp_avg_sq: "expAvgSq",
  max_exp_avg_sq: "maxExpAvgSq",
};

Deno.test("optimizers follow PyTorch 1.13 trajectories", async (t) => {
  assert.ok(fixtures.optimizers.length >= 10);
  for (const rec of fixtures.optimizers) {
    await t.step(rec.name, () => {
      const opt = make(rec);
      const params = new Map(Object.entries(rec.init).map(([k, v]) => [k, Float32Array.from(v)]));
      rec.trajectory.forEach((want, s) => {
        const grads = new Map<string, Float32Array>([["a", Float32Array.from(rec.grads[s].a)]]);
        if (s !== rec.skip_b_at) grads.set("b", Float32Array.from(rec.grads[s].b));
        opt.step(params, grads);
        for (const k of ["a", "b"]) close(params.get(k)!, want[k], `${rec.name} step ${s} param ${k}`);
      });
      assert.equal(opt.steps, rec.trajectory.length);
      for (const [pname, st] of Object.entries(rec.state)) {
        const mine = opt.stateOf(pname);
        assert.deepEqual(Object.keys(mine).sort(), Object.keys(st).map((k) => STATE_KEYS[k]).sort());
        for (const [k, v] of Object.entries(st)) close(mine[STATE_KEYS[k]], v, `${rec.name} state ${pname}.${k}`);
      }
    });
  }
});

Deno.test("sgd closed forms: plain step, nesterov, weight decay filter", () => {
  const p = new Map([["w", new Float32Array([1, -2])], ["bias", new Float32Array([3])]]);
  const g = new Map([["w", new Float32Array([0.5, 0.5])], ["bias", new Float32Array([0])]]);
  const opt = sgd({ lr: 0.1, weightDecay: 0.5, decay: (n) => n !== "bias" });
  opt.step(p, g);
  // w -= 0.1 * (g + 0.5 w); bias has no decay and zero gradient: unchanged.
  assert.ok(Math.abs(p.get("w")![0] - (1 - 0.1 * (0.5 + 0.5))) < 1e-7);
  assert.ok(Math.abs(p.get("w")![1] - (-2 - 0.1 * (0.5 - 1))) < 1e-7);
  assert.equal(p.get("bias")![0], 3);
  // Nesterov: first step moves by lr * (1 + mu) * g.
  const q = new Map([["x", new Float32Array([0])]]);
  sgd({ lr: 1, momentum: 0.5, nesterov: true }).step(q, new Map([["x", new Float32Array([2])]]));
  assert.equal(q.get("x")![0], -3);
});

Deno.test("adam is invariant to gradient scale on its first step", () => {
  for (const scale of [1e-3, 1, 1e3]) {
    const p = new Map([["w", new Float32Array([0, 0])]]);
    adam({ lr: 0.01, eps: 0 }).step(p, new Map([["w", new Float32Array([scale, -scale])]]));
    assert.ok(Math.abs(p.get("w")![0] + 0.01) < 1e-8 && Math.abs(p.get("w")![1] - 0.01) < 1e-8);
  }
});

Deno.test("optimizers reject bad options and mismatched gradients", () => {
  const bad = (f: () => unknown, code: string, re: RegExp) =>
    assert.throws(f, (e) => e instanceof QuantlabError && e.code === code && re.test(e.message));
  bad(() => sgd({ lr: -1 }), "INVALID_ARGUMENT", /sgd lr/);
  bad(() => sgd({ lr: 0.1, nesterov: true }), "INVALID_ARGUMENT", /Nesterov/);
  bad(() => sgd({ lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }), "INVALID_ARGUMENT", /dampening/);
  bad(() => adam({ betas: [0.9, 1] }), "INVALID_ARGUMENT", /betas/);
  bad(() => adam({ eps: NaN }), "INVALID_ARGUMENT", /eps/);
  const p = new Map([["w", new Float32Array(3)]]);
  bad(() => sgd({ lr: 0.1 }).step(p, new Map([["w", new Float32Array(2)]])), "SHAPE_MISMATCH", /"w".*2 elements/);
  const o = adam();
  o.lr = NaN;
  bad(() => o.step(p, new Map([["w", new Float32Array(3)]])), "INVALID_ARGUMENT", /adam lr/);
});
