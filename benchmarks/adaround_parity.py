#!/usr/bin/python3
"""PyTorch reimplementation of AdaRound on a whole model, for benchmarks/adaround_parity.ts (issue 11 parity).

Usage (the .ts driver runs it): /usr/bin/python3 benchmarks/adaround_parity.py <dir> <bits>

<dir> holds what quantlab wrote: model_<bits>.onnx (the BN-folded float ResNet-8), spec_<bits>.json (weight
quantizer grids per tensor, calibrated activation parameters, bias plan, the layers in quantlab's order with their
following activation, hyperparameters), calib/test images (normalised float32 NCHW) and labels, the batch index
sequence of every layer (batches_<bits>_<k>.i32, iterations x batch) and quantlab's final codes (codes_<bits>.json,
only to count agreement). The network is built from the ONNX file with onnx.numpy_helper (Conv, Relu, Add,
GlobalAveragePool, Flatten, Gemm) and AdaRound is written here from AIMET's formulas (as
tests/fixtures/make_adaround_fixtures.py, which the per-layer parity test uses):

- h(V) = clamp(sigmoid(V) (zeta - gamma) + gamma, 0, 1), zeta 1.1, gamma -0.1; V initialised so h(V) is the
  fractional part of w / s; w~ = (clamp(floor(w / s) + zp + h(V), qmin, qmax) - zp) s.
- loss = mean over batch and positions of sum over channels (act(layer(x, w~)) - t)^2
  + reg sum(1 - |2h - 1|^beta), the rounding term off for the first warm-start fraction, beta by AIMET's cosine rule.
- Adam (torch.optim.Adam, lr from the spec) on V only, the batches quantlab drew; hard rounding V >= 0 at the end.
- Layers in graph order; inputs cached from the model with every planned weight quantized so far (AdaRounded layers
  at their codes, later ones round-to-nearest, float biases, no activation quantization: AIMET's default), targets
  from the float model after the following activation.
- Reconstruction MSE (hard rounding, mean over elements) on the first 256 cached examples, before and after.
- Evaluation: the QDQ model as quantlab exports it: activations fake-quantized at the calibrated uint8 parameters,
  weights at their codes, biases on their int32 grid round(b / (s_x s_w)) s_x s_w.

Prints one JSON line: {"nearest", "adaround", "seconds", "layers": {weight: {...}}}.
"""
import json
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

ZETA, GAMMA = 1.1, -0.1
d, bits = sys.argv[1], int(sys.argv[2])
spec = json.load(open(f"{d}/spec_{bits}.json"))
torch.set_num_threads(spec["threads"])
model = onnx.load(f"{d}/model_{bits}.onnx")
inits = {t.name: torch.tensor(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
codes_ql = json.load(open(f"{d}/codes_{bits}.json"))


def load(name, dtype, shape):
    return torch.from_numpy(np.fromfile(f"{d}/{name}", dtype=dtype).reshape(shape))


test_y = load("test_y.i32", np.int32, (-1,)).long()
test_x = load("test_x.f32", np.float32, (len(test_y), 1, 28, 28))
calib_x = load("calib_x.f32", np.float32, (spec["samples"], 1, 28, 28))
acts = {a["tensor"]: a for a in spec["activations"]}
wspec = {w["tensor"]: w for w in spec["weights"]}
biases = {b["tensor"]: b for b in spec["biases"]}
nodes = {n.name: n for n in model.graph.node}


def attr(n, name, default):
    for a in n.attribute:
        if a.name == name:
            return list(a.ints) if a.ints else (a.i if a.type == onnx.AttributeProto.INT else a.f)
    return default


def grid(name, w):
    s = wspec[name]
    shape = (-1,) + (1,) * (w.dim() - 1)
    sc = torch.tensor(s["scale"], dtype=torch.float32).view(shape)
    zp = torch.tensor(s["zeroPoint"], dtype=torch.float32).view(shape)
    return sc, zp, s["qmin"], s["qmax"]


def nearest_codes(name):
    w = inits[name]
    sc, zp, lo, hi = grid(name, w)
    return torch.clamp(torch.round(w / sc) + zp, lo, hi)


def from_codes(name, q):
    sc, zp, _, _ = grid(name, inits[name])
    return (q - zp) * sc


def fq_act(name, x):
    a = acts[name]
    s, z = a["scale"], a["zeroPoint"]
    return (torch.clamp(torch.round(x / s) + z, a["qmin"], a["qmax"]) - z) * s


def fq_bias(name, w_name, weights):
    sx = acts[biases[name]["input"]]["scale"]
    sc, _, _, _ = grid(w_name, inits[w_name])
    s = (sx * sc.flatten()).float()
    return torch.round(inits[name] / s) * s


def apply(n, i, w, b):
    if n.op_type == "Conv":
        pads = attr(n, "pads", [0, 0, 0, 0])
        assert pads[:2] == pads[2:]
        return F.conv2d(i, w, b, stride=attr(n, "strides", [1, 1]), padding=pads[:2],
                        dilation=attr(n, "dilations", [1, 1]), groups=attr(n, "group", 1))
    assert attr(n, "transB", 0) == 1 and attr(n, "transA", 0) == 0
    return F.linear(i, w, b)


def forward(x, weights=None, quant=False, capture=()):
    """The model with `weights` replacing planned weights; `quant`: the QDQ model (activations and biases too)."""
    env = {spec["input"]: fq_act(spec["input"], x) if quant and spec["input"] in acts else x}
    got = {}
    for n in model.graph.node:
        i = [env[k] if k in env else inits.get(k) for k in n.input]
        if n.op_type in ("Conv", "Gemm"):
            w = weights[n.input[1]] if weights is not None and n.input[1] in weights else i[1]
            b = i[2] if len(n.input) > 2 else None
            if quant and b is not None and n.input[2] in biases:
                b = fq_bias(n.input[2], n.input[1], weights)
            y = apply(n, i[0], w, b)
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
        env[out] = fq_act(out, y) if quant and out in acts else y
        if out in capture:
            got[out] = env[out]
        if capture and all(k in got or k in env for k in capture):
            break  # the rest of the graph is not needed
    for k in capture:
        if k in env and k not in got:
            got[k] = env[k]
    return got if capture else env[model.graph.output[0].name]


def cache(name, weights):
    with torch.no_grad():
        return torch.cat([forward(calib_x[b:b + 256], weights, capture=(name,))[name]
                          for b in range(0, len(calib_x), 256)])


def h_of(v):
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0, 1)


def beta_at(it, n, beta_range, warm):
    warm_end = warm * n
    if it < warm_end:
        return 0.0
    start, end = beta_range
    rel = (it - warm_end) / (n - warm_end)
    return end + 0.5 * (start - end) * (1 + np.cos(rel * np.pi))


def accuracy(weights):
    correct = 0
    with torch.no_grad():
        for b0 in range(0, len(test_y), 500):
            correct += int((forward(test_x[b0:b0 + 500], weights, quant=True).argmax(1) == test_y[b0:b0 + 500]).sum())
    return correct / len(test_y)


st = spec["settings"]
iters, bs, reg, lr = spec["iterations"], spec["batch"], st["regWeight"], st["lr"]
beta_range, warm = st["betaRange"], st["warmStart"]
codes = {w: nearest_codes(w) for w in wspec}  # current codes of every planned weight
nearest_weights = {w: from_codes(w, q) for w, q in codes.items()}
report = {}
t_all = time.time()
for layer in spec["layers"]:
    t0 = time.time()
    n, wname, k = nodes[layer["node"]], layer["weight"], layer["index"]
    act = torch.relu if layer["activation"] == "Relu" else (lambda z: z)
    assert layer["activation"] in ("Relu", "none")
    target = n.output[0]
    if layer["activation"] == "Relu":
        target = [m for m in model.graph.node if n.output[0] in m.input][0].output[0]
    x = cache(n.input[0], {w: from_codes(w, q) for w, q in codes.items()})
    t = cache(target, None)
    w = inits[wname]
    b = inits[n.input[2]] if len(n.input) > 2 else None
    sc, zp, lo, hi = grid(wname, w)
    r = w / sc
    base = torch.floor(r)
    frac = r - base
    base = base + zp
    v = (-torch.log((ZETA - GAMMA) / (frac - GAMMA) - 1)).clone().requires_grad_(True)

    def wq(hv):
        return (torch.clamp(base + hv, lo, hi) - zp) * sc

    def mse(hard):
        with torch.no_grad():
            return float(F.mse_loss(act(apply(n, x[:256], wq((hard >= 0).float()), b)), t[:256]))

    mse_nearest = mse(v.detach())
    seq = torch.from_numpy(np.fromfile(f"{d}/batches_{bits}_{k}.i32", dtype=np.int32).astype(np.int64)).view(iters, -1)
    opt = torch.optim.Adam([v], lr=lr)
    for it in range(iters):
        idx = seq[it]
        y = act(apply(n, x[idx], wq(h_of(v)), b))
        loss = (torch.norm(y - t[idx], p="fro", dim=1) ** 2).mean()
        beta = beta_at(it, iters, beta_range, warm)
        if beta != 0:
            loss = loss + reg * (1 - (2 * h_of(v) - 1).abs().pow(beta)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    vd = v.detach()
    q = torch.clamp(base + (vd >= 0).float(), lo, hi)
    q0 = codes[wname]
    report[wname] = {
        "mseNearest": mse_nearest, "mseAdaRound": mse(vd), "flipped": float((q != q0).float().mean()),
        "codesAgree": float((q.flatten() == torch.tensor(codes_ql[wname], dtype=torch.float32)).float().mean()),
        "seconds": time.time() - t0,
    }
    codes[wname] = q
    print(json.dumps({"layer": layer["node"], **report[wname]}), file=sys.stderr, flush=True)
seconds = time.time() - t_all
out = {"nearest": accuracy(nearest_weights), "adaround": accuracy({w: from_codes(w, q) for w, q in codes.items()}),
       "seconds": seconds, "layers": report}
print(json.dumps(out), flush=True)
