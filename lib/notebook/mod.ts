/**
 * Notebook presentation: Jupyter display bundles, tables and progress.
 *
 * @module
 */
export * from "./display.ts";
export * from "./table.ts";
export * from "./progress.ts";
export * from "./show.ts";
export * from "./quick.ts";
