#!/usr/bin/python3
"""PyTorch reimplementation of quantlab's LSQ QAT recipe, for benchmarks/qat_parity.ts (issue 12 parity).

Usage (the .ts driver runs it): /usr/bin/python3 benchmarks/qat_parity.py <dir> <bits> <seeds> [<epochs>]
(<epochs> overrides the spec's; 0 gives the starting model's accuracy, to compare with quantlab's PTQ QDQ accuracy)

<dir> holds what quantlab wrote: model_<bits>.onnx (the BN-folded float ResNet-8), spec_<bits>.json (the quantization
plan: activations with their calibrated parameters and whether LSQ learns them, weights with their starting LSQ
steps, biases with their input and weight), train/test images (normalised float32 NCHW) and labels, and the epoch
orders order_<seed>_<epoch>.u32. The network is built from the ONNX file with onnx.numpy_helper (Conv, Relu, Add,
GlobalAveragePool, Flatten, Gemm) and trained with LSQ written here from the paper's code:

- LSQ (Esser et al. 2020): v = clamp(x / s, Qn, Qp), out = round_pass(v) * s, the step's gradient scaled by
  g = 1 / sqrt(N * Qp) (N: elements per output channel for weights, per sample for activations); weights signed
  [-2^(b-1), 2^(b-1) - 1] per output channel, activations unsigned [0, 2^b - 1] per tensor; steps kept >= 1e-8.
- Activations LSQ cannot represent (a zero point inside the grid: the network input, the residual branches before
  their Add, the logits) are fake-quantized at their calibrated scale and zero point, straight-through inside the
  clip range.
- Biases on their int32 grid: round(b / (s_x s_w)) s_x s_w, straight-through, scales detached.
- Adam (torch.optim.Adam, lr from the spec), cross-entropy, batch 64 in quantlab's order, the last partial batch
  too. Prints one JSON line per seed: {"seed", "accuracy", "seconds"} on the test set (fake-quantized model).
"""
import json
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

torch.set_num_threads(2)
d, bits, seeds = sys.argv[1], int(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")]
spec = json.load(open(f"{d}/spec_{bits}.json"))
if len(sys.argv) > 4:  # epochs override (0: the starting model's accuracy)
    spec["epochs"] = int(sys.argv[4])
model = onnx.load(f"{d}/model_{bits}.onnx")
inits0 = {t.name: torch.tensor(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}


def load(name, dtype, shape):
    return torch.from_numpy(np.fromfile(f"{d}/{name}", dtype=dtype).reshape(shape))


train_y = load("train_y.i32", np.int32, (-1,)).long()
test_y = load("test_y.i32", np.int32, (-1,)).long()
train_x = load("train_x.f32", np.float32, (len(train_y), 1, 28, 28))
test_x = load("test_x.f32", np.float32, (len(test_y), 1, 28, 28))


def round_pass(v):
    return v + (torch.round(v) - v).detach()


def grad_scale(s, g):
    return (s - s * g).detach() + s * g


def attr(n, name, default):
    for a in n.attribute:
        if a.name == name:
            return list(a.ints) if a.ints else (a.i if a.type == onnx.AttributeProto.INT else a.f)
    return default


acts = {a["tensor"]: a for a in spec["activations"]}
weights = {w["tensor"]: w for w in spec["weights"]}
biases = {b["tensor"]: b for b in spec["biases"]}


def run_seed(seed):
    torch.manual_seed(seed)
    P = {}  # learnable tensors
    for name, t in inits0.items():
        if name in weights or name in biases:
            P[name] = t.clone().float().requires_grad_(True)
    steps = {}
    for w in spec["weights"]:
        C = inits0[w["tensor"]].shape[0]
        steps[w["tensor"]] = torch.tensor(w["steps"], dtype=torch.float32).reshape(C).requires_grad_(True)
    for a in spec["activations"]:
        if a["kind"] == "lsq" and a["sharesWith"] is None:
            steps[a["tensor"]] = torch.tensor(a["scale"], dtype=torch.float32).requires_grad_(True)

    def act_step(name):
        a = acts[name]
        return steps[a["sharesWith"] or name]

    def fq_act(name, x):
        a = acts[name]
        if a["kind"] == "lsq":
            qp = 2 ** a["bits"] - 1
            n = x[0].numel()
            s = grad_scale(act_step(name), 1.0 / (n * qp) ** 0.5)
            return round_pass(torch.clamp(x / s, 0, qp)) * s
        s, z = a["scale"], a["zeroPoint"]
        lo, hi = (a["qmin"] - z) * s, (a["qmax"] - z) * s
        return round_pass(torch.clamp(x, lo, hi) / s) * s

    def act_scale(name):
        a = acts.get(name)
        if a is None:
            return None
        return act_step(name).detach() if a["kind"] == "lsq" else torch.tensor(a["scale"], dtype=torch.float32)

    def fq_weight(name):
        w = P[name]
        b = weights[name]["bits"]
        qn, qp = -(2 ** (b - 1)), 2 ** (b - 1) - 1
        C = w.shape[0]
        s = grad_scale(steps[name], 1.0 / (w[0].numel() * qp) ** 0.5).reshape(C, *([1] * (w.dim() - 1)))
        return round_pass(torch.clamp(w / s, qn, qp)) * s

    def fq_bias(name, x_name, w_name):
        sx = act_scale(x_name)
        if sx is None:
            return P[name]
        s = (sx * steps[w_name].detach()).float()
        return round_pass(P[name] / s) * s

    def forward(x):
        env = {spec["input"]: fq_act(spec["input"], x) if spec["input"] in acts else x}
        for n in model.graph.node:
            i = [env[k] if k in env else (P[k] if k in P else inits0.get(k)) for k in n.input]
            if n.op_type == "Conv":
                w = fq_weight(n.input[1])
                b = fq_bias(n.input[2], biases[n.input[2]]["input"], n.input[1]) if len(n.input) > 2 else None
                pads = attr(n, "pads", [0, 0, 0, 0])
                y = F.conv2d(i[0], w, b, stride=attr(n, "strides", [1, 1]), padding=pads[:2],
                             dilation=attr(n, "dilations", [1, 1]), groups=attr(n, "group", 1))
            elif n.op_type == "Gemm":
                w = fq_weight(n.input[1])
                b = fq_bias(n.input[2], biases[n.input[2]]["input"], n.input[1])
                assert attr(n, "transB", 0) == 1 and attr(n, "transA", 0) == 0
                y = F.linear(i[0], w, b)
            elif n.op_type == "Relu":
                y = F.relu(i[0])
            elif n.op_type == "Add":
                y = i[0] + i[1]
            elif n.op_type == "GlobalAveragePool":
                y = F.adaptive_avg_pool2d(i[0], 1)
            elif n.op_type == "Flatten":
                y = torch.flatten(i[0], attr(n, "axis", 1))
            else:
                raise ValueError(f"op {n.op_type} not supported")
            out = n.output[0]
            env[out] = fq_act(out, y) if out in acts else y
        return env[model.graph.output[0].name]

    opt = torch.optim.Adam(list(P.values()) + list(steps.values()), lr=spec["lr"])
    t0 = time.time()
    count = len(train_y)
    for epoch in range(spec["epochs"]):
        order = torch.from_numpy(np.fromfile(f"{d}/order_{seed}_{epoch}.u32", dtype=np.uint32).astype(np.int64))
        for b0 in range(0, count, spec["batch"]):
            idx = order[b0:b0 + spec["batch"]]
            if len(idx) < 2:
                continue
            loss = F.cross_entropy(forward(train_x[idx]), train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for s in steps.values():
                    s.clamp_(min=1e-8)
    seconds = time.time() - t0
    correct = 0
    with torch.no_grad():
        for b0 in range(0, len(test_y), 500):
            correct += int((forward(test_x[b0:b0 + 500]).argmax(1) == test_y[b0:b0 + 500]).sum())
    return {"seed": seed, "accuracy": correct / len(test_y), "seconds": seconds}


for seed in seeds:
    print(json.dumps(run_seed(seed)), flush=True)
