#!/usr/bin/python3
"""Peer for onnx_ptq_bench.ts: PyTorch float32 inference of the residual network architecture (ResNet-8 as in
tests/fixtures/make_onnx_models.py, with the stage widths given by the job; weights are seeded random: timing does
not depend on their values).

Reads a JSON job {batch, threads, channels: [c1, c2, c3]} on stdin, prints {"torch float32": median ms} on stdout.
"""
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
from make_onnx_models import Block  # noqa: E402


class ResNet8(nn.Module):
    def __init__(self, c1, c2, c3):
        super().__init__()
        self.conv = nn.Conv2d(1, c1, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(c1)
        self.layer1 = Block(c1, c1, 1)
        self.layer2 = Block(c1, c2, 2)
        self.layer3 = Block(c2, c3, 2)
        self.fc = nn.Linear(c3, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


job = json.load(sys.stdin)
torch.set_num_threads(job["threads"])
torch.manual_seed(0)
net = ResNet8(*job.get("channels", [8, 16, 32])).eval()
x = torch.randn(job["batch"], 1, 28, 28, generator=torch.Generator().manual_seed(0))
times = []
with torch.no_grad():
    for i in range(20):
        t0 = time.perf_counter()
        net(x)
        times.append((time.perf_counter() - t0) * 1000)
times = sorted(times[3:])
print(json.dumps({"torch float32": times[len(times) // 2]}))
