/**
 * `deno task fetch-data`: download Fashion-MNIST's four IDX files from the official release into
 * datasets/fashion-mnist/ and check them against the SHA-256 quantlab records. Needs network access
 * (untested in CI, which has none: there, install Debian's `dataset-fashion-mnist` instead).
 *
 * @module
 */
import { FASHION_MNIST_SHA256 } from "../lib/data/fashion_mnist.ts";
import { gunzip, sha256Hex } from "../lib/data/idx.ts";
import { writeModelAtomic } from "../lib/onnx/io.ts";

const BASE = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";
const OUT = "datasets/fashion-mnist";

if (import.meta.main) {
  await Deno.mkdir(OUT, { recursive: true });
  for (const [name, sha] of Object.entries(FASHION_MNIST_SHA256)) {
    const url = `${BASE}${name}.gz`;
    console.log(`fetching ${url}`);
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    const gz = new Uint8Array(await res.arrayBuffer());
    const got = await sha256Hex(await gunzip(gz, url));
    if (got !== sha) throw new Error(`${url}: SHA-256 ${got}, expected ${sha}`);
    await writeModelAtomic(`${OUT}/${name}.gz`, gz);
  }
  console.log(`Fashion-MNIST is in ${OUT}/`);
}
