"""Tiny ONNX models built with onnx.helper, standing in for user-supplied RTMW / DWPose exports and person
detectors: same input / output contract, trivially predictable outputs, so the loading, pre-processing and
decoding code is tested for real (no weights are downloadable here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def bright_spot_simcc_model(path: Path, input_hw=(256, 192), num_keypoints=133, split_ratio=2) -> Path:
    """A 'pose model' whose SimCC x / y outputs are the column / row means of the normalised input (+3), each
    repeated split_ratio times: every keypoint decodes to the brightest spot of the crop."""
    H, W = input_hw
    K, r = num_keypoints, split_ratio
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, H, W])
    out_x = helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, [1, K, W * r])
    out_y = helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, [1, K, H * r])
    inits = [
        numpy_helper.from_array(np.array([3], np.int64), "axis3"),
        numpy_helper.from_array(np.array([3.0], np.float32), "bias"),
        numpy_helper.from_array(np.array([1, 1, W, r], np.int64), "expand_x"),
        numpy_helper.from_array(np.array([1, 1, H, r], np.int64), "expand_y"),
        numpy_helper.from_array(np.array([1, 1, W * r], np.int64), "shape_x"),
        numpy_helper.from_array(np.array([1, 1, H * r], np.int64), "shape_y"),
        numpy_helper.from_array(np.array([1, K, W * r], np.int64), "kx"),
        numpy_helper.from_array(np.array([1, K, H * r], np.int64), "ky"),
    ]
    nodes = []
    for axis, reduce_axes, expand, shape, kshape, out in (
        ("x", [1, 2], "expand_x", "shape_x", "kx", "simcc_x"),
        ("y", [1, 3], "expand_y", "shape_y", "ky", "simcc_y"),
    ):
        nodes += [
            helper.make_node("ReduceMean", ["input"], [f"m_{axis}"], axes=reduce_axes, keepdims=1),
            helper.make_node("Reshape", [f"m_{axis}", f"flat_{axis}"], [f"f_{axis}"]),
            helper.make_node("Add", [f"f_{axis}", "bias"], [f"b_{axis}"]),
            helper.make_node("Unsqueeze", [f"b_{axis}", "axis3"], [f"u_{axis}"]),
            helper.make_node("Expand", [f"u_{axis}", expand], [f"e_{axis}"]),
            helper.make_node("Reshape", [f"e_{axis}", shape], [f"r_{axis}"]),
            helper.make_node("Expand", [f"r_{axis}", kshape], [out]),
        ]
    inits += [
        numpy_helper.from_array(np.array([1, 1, W], np.int64), "flat_x"),
        numpy_helper.from_array(np.array([1, 1, H], np.int64), "flat_y"),
    ]
    graph = helper.make_graph(nodes, "bright_spot_simcc", [inp], [out_x, out_y], inits)
    return _save(graph, path)


def constant_detector_model(path: Path, dets: np.ndarray, labels: np.ndarray, input_hw=(64, 64)) -> Path:
    """A 'person detector' (mmdeploy end2end outputs dets (1, N, 5), labels (1, N)) that always returns the given
    boxes in input pixels (the input only enters multiplied by zero)."""
    H, W = input_hw
    N = len(dets)
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, H, W])
    out_d = helper.make_tensor_value_info("dets", TensorProto.FLOAT, [1, N, 5])
    out_l = helper.make_tensor_value_info("labels", TensorProto.INT64, [1, N])
    inits = [
        numpy_helper.from_array(np.asarray(dets, np.float32)[None], "const_dets"),
        numpy_helper.from_array(np.asarray(labels, np.int64)[None], "const_labels"),
        numpy_helper.from_array(np.array([0.0], np.float32), "zero"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["const_dets", "z"], ["dets"]),
        helper.make_node("Identity", ["const_labels"], ["labels"]),
    ]
    return _save(helper.make_graph(nodes, "constant_detector", [inp], [out_d, out_l], inits), path)


def wrong_input_model(path: Path) -> Path:
    """A valid ONNX file whose input is not a (1, 3, H, W) image."""
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 10])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, 10])
    return _save(helper.make_graph([helper.make_node("Identity", ["input"], ["out"])], "wrong", [inp], [out]), path)
