"""Models for benchmarks/nchwc_conv_probe.ts: one 3x3 conv (pad 1) with its weight as a graph INPUT (as in a training
step), once as a plain ONNX Conv and once through ONNX Runtime's NCHWc kernels (com.microsoft.nchwc ReorderInput ->
Conv -> ReorderOutput) with the weight reordered inside the graph (Reshape + Transpose to MLAS's OIHWBiBo layout,
block 16 for AVX-512). Usage: /usr/bin/python3 benchmarks/nchwc_conv_probe.py OUT_DIR [BLOCK]"""
import sys
import onnx
import onnx.numpy_helper
from onnx import helper as h, TensorProto as T
import numpy as np
def model(C, O, N=128, HW=28, nchwc=True):
    X = h.make_tensor_value_info("X", T.FLOAT, [N, C, HW, HW])
    W = h.make_tensor_value_info("W", T.FLOAT, [O, C, 3, 3])
    Y = h.make_tensor_value_info("Y", T.FLOAT, [N, O, HW, HW])
    nodes, inits = [], []
    if not nchwc:
        nodes.append(h.make_node("Conv", ["X", "W"], ["Y"], pads=[1,1,1,1]))
    else:
        B = BLOCK
        inits.append(onnx.numpy_helper.from_array(np.array([O//B, B, C//B, B, 3, 3], np.int64), "s6"))
        inits.append(onnx.numpy_helper.from_array(np.array([O, C, 3, 3], np.int64), "s4"))
        nodes += [h.make_node("Reshape", ["W", "s6"], ["w6"]),
                  h.make_node("Transpose", ["w6"], ["w6t"], perm=[0, 2, 4, 5, 3, 1]),
                  h.make_node("Reshape", ["w6t", "s4"], ["wr"]),
                  h.make_node("ReorderInput", ["X"], ["xr"], domain="com.microsoft.nchwc"),
                  h.make_node("Conv", ["xr", "wr"], ["yr"], domain="com.microsoft.nchwc", pads=[1,1,1,1], kernel_shape=[3,3]),
                  h.make_node("ReorderOutput", ["yr"], ["Y"], domain="com.microsoft.nchwc", channels=O)]
    g = h.make_graph(nodes, "g", [X, W], [Y], initializer=inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17), h.make_opsetid("com.microsoft.nchwc", 1)])
    m.ir_version = 8
    return m
OUT = sys.argv[1]
BLOCK = int(sys.argv[2]) if len(sys.argv) > 2 else 16
for C, O in [(16, 16), (32, 32), (64, 64)]:
    onnx.save(model(C, O, nchwc=False), f"{OUT}/conv_{C}.onnx")
    onnx.save(model(C, O, nchwc=True), f"{OUT}/nchwc_{C}.onnx")
