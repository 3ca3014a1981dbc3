#!/usr/bin/python3
"""PyTorch side of benchmarks/integer_peer.ts (run by it; Debian's /usr/bin/python3, torch 1.13 CPU).

Reads a JSON job on stdin with paths of raw int8/uint8 inputs written by the TypeScript side, the sizes and
the quantization parameters; times on one thread, engine QNNPACK (FBGEMM is not in Debian's torch; oneDNN
rejects these convolutions):
  - linear_prepacked / conv_prepacked: torch.ops.quantized.linear / conv2d with weights packed once
  - linear_functional / conv_functional: torch.ao.nn.quantized.functional.linear / conv2d (packs every call)
Writes torch's output codes next to the inputs and prints {"name": ms, ...} (medians).
"""
import json
import sys
import time

import numpy as np
import torch
import torch.ao.nn.quantized.functional as qF
from peer_timing import median_ms as _median_ms  # noqa: E402


def median_ms(fn):
    return _median_ms(fn, job["iterations"], job["warmup"])


torch.set_num_threads(1)
torch.backends.quantized.engine = "qnnpack"
job = json.load(sys.stdin)


def load(path, dtype, shape):
    return torch.from_numpy(np.fromfile(path, dtype=dtype).reshape(shape).copy())


out = {"torch": torch.__version__, "engine": torch.backends.quantized.engine, "threads": torch.get_num_threads()}

g = job["gemm"]
qa = torch._make_per_tensor_quantized_tensor(load(g["a"], np.uint8, (g["m"], g["k"])), g["aScale"], g["aZeroPoint"])
qb = torch._make_per_tensor_quantized_tensor(load(g["b"], np.int8, (g["n"], g["k"])), g["bScale"], 0)
lin_bias = torch.zeros(g["n"])
lin_packed = torch.ops.quantized.linear_prepack(qb, lin_bias)
out["linear_prepacked"] = median_ms(lambda: torch.ops.quantized.linear(qa, lin_packed, g["yScale"], g["yZeroPoint"]))
out["linear_functional"] = median_ms(lambda: qF.linear(qa, qb, lin_bias, g["yScale"], g["yZeroPoint"]))
y = torch.ops.quantized.linear(qa, lin_packed, g["yScale"], g["yZeroPoint"])
y.int_repr().numpy().astype(np.uint8).tofile(g["out"])

c = job["conv"]
qx = torch._make_per_tensor_quantized_tensor(load(c["x"], np.uint8, c["xShape"]), c["xScale"], c["xZeroPoint"])
qw = torch._make_per_channel_quantized_tensor(
    load(c["w"], np.int8, c["wShape"]), torch.tensor(c["wScale"], dtype=torch.float64),
    torch.zeros(c["wShape"][0], dtype=torch.long), 0)
sx = c["xScale"]
conv_bias = torch.tensor([b * np.float32(sx * s) for b, s in zip(c["bias"], c["wScale"])], dtype=torch.float32)
pad = (c["pad"], c["pad"])
conv_packed = torch.ops.quantized.conv2d_prepack(qw, conv_bias, (1, 1), pad, (1, 1), 1)
out["conv_prepacked"] = median_ms(lambda: torch.ops.quantized.conv2d(qx, conv_packed, c["yScale"], c["yZeroPoint"]))
out["conv_functional"] = median_ms(
    lambda: qF.conv2d(qx, qw, conv_bias, padding=pad, scale=c["yScale"], zero_point=c["yZeroPoint"]))
y = torch.ops.quantized.conv2d(qx, conv_packed, c["yScale"], c["yZeroPoint"])
y.int_repr().numpy().astype(np.uint8).tofile(c["out"])

print(json.dumps(out))
