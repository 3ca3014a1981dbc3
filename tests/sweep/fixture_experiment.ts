/**
 * A cheap test-only experiment for sweep tests: `sweep-fixture` sleeps
 * `config.ms` (default 50) milliseconds and returns a value that depends only
 * on (config, seed). When `QUANTLAB_SWEEP_COUNTER` names a file, every
 * execution appends a line to it (so tests count reruns across processes).
 */
import { registerExperiment } from "../../lib/experiments/registry.ts";
import { Report } from "../../lib/experiments/report.ts";

/** The deterministic value of (config, seed). */
export function fixtureValue(config: Record<string, unknown>, seed: number): number {
  let h = 2166136261 ^ seed;
  for (const c of JSON.stringify(config)) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return (h >>> 0) / 2 ** 32;
}

registerExperiment({
  id: "sweep-fixture",
  title: "Sweep fixture",
  section: "none",
  run: (o) => Promise.resolve(new Report("sweep-fixture", "Sweep fixture", "c").record({ seed: o?.seed ?? 0 })),
  async trial(config, seed) {
    const counter = Deno.env.get("QUANTLAB_SWEEP_COUNTER");
    if (counter) await Deno.writeTextFile(counter, `start ${seed} ${Deno.pid}\n`, { append: true });
    await new Promise((r) => setTimeout(r, Number(config.ms ?? 50)));
    if (config.fail === true) throw new Error("fixture asked to fail");
    const value = fixtureValue(config as Record<string, unknown>, seed);
    if (counter) await Deno.writeTextFile(counter, `done ${seed} ${Deno.pid}\n`, { append: true });
    return { value, seed, square: seed * seed };
  },
}, { replace: true });
