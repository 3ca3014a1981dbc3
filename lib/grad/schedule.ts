/**
 * Learning-rate schedules with PyTorch 1.13's semantics: {@link stepLr} (`StepLR`), {@link multiStepLr}
 * (`MultiStepLR`), {@link cosineLr} (`CosineAnnealingLR`), {@link oneCycleLr} (`OneCycleLR`, with momentum
 * cycling) as pure functions of the step count, and {@link ReduceLROnPlateau}, which watches a metric.
 *
 * A schedule's `lr(t)` is the rate PyTorch's optimizer holds after `t` calls of `scheduler.step()`; `unit`
 * says whether the trainer advances `t` once per epoch or once per batch. {@link applySchedule} writes the rate
 * (and the momentum, for one-cycle) into an optimizer.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import type { Optimizer } from "./optim.ts";

/** A learning-rate schedule: the rate (and optionally momentum) after `t` scheduler steps. */
export interface Schedule {
  /** Readable description, e.g. `"cosine(lr=0.1, tMax=10)"`. */
  readonly name: string;
  /** What `t` counts: epochs or optimizer steps (batches). */
  readonly unit: "epoch" | "step";
  /** Learning rate after `t` scheduler steps (t = 0: before any). */
  lr(t: number): number;
  /** Momentum (SGD) or beta1 (Adam) after `t` steps, for schedules that cycle it. */
  momentum?(t: number): number;
}

function positive(what: string, v: number, integer = false): void {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `${what} must be a positive ${integer ? "integer" : "number"}, got ${v}`,
    );
  }
}

function nonNegative(what: string, v: number): void {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw new QuantlabError("INVALID_ARGUMENT", `${what} must be a finite number >= 0, got ${v}`);
  }
}

function checkT(name: string, t: number, max = Infinity): void {
  if (!Number.isInteger(t) || t < 0 || t > max) {
    const bound = max === Infinity ? "" : ` up to ${max}`;
    throw new QuantlabError("INVALID_ARGUMENT", `${name}: step count must be an integer >= 0${bound}, got ${t}`);
  }
}

/**
 * `StepLR`: `lr * gamma^floor(t / stepSize)`.
 *
 * @example
 * ```ts
 * import { stepLr } from "./schedule.ts";
 * const s = stepLr({ lr: 1, stepSize: 2, gamma: 0.5 });
 * if ([0, 1, 2, 3, 4].map((t) => s.lr(t)).join() !== "1,1,0.5,0.5,0.25") throw new Error("bad");
 * ```
 */
export function stepLr(o: { lr: number; stepSize: number; gamma?: number; unit?: "epoch" | "step" }): Schedule {
  nonNegative("stepLr lr", o.lr);
  positive("stepLr stepSize", o.stepSize, true);
  const gamma = o.gamma ?? 0.1;
  nonNegative("stepLr gamma", gamma);
  const name = `step(lr=${o.lr}, stepSize=${o.stepSize}, gamma=${gamma})`;
  return {
    name,
    unit: o.unit ?? "epoch",
    lr: (t) => {
      checkT(name, t);
      return o.lr * gamma ** Math.floor(t / o.stepSize);
    },
  };
}

/**
 * `MultiStepLR`: `lr * gamma^(number of milestones <= t)`.
 *
 * @example
 * ```ts
 * import { multiStepLr } from "./schedule.ts";
 * const s = multiStepLr({ lr: 1, milestones: [1, 3], gamma: 0.1 });
 * if (s.lr(0) !== 1 || Math.abs(s.lr(2) - 0.1) > 1e-12 || Math.abs(s.lr(3) - 0.01) > 1e-12) throw new Error("bad");
 * ```
 */
export function multiStepLr(
  o: { lr: number; milestones: readonly number[]; gamma?: number; unit?: "epoch" | "step" },
): Schedule {
  nonNegative("multiStepLr lr", o.lr);
  const gamma = o.gamma ?? 0.1;
  nonNegative("multiStepLr gamma", gamma);
  o.milestones.forEach((m, i) => positive(`multiStepLr milestones[${i}]`, m, true));
  const ms = [...o.milestones].sort((a, b) => a - b);
  const name = `multiStep(lr=${o.lr}, milestones=[${ms}], gamma=${gamma})`;
  return {
    name,
    unit: o.unit ?? "epoch",
    lr: (t) => {
      checkT(name, t);
      let k = 0;
      for (const m of ms) if (m <= t) k++;
      return o.lr * gamma ** k;
    },
  };
}

/**
 * `CosineAnnealingLR`: `etaMin + (lr - etaMin) * (1 + cos(pi t / tMax)) / 2` (PyTorch's recursive form equals
 * this closed form, including its periodic continuation past `tMax`).
 *
 * @example
 * ```ts
 * import { cosineLr } from "./schedule.ts";
 * const s = cosineLr({ lr: 1, tMax: 4, etaMin: 0 });
 * if (s.lr(0) !== 1 || Math.abs(s.lr(2) - 0.5) > 1e-12 || Math.abs(s.lr(4)) > 1e-12) throw new Error("bad");
 * ```
 */
export function cosineLr(o: { lr: number; tMax: number; etaMin?: number; unit?: "epoch" | "step" }): Schedule {
  nonNegative("cosineLr lr", o.lr);
  positive("cosineLr tMax", o.tMax, true);
  const etaMin = o.etaMin ?? 0;
  nonNegative("cosineLr etaMin", etaMin);
  const name = `cosine(lr=${o.lr}, tMax=${o.tMax}, etaMin=${etaMin})`;
  return {
    name,
    unit: o.unit ?? "epoch",
    lr: (t) => {
      checkT(name, t);
      return etaMin + (o.lr - etaMin) * (1 + Math.cos(Math.PI * t / o.tMax)) / 2;
    },
  };
}

/** Options of {@link oneCycleLr} (PyTorch `OneCycleLR`'s, same defaults). */
export interface OneCycleOptions {
  /** Peak learning rate. */
  maxLr: number;
  /** Number of optimizer steps in the cycle (epochs x batches per epoch). */
  totalSteps: number;
  /** Fraction of the cycle spent increasing the rate (default 0.3). */
  pctStart?: number;
  /** `"cos"` (default) or `"linear"`. */
  annealStrategy?: "cos" | "linear";
  /** Cycle momentum inversely to the rate (default true). */
  cycleMomentum?: boolean;
  /** Lowest momentum (default 0.85). */
  baseMomentum?: number;
  /** Highest momentum (default 0.95). */
  maxMomentum?: number;
  /** Initial rate = maxLr / divFactor (default 25). */
  divFactor?: number;
  /** Final rate = initial rate / finalDivFactor (default 1e4). */
  finalDivFactor?: number;
  /** Three phases (up, down to the initial rate, annihilate) instead of two (default false). */
  threePhase?: boolean;
}

/**
 * `OneCycleLR` (Smith & Topsekar's 1cycle policy): per-step schedule; `lr(t)` for `t` in `0..totalSteps`,
 * and `momentum(t)` when `cycleMomentum` is on.
 *
 * @example
 * ```ts
 * import { oneCycleLr } from "./schedule.ts";
 * const s = oneCycleLr({ maxLr: 1, totalSteps: 10 });
 * if (Math.abs(s.lr(0) - 0.04) > 1e-12 || Math.abs(s.lr(2) - 1) > 1e-12) throw new Error("bad");
 * if (Math.abs(s.momentum!(2) - 0.85) > 1e-12 || s.lr(9) > 1e-5) throw new Error("bad");
 * ```
 */
export function oneCycleLr(o: OneCycleOptions): Schedule {
  positive("oneCycleLr maxLr", o.maxLr);
  positive("oneCycleLr totalSteps", o.totalSteps, true);
  const pct = o.pctStart ?? 0.3;
  if (!(pct >= 0 && pct <= 1)) {
    throw new QuantlabError("INVALID_ARGUMENT", `oneCycleLr pctStart must be in [0, 1], got ${pct}`);
  }
  const strategy = o.annealStrategy ?? "cos";
  if (strategy !== "cos" && strategy !== "linear") {
    throw new QuantlabError(
      "INVALID_ARGUMENT",
      `oneCycleLr annealStrategy must be "cos" or "linear", got "${strategy}"`,
    );
  }
  const div = o.divFactor ?? 25, finalDiv = o.finalDivFactor ?? 1e4;
  positive("oneCycleLr divFactor", div);
  positive("oneCycleLr finalDivFactor", finalDiv);
  const baseM = o.baseMomentum ?? 0.85, maxM = o.maxMomentum ?? 0.95;
  nonNegative("oneCycleLr baseMomentum", baseM);
  nonNegative("oneCycleLr maxMomentum", maxM);
  const initial = o.maxLr / div, minLr = initial / finalDiv, n = o.totalSteps;
  type Phase = { end: number; lr: [number, number]; m: [number, number] };
  const phases: Phase[] = o.threePhase
    ? [
      { end: pct * n - 1, lr: [initial, o.maxLr], m: [maxM, baseM] },
      { end: 2 * pct * n - 2, lr: [o.maxLr, initial], m: [baseM, maxM] },
      { end: n - 1, lr: [initial, minLr], m: [maxM, maxM] },
    ]
    : [
      { end: pct * n - 1, lr: [initial, o.maxLr], m: [maxM, baseM] },
      { end: n - 1, lr: [o.maxLr, minLr], m: [baseM, maxM] },
    ];
  const anneal = strategy === "cos"
    ? (a: number, b: number, p: number) => b + (a - b) / 2 * (Math.cos(Math.PI * p) + 1)
    : (a: number, b: number, p: number) => (b - a) * p + a;
  const name = `oneCycle(maxLr=${o.maxLr}, totalSteps=${n}, pctStart=${pct}, ${strategy}${
    o.threePhase ? ", 3-phase" : ""
  })`;
  const at = (t: number, key: "lr" | "m"): number => {
    checkT(name, t, n);
    let start = 0;
    for (let i = 0; i < phases.length; i++) {
      const ph = phases[i];
      if (t <= ph.end || i === phases.length - 1) {
        const [a, b] = ph[key];
        return anneal(a, b, (t - start) / (ph.end - start));
      }
      start = ph.end;
    }
    return NaN; // unreachable
  };
  const s: Schedule = { name, unit: "step", lr: (t) => at(t, "lr") };
  return (o.cycleMomentum ?? true) ? { ...s, momentum: (t) => at(t, "m") } : s;
}

/**
 * Set an optimizer's rate (and momentum, where the schedule cycles it) for scheduler step `t`.
 *
 * @example
 * ```ts
 * import { applySchedule, stepLr } from "./schedule.ts";
 * import { sgd } from "./optim.ts";
 * const opt = sgd({ lr: 1 });
 * applySchedule(opt, stepLr({ lr: 1, stepSize: 1, gamma: 0.5 }), 3);
 * if (opt.lr !== 0.125) throw new Error("bad");
 * ```
 */
export function applySchedule(opt: Optimizer, s: Schedule, t: number): void {
  opt.lr = s.lr(t);
  if (s.momentum) opt.momentum = s.momentum(t);
}

/** Options of {@link ReduceLROnPlateau} (PyTorch's, same defaults). */
export interface PlateauOptions {
  /** `"min"` (default: the metric should fall, e.g. a loss) or `"max"` (e.g. accuracy). */
  mode?: "min" | "max";
  /** Multiply the rate by this on a plateau (default 0.1; must be < 1). */
  factor?: number;
  /** Bad epochs tolerated before reducing (default 10). */
  patience?: number;
  /** Minimum change that counts as an improvement (default 1e-4). */
  threshold?: number;
  /** `"rel"` (default: relative to the best) or `"abs"`. */
  thresholdMode?: "rel" | "abs";
  /** Epochs to wait after a reduction before counting bad epochs again (default 0). */
  cooldown?: number;
  /** Lower bound of the rate (default 0). */
  minLr?: number;
  /** Reductions smaller than this are skipped (default 1e-8). */
  eps?: number;
}

/**
 * `ReduceLROnPlateau`: call {@link ReduceLROnPlateau.step} once per epoch with the watched metric; the target's
 * `lr` is multiplied by `factor` after more than `patience` epochs without improvement.
 *
 * @example
 * ```ts
 * import { ReduceLROnPlateau } from "./schedule.ts";
 * const opt = { lr: 1 };
 * const p = new ReduceLROnPlateau(opt, { patience: 1, factor: 0.5 });
 * for (const loss of [3, 2, 2, 2, 2]) p.step(loss);
 * if (opt.lr !== 0.5) throw new Error(`${opt.lr}`); // bad epochs 1, 2 -> reduce; then 1 bad epoch
 * ```
 */
export class ReduceLROnPlateau {
  /** Best metric so far. */
  best: number;
  /** Consecutive epochs without improvement. */
  numBadEpochs = 0;
  /** Epochs of cooldown left. */
  cooldownCounter = 0;
  /** Epochs seen. */
  lastEpoch = 0;
  readonly #o: Required<PlateauOptions>;

  /** Watch `target.lr` (an optimizer, or any object with a rate). */
  constructor(readonly target: { lr: number }, options: PlateauOptions = {}) {
    const o: Required<PlateauOptions> = {
      mode: options.mode ?? "min",
      factor: options.factor ?? 0.1,
      patience: options.patience ?? 10,
      threshold: options.threshold ?? 1e-4,
      thresholdMode: options.thresholdMode ?? "rel",
      cooldown: options.cooldown ?? 0,
      minLr: options.minLr ?? 0,
      eps: options.eps ?? 1e-8,
    };
    if (o.mode !== "min" && o.mode !== "max") {
      throw new QuantlabError("INVALID_ARGUMENT", `ReduceLROnPlateau mode must be "min" or "max", got "${o.mode}"`);
    }
    if (o.thresholdMode !== "rel" && o.thresholdMode !== "abs") {
      throw new QuantlabError(
        "INVALID_ARGUMENT",
        `ReduceLROnPlateau thresholdMode must be "rel" or "abs", got "${o.thresholdMode}"`,
      );
    }
    if (!(o.factor >= 0 && o.factor < 1)) {
      throw new QuantlabError("INVALID_ARGUMENT", `ReduceLROnPlateau factor must be in [0, 1), got ${o.factor}`);
    }
    for (const k of ["patience", "cooldown"] as const) {
      if (!Number.isInteger(o[k]) || o[k] < 0) {
        throw new QuantlabError("INVALID_ARGUMENT", `ReduceLROnPlateau ${k} must be an integer >= 0, got ${o[k]}`);
      }
    }
    nonNegative("ReduceLROnPlateau threshold", o.threshold);
    nonNegative("ReduceLROnPlateau minLr", o.minLr);
    nonNegative("ReduceLROnPlateau eps", o.eps);
    this.#o = o;
    this.best = o.mode === "min" ? Infinity : -Infinity;
  }

  /** Whether `a` improves on `best` under the mode and threshold. */
  isBetter(a: number, best: number): boolean {
    const { mode, threshold, thresholdMode } = this.#o;
    if (mode === "min") return thresholdMode === "rel" ? a < best * (1 - threshold) : a < best - threshold;
    return thresholdMode === "rel" ? a > best * (threshold + 1) : a > best + threshold;
  }

  /** Record one epoch's metric; returns true when the rate was reduced. Throws `NON_FINITE` on NaN. */
  step(metric: number): boolean {
    if (typeof metric !== "number" || Number.isNaN(metric)) {
      throw new QuantlabError("NON_FINITE", `ReduceLROnPlateau metric must be a number, got ${metric}`);
    }
    this.lastEpoch++;
    if (this.isBetter(metric, this.best)) {
      this.best = metric;
      this.numBadEpochs = 0;
    } else {
      this.numBadEpochs++;
    }
    if (this.cooldownCounter > 0) {
      this.cooldownCounter--;
      this.numBadEpochs = 0;
    }
    let reduced = false;
    if (this.numBadEpochs > this.#o.patience) {
      const old = this.target.lr;
      const next = Math.max(old * this.#o.factor, this.#o.minLr);
      if (old - next > this.#o.eps) {
        this.target.lr = next;
        reduced = true;
      }
      this.cooldownCounter = this.#o.cooldown;
      this.numBadEpochs = 0;
    }
    return reduced;
  }
}
