/**
 * Render the report as a person would see it: headless Chromium (Debian
 * `chromium`) screenshots `reports/index.html` to a PNG.
 *
 * Usage: deno run -A scripts/render_report.ts [HTML] [--out PNG] [--height PX]
 *   default HTML reports/index.html, PNG reports/index.png, height 3000.
 *
 * @module
 */

/** The first Chromium-like browser on PATH, or undefined. */
export async function findChromium(): Promise<string | undefined> {
  for (const c of [Deno.env.get("QUANTLAB_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"]) {
    if (!c) continue;
    try {
      const o = await new Deno.Command(c, { args: ["--version"], stdout: "null", stderr: "null" }).output();
      if (o.code === 0) return c;
    } catch {
      // not installed
    }
  }
  return undefined;
}

/** Screenshot `html` (a path) into `png` with headless Chromium; throws when Chromium fails. */
export async function renderToPng(html: string, png: string, options: { width?: number; height?: number } = {}) {
  const chromium = await findChromium();
  if (!chromium) throw new Error("Chromium is not installed (Debian: apt-get install chromium)");
  const profile = await Deno.makeTempDir({ prefix: "quantlab-chromium-" });
  try {
    const url = new URL(html, `file://${Deno.cwd()}/`).href;
    const o = await new Deno.Command(chromium, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        `--user-data-dir=${profile}`,
        `--screenshot=${png}`,
        `--window-size=${options.width ?? 1200},${options.height ?? 3000}`,
        url,
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(120_000),
    }).output();
    const size = (await Deno.stat(png).catch(() => undefined))?.size ?? 0;
    if (o.code !== 0 || size === 0) {
      throw new Error(`chromium failed (exit ${o.code}): ${new TextDecoder().decode(o.stderr).slice(-2000)}`);
    }
    return size;
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const flag = (n: string) => {
    const i = Deno.args.indexOf(n);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const html = Deno.args.find((a, i) => !a.startsWith("--") && !Deno.args[i - 1]?.startsWith("--")) ??
    "reports/index.html";
  const png = flag("--out") ?? html.replace(/\.html?$/, "") + ".png";
  const size = await renderToPng(html, png, { height: Number(flag("--height") ?? 3000) });
  console.log(`Rendered ${html} -> ${png} (${size} bytes)`);
}
