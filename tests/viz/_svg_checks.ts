/**
 * Checks on rendered chart SVGs (vega's headless output), shared by the chart and reproduce tests: the chart fits the
 * report's width, every continuous axis has a title, every discrete axis names its categories, and no axis repeats a
 * tick label (the "2 3 3 4 4" of rounded half-step ticks).
 */

/** The report's content width (CSS `max-width` of the page body in scripts/reproduce.ts). */
export const REPORT_WIDTH = 1100;

/** Problems with one chart SVG (empty when it is fine). */
export function svgProblems(svg: string, name = "chart"): string[] {
  const problems: string[] = [];
  const width = Number(/^<svg[^>]*\swidth="([\d.]+)"/.exec(svg)?.[1] ?? NaN);
  if (!(width <= REPORT_WIDTH)) problems.push(`${name}: ${width} px wide, more than the report's ${REPORT_WIDTH} px`);
  const axes = [...svg.matchAll(/aria-roledescription="axis" aria-label="([^"]*)"/g)].map((m) => m[1]);
  if (axes.length < 2) problems.push(`${name}: ${axes.length} axes (expected at least x and y)`);
  for (const a of axes) {
    const discrete = / for a discrete scale/.test(a);
    if (!discrete && !/-axis titled '[^']+'/.test(a)) problems.push(`${name}: untitled axis (${a})`);
    if (discrete && !/ with \d+ values?: \S/.test(a)) problems.push(`${name}: discrete axis without labels (${a})`);
  }
  for (const m of svg.matchAll(/role-axis-label"[^>]*>([\s\S]*?)<\/g>/g)) {
    const labels = [...m[1].matchAll(/>([^<]+)<\/text>/g)].map((t) => t[1]);
    const dup = labels.filter((l, i) => labels.indexOf(l) !== i);
    if (dup.length) problems.push(`${name}: repeated tick labels ${JSON.stringify(labels)}`);
  }
  return problems;
}
