/**
 * Statistics across seeds (d3-array underneath): summaries, Student t
 * quantiles and 95 % t-intervals.
 *
 * @module
 */
export * from "./summary.ts";
