/** Loader for tests/fixtures/vq_fixtures.json (made by tests/fixtures/make_vq_fixtures.py). */

/** One k-means reference case. */
export interface KMeansCase {
  name: string;
  reference: "faiss.Clustering" | "sklearn.KMeans";
  n: number;
  d: number;
  k: number;
  iterations: number;
  x: number[];
  init: number[];
  centroids: number[];
  assignments: number[];
  objective?: number[];
  inertia?: number;
  n_iter?: number;
}

/** One product-quantization reference case (faiss-trained codebooks). */
export interface PqCase {
  name: string;
  d: number;
  M: number;
  K: number;
  n: number;
  codebooks: number[];
  x: number[];
  codes: number[];
  decoded: number[];
  tables: number[];
  tableQueries: number;
}

/** The parsed fixture file. */
export const fixtures: { kmeans: KMeansCase[]; pq: PqCase[]; faiss: string; sklearn: string } = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/vq_fixtures.json", import.meta.url)),
);
