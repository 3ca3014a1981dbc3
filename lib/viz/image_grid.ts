/**
 * A grid of grey-scale images as a PNG, displayable in Jupyter (`image/png`): for looking at distilled inputs
 * next to real ones. Each image is scaled to [0, 255] with a shared range (default: its own min..max per image)
 * and upscaled by pixel repetition.
 *
 * @module
 */
import { QuantlabError } from "../errors.ts";
import { JUPYTER_DISPLAY, type MediaBundle } from "../notebook/display.ts";
import type { Tensor } from "../tensor/tensor.ts";

const CRC = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * Encode 8-bit grey pixels (`height * width`) as a PNG (zlib via `CompressionStream("deflate")`).
 *
 * @example
 * ```ts
 * import { encodeGreyPng } from "./image_grid.ts";
 * const png = await encodeGreyPng(new Uint8Array([0, 255, 255, 0]), 2, 2);
 * if (png[1] !== 0x50 || png[2] !== 0x4e || png[3] !== 0x47) throw new Error("not a PNG");
 * ```
 */
export async function encodeGreyPng(pixels: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  if (pixels.length !== width * height) {
    throw new QuantlabError("SHAPE_MISMATCH", `encodeGreyPng: ${pixels.length} pixels for ${width}x${height}`);
  }
  const raw = new Uint8Array(height * (width + 1));
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const z = new Uint8Array(
    await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate"))).arrayBuffer(),
  );
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 0, 0, 0, 0], 8);
  const parts = [
    new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", ihdr),
    chunk("IDAT", z),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * A rendered image grid.
 *
 * @example
 * ```ts
 * import { ImageGrid } from "./image_grid.ts";
 * const g = new ImageGrid(new Uint8Array([137, 80, 78, 71]), 28, 14, "samples");
 * if (g.width !== 28 || g.height !== 14 || g.title !== "samples") throw new Error("bad");
 * ```
 */
export class ImageGrid {
  /** PNG bytes. */
  readonly png: Uint8Array;
  /** Width, pixels. */
  readonly width: number;
  /** Height, pixels. */
  readonly height: number;
  /** Caption. */
  readonly title: string;

  /** Wrap PNG bytes of `width x height` pixels with a caption. */
  constructor(png: Uint8Array, width: number, height: number, title: string) {
    this.png = png;
    this.width = width;
    this.height = height;
    this.title = title;
  }

  /** Base64 of the PNG. */
  base64(): string {
    let s = "";
    for (let i = 0; i < this.png.length; i += 0x8000) s += String.fromCharCode(...this.png.subarray(i, i + 0x8000));
    return btoa(s);
  }

  /** One line. */
  toString(): string {
    return `ImageGrid(${this.title}, ${this.width}x${this.height} PNG)`;
  }

  /** Jupyter display: the PNG and a text line. */
  [JUPYTER_DISPLAY](): MediaBundle {
    return { "image/png": this.base64(), "text/plain": this.toString() };
  }
}

/**
 * Lay out rows of images (`[N, 1, H, W]` tensors, one row each, first `cols` images) in a PNG grid, each image
 * min-max scaled on its own, upscaled `scale` times, with a 2-pixel gap.
 *
 * @example
 * ```ts
 * import { imageGrid } from "./image_grid.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const g = await imageGrid([Tensor.from([0, 1, 2, 3], [1, 1, 2, 2])], { cols: 1, scale: 2, title: "t" });
 * if (g.width !== 4 || g.height !== 4) throw new Error(g.toString());
 * ```
 */
export async function imageGrid(
  rows: readonly Tensor[],
  o: { cols?: number; scale?: number; title?: string } = {},
): Promise<ImageGrid> {
  if (rows.length === 0) throw new QuantlabError("EMPTY_TENSOR", "imageGrid: no rows");
  const [, , H, W] = rows[0].shape;
  const cols = o.cols ?? 8, s = o.scale ?? 3, gap = rows.length * cols > 1 ? 2 : 0;
  const cw = W * s + gap, ch = H * s + gap;
  const width = cols * cw - gap, height = rows.length * ch - gap;
  const px = new Uint8Array(width * height).fill(255);
  rows.forEach((t, r) => {
    const d = t.data as Float32Array;
    for (let c = 0; c < Math.min(cols, t.shape[0]); c++) {
      const img = d.subarray(c * H * W, (c + 1) * H * W);
      let lo = Infinity, hi = -Infinity;
      for (const v of img) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const k = hi > lo ? 255 / (hi - lo) : 0;
      for (let y = 0; y < H * s; y++) {
        for (let x = 0; x < W * s; x++) {
          const v = img[Math.floor(y / s) * W + Math.floor(x / s)];
          px[(r * ch + y) * width + c * cw + x] = Math.floor((v - lo) * k + 0.5);
        }
      }
    }
  });
  return new ImageGrid(await encodeGreyPng(px, width, height), width, height, o.title ?? "images");
}
