/**
 * The layering rule of ARCHITECTURE.md, held by a script rather than by trust (std's `_tools/check_circular_*`
 * is the model): every folder of `lib/` has a place in one bottom-up order, and a module may import only from
 * its own folder or from folders below it. So there is no upward import and no cycle between folders.
 * Only real `import`/`export ... from` statements count (doc examples in JSDoc may import anything).
 *
 * Also checked: the root `mod.ts` exports fewer than {@link MAX_ROOT_NAMES} values (functions, classes, constants;
 * the types they reference come along so `deno doc --lint mod.ts` is clean; the rest of the library lives in the
 * subpath exports of `deno.json`), and every subpath export resolves to a file.
 *
 * Usage: `deno run --allow-read --allow-run scripts/check_layers.ts` (part of `deno task check`); exits 1 with one
 * line per violation.
 *
 * @module
 */

/** Folders of lib/, bottom up. A folder may import itself and anything before it. */
export const LAYERS: readonly string[] = [
  "tensor", // core: Tensor, PRNG, SIMD assembler (with lib/errors.ts)
  "quant", // scalar quantization: schemes, params, affine, rounding, metrics; calibrate/ composed by the builder
  "integer", // dyadic integer-only arithmetic
  "extreme", // binary / ternary
  "nonuniform", // levels, Lloyd-Max, binary codes
  "vq", // k-means, product quantization
  "onnx", // codec, IR, op classes, sessions, BN folding
  "data", // datasets, readers
  "models", // reference model builders
  "grad", // gradient compiler, optimizers, trainer
  "stats", // statistics across seeds (d3-array)
  "ptq", // the model-level core: plan, policy, passes, materialize, sensitivity
  "zeroshot", // methods over the core
  "adaround", // learned rounding (AdaRound) and stochastic rounding baselines over the core
  "mixed", // mixed precision: Hessian traces, HAWQ sensitivity, the integer program
  "qat", // quantization-aware training and distillation over the core
  "vqmodel", // model-level vector quantization: k-means sharing, product quantization, compressed export
  "notebook", // presentation: display bundles, progress, tables
  "viz", // presentation: vega-lite charts
  "experiments", // survey comparisons as functions of (config, seed)
  "sweep", // running experiments over seeds and machines
];

/** Largest number of names the root module may export. */
export const MAX_ROOT_NAMES = 100;

/** Module-level rules inside a folder: [importer prefix, forbidden target prefix, why]. */
const MODULE_RULES: readonly [string, string, string][] = [
  ["lib/quant/calibrate/", "lib/quant/quantizer.ts", "calibrators never import the quantizer builder"],
];

const root = new URL("../", import.meta.url);

async function* walk(dir: URL): AsyncGenerator<URL> {
  for await (const e of Deno.readDir(dir)) {
    const u = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory) yield* walk(u);
    else if (e.name.endsWith(".ts")) yield u;
  }
}

function rel(u: URL): string {
  return u.pathname.slice(root.pathname.length);
}

/** Static import/export specifiers of a module (outside comments). */
export function importsOf(source: string): string[] {
  const noComments = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const out: string[] = [];
  const re = /^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"|^\s*import\s+"([^"]+)"/gm;
  for (let m; (m = re.exec(noComments));) out.push(m[1] ?? m[2]);
  return out;
}

function folderOf(path: string): string | undefined {
  const m = /^lib\/([^/]+)\//.exec(path);
  return m ? m[1] : undefined;
}

/** All violations of the layering rule under lib/. */
export async function layerViolations(): Promise<string[]> {
  const problems: string[] = [];
  const rank = new Map(LAYERS.map((f, i) => [f, i]));
  for await (const file of walk(new URL("lib/", root))) {
    const from = rel(file);
    const folder = folderOf(from);
    if (folder !== undefined && !rank.has(folder)) {
      problems.push(`${from}: folder lib/${folder}/ has no place in LAYERS (scripts/check_layers.ts)`);
      continue;
    }
    for (const spec of importsOf(await Deno.readTextFile(file))) {
      if (!spec.startsWith(".")) continue;
      const target = rel(new URL(spec, file));
      if (!target.startsWith("lib/")) {
        if (target.endsWith(".ts")) problems.push(`${from}: imports ${target} from outside lib/`);
        continue;
      }
      for (const [importer, forbidden, why] of MODULE_RULES) {
        if (from.startsWith(importer) && target.startsWith(forbidden)) problems.push(`${from} -> ${target}: ${why}`);
      }
      const to = folderOf(target);
      if (folder === undefined || to === undefined || to === folder) continue;
      if (!rank.has(to)) {
        problems.push(`${from}: imports lib/${to}/, which has no place in LAYERS`);
      } else if (rank.get(to)! > rank.get(folder)!) {
        problems.push(`${from}: upward import of ${target} (lib/${folder}/ sits below lib/${to}/)`);
      }
    }
  }
  return problems;
}

/** Root-module and subpath-export problems. */
export async function surfaceViolations(): Promise<string[]> {
  const problems: string[] = [];
  const cfg = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const exports: Record<string, string> = typeof cfg.exports === "string" ? { ".": cfg.exports } : cfg.exports;
  for (const [name, path] of Object.entries(exports)) {
    try {
      await Deno.stat(new URL(path, root));
    } catch {
      problems.push(`deno.json export "${name}" points to missing ${path}`);
    }
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", "mod.ts"],
    cwd: root.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    problems.push(`deno doc --json mod.ts failed: ${new TextDecoder().decode(out.stderr).slice(0, 300)}`);
  } else {
    // Runtime values (functions, classes, constants) are the surface; `export type` re-exports of the types they
    // reference come along for documentation and do not count.
    const names = new Set(Object.keys(await import(new URL("mod.ts", root).href)));
    if (names.size >= MAX_ROOT_NAMES) {
      problems.push(`mod.ts exports ${names.size} values; keep it under ${MAX_ROOT_NAMES} (move the rest to subpaths)`);
    }
  }
  return problems;
}

if (import.meta.main) {
  const problems = [...await layerViolations(), ...await surfaceViolations()];
  for (const p of problems) console.error(p);
  console.log(problems.length ? `${problems.length} layering problem(s)` : "layering: ok");
  if (problems.length) Deno.exit(1);
}
