/**
 * `deno bench`: one ResNet-8 training step at batch 128 on onnxruntime-node (forward, backward, BN statistics,
 * SGD update) and the TypeScript SGD / Adam updates of its 77,754 parameters. The PyTorch comparison is
 * `benchmarks/train_step_peer.ts`.
 *
 * @module
 */
import { Trainer } from "../lib/grad/train.ts";
import { adam, sgd } from "../lib/grad/optim.ts";
import { resnet8 } from "../lib/models/resnet8.ts";
import { Prng } from "../lib/tensor/prng.ts";
import { Tensor } from "../lib/tensor/tensor.ts";

const rng = new Prng(1);
const x = rng.fillNormal(new Float32Array(128 * 784)) as Float32Array;
const labels = Int32Array.from({ length: 128 }, () => rng.nextInt(10));
const b = { x: new Tensor<"float32">(x, [128, 1, 28, 28]), labels: new Tensor<"int32">(labels, [128]) };
const trainer = await Trainer.create({
  model: resnet8({ seed: 0 }),
  optimizer: sgd({ lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 }),
  sample: b,
  session: { backend: "node", threads: 2 },
});
const grads = new Map([...trainer.params].map(([k, v]) => [k, v.map((_, i) => Math.sin(i) * 1e-3)]));
const params = new Map([...trainer.params].map(([k, v]) => [k, v.slice()]));
const s = sgd({ lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
const a = adam({ lr: 1e-3 });

Deno.bench("ResNet-8 train step, batch 128, onnxruntime-node, 2 threads", { group: "step" }, async () => {
  await trainer.step(b);
});
Deno.bench("SGD Nesterov update, 77,754 parameters (TypeScript)", { group: "update" }, () => {
  s.step(params, grads);
});
Deno.bench("Adam update, 77,754 parameters (TypeScript)", { group: "update" }, () => {
  a.step(params, grads);
});
