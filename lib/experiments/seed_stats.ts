/**
 * Claims across seeds: given one experiment's trials at several seeds
 * ({@link ReportTrial}s, e.g. from a sweep's store), say for each finding in
 * how many seeds it held and give its margin's mean ± 95 % t-interval, and add
 * a table and an error-bar chart to the report.
 *
 * Kept out of `mod.ts` (it loads d3-array from npm through `lib/stats`); import it by path.
 *
 * @module
 */
import { table } from "../notebook/table.ts";
import { summarize, type Summary } from "../stats/summary.ts";
import { intervalChart } from "../viz/charts.ts";
import type { ReportTrial } from "./registry.ts";
import type { Report, SeedVerdict } from "./report.ts";

/**
 * The across-seeds verdict of each claim in `trials` (matched by claim text), in the order of the first trial.
 *
 * @example
 * ```ts
 * import { seedVerdicts } from "./seed_stats.ts";
 * const t = (m: number) => ({ id: "x", numbers: {}, findings: [{ claim: "c", holds: m > 1, margin: { value: m, unit: "dB" } }] });
 * const [v] = seedVerdicts([t(2), t(3), t(0.5)]);
 * if (v.held !== 2 || v.n !== 3 || Math.abs(v.margin!.mean - 11 / 6) > 1e-12) throw new Error(JSON.stringify(v));
 * ```
 */
export function seedVerdicts(trials: readonly ReportTrial[], settings?: string): (SeedVerdict & { claim: string })[] {
  if (trials.length === 0) return [];
  return trials[0].findings.map((f0, i) => {
    const same = trials.map((t) => t.findings.find((f) => f.claim === f0.claim) ?? t.findings[i]).filter(Boolean);
    const held = same.filter((f) => f.holds).length;
    const margins = same.flatMap((f) => f.margin && Number.isFinite(f.margin.value) ? [f.margin.value] : []);
    let margin: SeedVerdict["margin"];
    if (margins.length === same.length && margins.length > 0) {
      const s = summarize(margins);
      margin = { mean: s.mean, sd: s.sd, halfWidth: s.halfWidth, unit: f0.margin!.unit };
    }
    return { claim: f0.claim, n: same.length, held, ...(margin ? { margin } : {}), ...(settings ? { settings } : {}) };
  });
}

/**
 * Summaries of every key number present in all trials, by key.
 *
 * @example
 * ```ts
 * import { numberSummaries } from "./seed_stats.ts";
 * const s = numberSummaries([{ id: "x", numbers: { a: 1 }, findings: [] }, { id: "x", numbers: { a: 3 }, findings: [] }]);
 * if (s.a.mean !== 2) throw new Error("bad");
 * ```
 */
export function numberSummaries(trials: readonly ReportTrial[]): Record<string, Summary> {
  if (trials.length === 0) return {};
  const out: Record<string, Summary> = {};
  for (const k of Object.keys(trials[0].numbers)) {
    const v = trials.map((t) => t.numbers[k]);
    if (v.every((x) => typeof x === "number" && Number.isFinite(x))) out[k] = summarize(v);
  }
  return out;
}

/**
 * Attach to `report`'s findings their across-seeds verdicts (matched by claim text), and add a table of the
 * claims across seeds and an error-bar chart of their margins. Returns the report.
 *
 * @example
 * ```ts
 * import { annotateSeeds } from "./seed_stats.ts";
 * import { Report } from "./report.ts";
 * import { trialOfReport } from "./registry.ts";
 * const run = (m: number) => new Report("x", "X", "c").finding("wins", m > 0, "e", { value: m, unit: "points" });
 * const r = annotateSeeds(run(2), [1, 2, 3, 2, 2].map((m) => trialOfReport(run(m))), "quick sizes, seeds 0-4");
 * if (!r.findingsText().includes("holds in 5 of 5 seeds; difference 2.00 ± 0.88 points")) throw new Error(r.findingsText());
 * ```
 */
export function annotateSeeds(report: Report, trials: readonly ReportTrial[], settings?: string): Report {
  const verdicts = seedVerdicts(trials, settings);
  if (verdicts.length === 0) return report;
  for (const [i, f] of report.findings.entries()) {
    const v = verdicts.find((v) => v.claim === f.claim);
    if (v) {
      const { claim: _claim, ...verdict } = v;
      report.seedVerdict(i, verdict);
    }
  }
  const n = trials.length;
  report.table(
    "seeds",
    table(
      verdicts.map((v) => ({
        claim: v.claim,
        held: `${v.held} of ${v.n}`,
        margin: v.margin ? `${v.margin.mean.toFixed(2)} ± ${v.margin.halfWidth.toFixed(2)} ${v.margin.unit}` : "",
        sd: v.margin ? Number(v.margin.sd.toFixed(3)) : "",
      })),
      {
        title: `Claims across ${n} seeds${settings ? ` (${settings})` : ""}: margin as mean ± 95% t-interval`,
        columns: [
          { key: "claim", title: "claim" },
          { key: "held", title: "holds in" },
          { key: "margin", title: "margin (mean ± 95% CI)" },
          { key: "sd", title: "sd across seeds" },
        ],
      },
    ),
  );
  const rows = verdicts.flatMap((v) =>
    v.margin && Number.isFinite(v.margin.halfWidth)
      ? [{
        label: `${v.claim.length > 70 ? v.claim.slice(0, 67) + "..." : v.claim} (${v.margin.unit})`,
        mean: v.margin.mean,
        lo: v.margin.mean - v.margin.halfWidth,
        hi: v.margin.mean + v.margin.halfWidth,
        group: v.held === v.n ? "holds in every seed" : v.held === 0 ? "holds in no seed" : "holds in some seeds",
      }]
      : []
  );
  if (rows.length > 0) {
    report.chart(
      "seeds",
      intervalChart(rows, {
        title: `Claim margins across ${n} seeds`,
        subtitle: `mean and 95% t-interval${settings ? `; ${settings}` : ""}; each in the unit named in its label`,
        xTitle: "margin (mean ± 95% CI, unit in the label)",
        groupTitle: "verdict",
      }),
    );
  }
  return report;
}
