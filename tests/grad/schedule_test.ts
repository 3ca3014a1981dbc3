import assert from "node:assert/strict";
import {
  applySchedule,
  cosineLr,
  multiStepLr,
  oneCycleLr,
  type OneCycleOptions,
  type PlateauOptions,
  ReduceLROnPlateau,
  type Schedule,
  stepLr,
} from "../../lib/grad/schedule.ts";
import { adam, sgd } from "../../lib/grad/optim.ts";
import { QuantlabError } from "../../lib/errors.ts";

interface SchedRecord {
  name: string;
  options: Record<string, unknown> & { kind: string };
  adam: boolean;
  lr: number[];
  momentum: number[];
}
interface PlateauRecord {
  name: string;
  options: PlateauOptions;
  initialLr: number;
  metrics: number[];
  lr: number[];
}

const fixtures = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/optim_fixtures.json", import.meta.url)),
) as { schedules: SchedRecord[]; plateau: PlateauRecord[] };

function make(rec: SchedRecord): Schedule {
  const o: unknown = rec.options;
  switch (rec.options.kind) {
    case "step":
      return stepLr(o as Parameters<typeof stepLr>[0]);
    case "multistep":
      return multiStepLr(o as Parameters<typeof multiStepLr>[0]);
    case "cosine":
      return cosineLr(o as Parameters<typeof cosineLr>[0]);
    case "onecycle":
      return oneCycleLr(o as OneCycleOptions);
  }
  throw new Error(rec.options.kind);
}

const near = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-12 + 1e-9 * Math.abs(b), `${what}: got ${a}, PyTorch ${b}`);

Deno.test("schedules match PyTorch 1.13 lr (and momentum) after each scheduler step", async (t) => {
  assert.ok(fixtures.schedules.length >= 6);
  for (const rec of fixtures.schedules) {
    await t.step(rec.name, () => {
      const s = make(rec);
      const opt = rec.adam ? adam({ lr: 1 }) : sgd({ lr: 1, momentum: 0.9 });
      rec.lr.forEach((want, k) => {
        applySchedule(opt, s, k);
        near(opt.lr, want, `${rec.name} lr at ${k}`);
        near(opt.momentum, rec.momentum[k], `${rec.name} momentum at ${k}`);
      });
    });
  }
});

Deno.test("ReduceLROnPlateau matches PyTorch 1.13", async (t) => {
  for (const rec of fixtures.plateau) {
    await t.step(rec.name, () => {
      const opt = { lr: rec.initialLr };
      const p = new ReduceLROnPlateau(opt, rec.options);
      rec.metrics.forEach((m, k) => {
        p.step(m);
        near(opt.lr, rec.lr[k], `${rec.name} after metric ${k}`);
      });
    });
  }
});

Deno.test("schedule closed forms and units", () => {
  assert.equal(stepLr({ lr: 0.1, stepSize: 30 }).unit, "epoch");
  assert.equal(oneCycleLr({ maxLr: 1, totalSteps: 100 }).unit, "step");
  assert.equal(cosineLr({ lr: 1, tMax: 10, unit: "step" }).unit, "step");
  // Cosine: half-way is the midpoint; symmetric past tMax.
  const c = cosineLr({ lr: 2, tMax: 8, etaMin: 1 });
  near(c.lr(4), 1.5, "cosine mid");
  near(c.lr(10), c.lr(6), "cosine periodic");
  // One-cycle ends at maxLr / divFactor / finalDivFactor and peaks at maxLr.
  const o = oneCycleLr({ maxLr: 0.4, totalSteps: 50 });
  near(o.lr(49), 0.4 / 25 / 1e4, "one-cycle end");
  near(Math.max(...Array.from({ length: 50 }, (_, i) => o.lr(i))), 0.4, "one-cycle peak");
  assert.equal(oneCycleLr({ maxLr: 1, totalSteps: 10, cycleMomentum: false }).momentum, undefined);
});

Deno.test("schedules reject bad options and steps", () => {
  const bad = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e) => e instanceof QuantlabError && e.code === "INVALID_ARGUMENT" && re.test(e.message));
  bad(() => stepLr({ lr: 0.1, stepSize: 0 }), /stepSize/);
  bad(() => cosineLr({ lr: 0.1, tMax: 2.5 }), /tMax/);
  bad(() => oneCycleLr({ maxLr: 1, totalSteps: 10, pctStart: 1.5 }), /pctStart/);
  bad(() => oneCycleLr({ maxLr: 1, totalSteps: 10 }).lr(11), /up to 10/);
  bad(() => stepLr({ lr: 0.1, stepSize: 1 }).lr(-1), /step count/);
  bad(() => new ReduceLROnPlateau({ lr: 1 }, { factor: 1 }), /factor/);
  bad(() => new ReduceLROnPlateau({ lr: 1 }, { patience: -1 }), /patience/);
  assert.throws(
    () => new ReduceLROnPlateau({ lr: 1 }).step(NaN),
    (e) => e instanceof QuantlabError && e.code === "NON_FINITE",
  );
});
