/**
 * Charts: vega-lite v5 spec builders and headless SVG rendering.
 *
 * @module
 */
export * from "./render.ts";
export * from "./chart.ts";
export * from "./charts.ts";
export * from "./inspect.ts";
export * from "./image_grid.ts";
export * from "./sensitivity.ts";
export * from "./bit_map.ts";
