#!/usr/bin/python3
"""Peer for onnx_ptq_bench.ts: PyTorch float32 inference of the residual fixture (weights read from the ONNX file).

Reads a JSON job {model, batch, threads} on stdin, prints {"torch float32": median ms} on stdout.
"""
import json
import os
import sys
import time

import onnx
import onnx.numpy_helper
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
from make_onnx_models import ResNet8  # noqa: E402

job = json.load(sys.stdin)
torch.set_num_threads(job["threads"])
m = onnx.load(job["model"])
state = {t.name: torch.from_numpy(onnx.numpy_helper.to_array(t).copy()) for t in m.graph.initializer}
net = ResNet8()
sd = net.state_dict()
for k in sd:
    if k in state:
        sd[k] = state[k]
    elif k.endswith("num_batches_tracked"):
        pass
    else:  # deduplicated by the exporter (Identity of an equal tensor): zero biases
        sd[k] = torch.zeros_like(sd[k]) if "bias" in k else sd[k]
net.load_state_dict(sd)
net.eval()
x = torch.randn(job["batch"], 1, 28, 28, generator=torch.Generator().manual_seed(0))
times = []
with torch.no_grad():
    for i in range(20):
        t0 = time.perf_counter()
        net(x)
        times.append((time.perf_counter() - t0) * 1000)
times = sorted(times[3:])
print(json.dumps({"torch float32": times[len(times) // 2]}))
