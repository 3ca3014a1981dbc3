#!/usr/bin/python3
"""Peer timings for benchmarks/grad_conv_peer.ts: one 3x3 conv layer (N x 32 x 14 x 14 -> 64, pad 1, bias),
forward and forward+backward (dX, dW, dB with upstream gradient R) in PyTorch on the same inputs.

Reads {"x": <float32 file>, "w": ..., "b": ..., "r": ..., "n": N, "threads": t, "iterations": k} on stdin;
prints {name: median ms}.
"""
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from peer_timing import median_ms as _median_ms  # noqa: E402


def median_ms(fn):
    return _median_ms(fn, iters)


job = json.load(sys.stdin)
torch.set_num_threads(int(job["threads"]))
n = int(job["n"])
iters = int(job.get("iterations", 7))


def load(k, shape):
    return torch.from_numpy(np.fromfile(job[k], dtype=np.float32).reshape(shape))


x = load("x", (n, 32, 14, 14)).requires_grad_(True)
w = load("w", (64, 32, 3, 3)).requires_grad_(True)
b = load("b", (64,)).requires_grad_(True)
r = load("r", (n, 64, 14, 14))


def fwd():
    with torch.no_grad():
        F.conv2d(x, w, b, padding=1)


def fwd_bwd():
    x.grad = w.grad = b.grad = None
    y = F.conv2d(x, w, b, padding=1)
    y.backward(r)


fwd_bwd()
out = {"forward": median_ms(fwd), "forward_backward": median_ms(fwd_bwd),
       "dw_sum": float(w.grad.double().sum()), "dx_sum": float(x.grad.double().sum())}
print(json.dumps(out))
