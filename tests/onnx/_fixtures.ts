// Shared helpers for the ONNX/PTQ tests: fixture paths and the PyTorch reference (tests/fixtures/make_onnx_models.py).
export const MODELS = new URL("../fixtures/models/", import.meta.url);

export function modelPath(name: string): string {
  return new URL(`${name}.onnx`, MODELS).pathname;
}

export function b64f32(s: string): Float32Array {
  const bin = atob(s);
  const u = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
  return new Float32Array(u.buffer);
}

export interface Reference {
  normalization: { mean: number; std: number };
  inputs: string;
  labels: number[];
  resnet8: { accuracy: number; logits: string };
  poolnet: { accuracy: number; logits: string };
  resnet8_weight_fake_quant: Record<string, { axis: number; shape: number[]; scale: string; values: string }>;
}

export const reference: Reference = JSON.parse(await Deno.readTextFile(new URL("reference.json", MODELS)));

export function fashionMnistAvailable(): boolean {
  for (const d of [Deno.env.get("FASHION_MNIST_DIR"), "datasets/fashion-mnist", "/usr/share/datasets/fashion-mnist"]) {
    if (!d) continue;
    try {
      Deno.statSync(`${d}/t10k-images-idx3-ubyte.gz`);
      return true;
    } catch {
      try {
        Deno.statSync(`${d}/t10k-images-idx3-ubyte`);
        return true;
      } catch {
        // next
      }
    }
  }
  return false;
}
