#!/usr/bin/python3
"""Write the small ONNX models the tests of worker/onnxworker (and the hub's
layout decoders) load: `make onnx-models` runs this with Debian's python3-onnx
(1.12) and the files it writes are committed beside it.

Each model has exactly the signature of a stock export, so that the worker and
the hub treat it like the real thing, but computes a simple, documented function
of its input from constants, so that a test can work out the expected output
tensors on its own. The constants are written beside each model as JSON
(<model>.json, flattened row-major).

yolo-seg.onnx (Ultralytics YOLOv8/YOLO11 -seg export, imgsz 64, 3 classes):
    input  images  FP32 [batch, 3, 64, 64]   (batch dynamic)
    output output0 FP32 [batch, 39, 84]      4 box + 3 class + 32 coefficient rows, 84 anchors
    output output1 FP32 [batch, 32, 16, 16]  mask prototypes
  with, per image b,
    mean[b, c]        = mean of images[b, c, :, :]                    (c = 0..2)
    output0[b]        = sum_c mean[b, c] * W0[c] + C0                 (W0 [3, 39, 84], C0 [39, 84])
    pool[b, y, x]     = mean of images[b, :, 4y..4y+3, 4x..4x+3]     (16 x 16)
    output1[b, j]     = pool[b] * Q[j] + P[j]                         (Q [32], P [32, 16, 16])
  The constants make three detections: anchors 0, 1 and 2 (anchor 2 overlaps
  anchor 0, for NMS) score 0.3 + 0.6 * mean of channel k for class k on their
  class, 0.01 elsewhere, and every other anchor scores 0.01. Their mask
  coefficients pick prototype 0, 1 or 2, which is +1 inside that anchor's box
  (in prototype pixels) and -1 outside, times 6. The ONNX file carries
  Ultralytics' metadata_props (names, imgsz, stride, task, batch).
yolo-seg-b1.onnx: the same with the batch fixed at 1 (an export without
  dynamic=True), input [1, 3, 64, 64].
yolo-seg-dynamic.onnx: the same declared as a dynamic=True export declares
  it, images [batch, 3, height, width], output0 [batch, 39, anchors], output1
  [batch, 32, mask_height, mask_width]; it still only computes at 64 x 64 (P is
  16 x 16), so any other size makes ONNX Runtime fail at run time, as a real
  model does on a size its graph cannot take. (ONNX Runtime's metadata shows
  output1 as [batch, 32, 16, 16]: it works the sides out from P.)
yolo-seg-640.onnx: an export as `yolo export model=yolo11n-seg.pt format=onnx`
  leaves it (imgsz 640, batch fixed at 1, the 80 COCO classes), computed from a
  few constants so that the file stays small:
    input  images  FP32 [1, 3, 640, 640]
    output output0 FP32 [1, 116, 8400]       4 box + 80 class + 32 coefficient rows
    output output1 FP32 [1, 32, 160, 160]
  with
    output0[0, :, 0:3] = sum_c mean[c] * W0s[c] + C0s        (W0s [3, 116, 3], C0s [116, 3])
    output0[0, :, 3:]  = BG, the same column for every other anchor  (BG [116])
    output1[0, j]      = pool * Q + nearest 8x upsampling of Ps[j]   (Ps [32, 20, 20])
  Anchors 0 and 2 (overlapping, for NMS) are person (class 0), anchor 1 car
  (class 2), scoring 0.3 + 0.6 * the mean of channel 0, 1 and 0; their
  coefficients pick prototype 0, 1 or 2, +1 inside the anchor's box (on the
  20 x 20 grid) and -1 outside, times 6; BG scores 0.01 for every class. The
  metadata_props are Ultralytics' (names as "{0: 'person', 1: 'bicycle', ...}").
  The constants are written to yolo-seg-640.json.
maskrcnn.onnx (torchvision Mask R-CNN export):
    input  image  FP32 [3, H, W]           (H, W dynamic)
    output boxes  FP32 [N, 4]
    output labels INT64 [N]
    output scores FP32 [N]
    output masks  FP32 [N, 1, H, W]
  with three candidates n = 0..2, one per channel:
    score[n]   = mean of image[n] * SA[n] + SB[n]             (SA, SB [3])
    box[n]     = BN[n] * [W, H, W, H]                          (BN [3, 4], normalised x1 y1 x2 y2)
    label[n]   = L[n]                                          (L = [1, 2, 3], of maskrcnn-labels.txt)
    mask[n, 0] = image[n] * MA + MB                            (MA, MB scalars)
  of which the outputs keep, in order, those with score[n] > T, so N (0 to 3)
  depends on the input as in the real export: an all-black image gives N = 0.
  maskrcnn-labels.txt (written by hand) names its classes 1 to 3.

sam-encoder.onnx (a SAM image encoder, as the common exports of
  segment-anything's image_encoder take it: the pre-processed image):
    input  image            FP32 [1, 3, 1024, 1024]  resized, normalised, padded
    output image_embeddings FP32 [1, 256, 64, 64]
  with image_embeddings[0, c, y, x] = mean of image[0, c % 3, 16y..16y+15,
  16x..16x+15] (an average pool and a 1 x 1 convolution of 0/1 weights).
sam-decoder.onnx (segment-anything's scripts/export_onnx_model.py, with
  exactly its inputs and outputs; --return-single-mask):
    input  image_embeddings FP32 [1, 256, 64, 64]
    input  point_coords     FP32 [1, num_points, 2]   in the 1024-resized frame
    input  point_labels     FP32 [1, num_points]
    input  mask_input       FP32 [1, 1, 256, 256]
    input  has_mask_input   FP32 [1]
    input  orig_im_size     FP32 [2]                  height, width
    output masks            FP32 [1, 1, H, W]         logits at orig_im_size
    output iou_predictions  FP32 [1, 1]
    output low_res_masks    FP32 [1, 1, 256, 256]
  with s = max(orig_im_size) / 1024, (px, py) = point_coords[0, 0] * s (the
  first point back in the original frame), l0 = point_labels[0, 0]:
    masks[0, 0, y, x]     = 200 + 100 * l0 - ((x + 0.5 - px)^2 + (y + 0.5 - py)^2)
    iou_predictions[0, 0] = sigmoid(0.1 * sum(point_labels) + has_mask_input[0]
                                    + mean(image_embeddings) + mean(mask_input) / 16)
    low_res_masks         = mask_input
  so the mask is a disc round the first point (radius sqrt(300) px for an
  object click, sqrt(400) for a box's first corner) and the score shows the
  padding point, the mask input and the embedding reached the decoder.
  sam-decoder-multimask.onnx: the same exported without --return-single-mask,
  masks [1, 4, H, W] and iou_predictions [1, 4]: mask k is the disc with
  radius² + MO[k] (MO = 0, -100, 100, -150), scored iou · MS[k] (MS = 0.5,
  0.25, 1, 0.75), so the best-scored mask is the third.
Opset 17 and IR version 8, which ONNX Runtime 1.24 loads.
"""

import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
HERE = os.path.dirname(os.path.abspath(__file__))

S = 64  # input side
NC = 3  # classes
NM = 32  # mask coefficients
A = (S // 8) ** 2 + (S // 16) ** 2 + (S // 32) ** 2  # anchors at strides 8, 16, 32: 84
P4 = S // 4  # prototype side
NAMES = ["person", "car", "dog"]


def const(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def yolo_constants():
    rng = np.random.default_rng(13)
    c0 = np.zeros((4 + NC + NM, A), np.float32)
    # Boxes (cx, cy, w, h in input pixels): small boxes on a grid for the
    # background anchors, three real detections first.
    for a in range(A):
        c0[0:4, a] = [4 + (a % 8) * 8, 4 + (a // 8) % 8 * 8, 4, 4]
    c0[0:4, 0] = [20, 20, 16, 16]
    c0[0:4, 1] = [44, 40, 20, 24]
    c0[0:4, 2] = [22, 21, 16, 16]
    c0[4 : 4 + NC, :] = 0.01
    w0 = np.zeros((3, 4 + NC + NM, A), np.float32)
    for a, k in [(0, 0), (1, 1), (2, 0)]:
        c0[4 + k, a] = 0.3
        w0[k, 4 + k, a] = 0.6
    # Coefficients: background anchors small noise, detection a picks
    # prototype a.
    c0[4 + NC :, :] = rng.normal(0, 0.1, (NM, A)).astype(np.float32)
    for a in range(3):
        c0[4 + NC :, a] = 0
        c0[4 + NC + a, a] = 6
    p = rng.normal(0, 0.5, (NM, P4, P4)).astype(np.float32)
    for j in range(3):
        cx, cy, w, h = c0[0:4, j] / 4
        ys, xs = np.mgrid[0:P4, 0:P4] + 0.5
        inside = (abs(xs - cx) <= w / 2) & (abs(ys - cy) <= h / 2)
        p[j] = np.where(inside, 1.0, -1.0)
    q = np.full((NM,), 0.25, np.float32)
    return w0, c0, q, p


def yolo(batch, hw=(S, S), anchors=A, proto_hw=(P4, P4)):
    w0, c0, q, p = yolo_constants()
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["mean", "W0"], ["o0flat"]),
        helper.make_node("Add", ["o0flat", "C0"], ["o0sum"]),
        helper.make_node("Reshape", ["o0sum", "o0shape"], ["output0"]),
        helper.make_node("ReduceMean", ["images"], ["gray"], axes=[1], keepdims=1),
        helper.make_node("AveragePool", ["gray"], ["pool"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Mul", ["pool", "Q"], ["o1mul"]),
        helper.make_node("Add", ["o1mul", "P"], ["output1"]),
    ]
    inits = [
        const("W0", w0.reshape(3, -1)),
        const("C0", c0.reshape(-1)),
        const("o0shape", np.array([-1, 4 + NC + NM, A], np.int64)),
        const("Q", q.reshape(1, NM, 1, 1)),
        const("P", p.reshape(1, NM, P4, P4)),
    ]
    graph = helper.make_graph(
        nodes,
        "main_graph",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, *hw])],
        [
            helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, 4 + NC + NM, anchors]),
            helper.make_tensor_value_info("output1", TensorProto.FLOAT, [batch, NM, *proto_hw]),
        ],
        inits,
    )
    model = finish(graph, "pytorch")
    names = "{" + ", ".join(f"{i}: {n!r}" for i, n in enumerate(NAMES)) + "}"
    onnx.helper.set_model_props(
        model,
        {
            "description": "imagehub test model in the shape of an Ultralytics YOLO-seg export",
            "author": "Deep Images Hub testdata/onnx/generate.py",
            "task": "segment",
            "stride": "32",
            "batch": "1" if batch == 1 else "-1",
            "imgsz": f"[{S}, {S}]",
            "names": names,
        },
    )
    spec = {
        "W0": w0.reshape(-1).tolist(),
        "C0": c0.reshape(-1).tolist(),
        "Q": q.tolist(),
        "P": p.reshape(-1).tolist(),
        "names": NAMES,
    }
    return model, spec


COCO = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
]


def yolo640():
    s, nc, grid = 640, len(COCO), 20  # grid: the prototypes before their 8x upsampling
    a = (s // 8) ** 2 + (s // 16) ** 2 + (s // 32) ** 2  # 8400
    rows = 4 + nc + NM
    rng = np.random.default_rng(640)
    c0 = np.zeros((rows, 3), np.float32)
    c0[0:4, 0] = [200, 200, 160, 160]
    c0[0:4, 1] = [440, 400, 200, 240]
    c0[0:4, 2] = [220, 210, 160, 160]
    c0[4 : 4 + nc, :] = 0.01
    w0 = np.zeros((3, rows, 3), np.float32)
    for anchor, cls, chan in [(0, 0, 0), (1, 2, 1), (2, 0, 0)]:
        c0[4 + cls, anchor] = 0.3
        w0[chan, 4 + cls, anchor] = 0.6
        c0[4 + nc + anchor, anchor] = 6
    bg = np.zeros((rows,), np.float32)
    bg[0:4] = [4, 4, 4, 4]
    bg[4 : 4 + nc] = 0.01
    ps = rng.normal(0, 0.5, (NM, grid, grid)).astype(np.float32)
    for j in range(3):
        cx, cy, w, h = c0[0:4, j] / (s / grid)
        ys, xs = np.mgrid[0:grid, 0:grid] + 0.5
        inside = (abs(xs - cx) <= w / 2) & (abs(ys - cy) <= h / 2)
        ps[j] = np.where(inside, 1.0, -1.0)
    q = np.full((NM,), 0.25, np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["mean", "W0s"], ["detflat"]),
        helper.make_node("Add", ["detflat", "C0s"], ["detsum"]),
        helper.make_node("Reshape", ["detsum", "detshape"], ["det"]),
        helper.make_node("Expand", ["BG", "bgshape"], ["bg"]),
        helper.make_node("Concat", ["det", "bg"], ["output0"], axis=2),
        helper.make_node("ReduceMean", ["images"], ["gray"], axes=[1], keepdims=1),
        helper.make_node("AveragePool", ["gray"], ["pool"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Mul", ["pool", "Q"], ["o1mul"]),
        helper.make_node(
            "Resize", ["Ps", "", "scales"], ["protos"], mode="nearest",
            coordinate_transformation_mode="asymmetric", nearest_mode="floor",
        ),
        helper.make_node("Add", ["o1mul", "protos"], ["output1"]),
    ]
    inits = [
        const("W0s", w0.reshape(3, -1)),
        const("C0s", c0.reshape(-1)),
        const("detshape", np.array([1, rows, 3], np.int64)),
        const("BG", bg.reshape(1, rows, 1)),
        const("bgshape", np.array([1, rows, a - 3], np.int64)),
        const("Q", q.reshape(1, NM, 1, 1)),
        const("Ps", ps.reshape(1, NM, grid, grid)),
        const("scales", np.array([1, 1, 8, 8], np.float32)),
    ]
    graph = helper.make_graph(
        nodes,
        "main_graph",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, s, s])],
        [
            helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, rows, a]),
            helper.make_tensor_value_info("output1", TensorProto.FLOAT, [1, NM, s // 4, s // 4]),
        ],
        inits,
    )
    model = finish(graph, "pytorch")
    names = "{" + ", ".join(f"{i}: {n!r}" for i, n in enumerate(COCO)) + "}"
    onnx.helper.set_model_props(
        model,
        {
            "description": "imagehub test model in the shape of Ultralytics YOLO11n-seg's default ONNX export",
            "author": "Deep Images Hub testdata/onnx/generate.py",
            "task": "segment",
            "stride": "32",
            "batch": "1",
            "imgsz": f"[{s}, {s}]",
            "names": names,
        },
    )
    spec = {
        "W0s": w0.reshape(-1).tolist(),
        "C0s": c0.reshape(-1).tolist(),
        "BG": bg.tolist(),
        "Q": q.tolist(),
        "Ps": ps.reshape(-1).tolist(),
        "names": COCO,
    }
    return model, spec


def maskrcnn():
    bn = np.array([[0.1, 0.2, 0.5, 0.6], [0.4, 0.1, 0.9, 0.5], [0.0, 0.5, 0.3, 1.0]], np.float32)
    # torchvision's labels count from 1 (0 is the background): 1, 2 and 3
    # are maskrcnn-labels.txt's person, car and dog.
    labels = np.array([1, 2, 3], np.int64)
    sa = np.array([0.5, 0.4, 0.6], np.float32)
    sb = np.array([0.3, 0.3, 0.05], np.float32)
    t = np.float32(0.35)
    ma, mb = np.float32(0.8), np.float32(0.1)
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1, 2], keepdims=0),
        helper.make_node("Mul", ["mean", "SA"], ["smul"]),
        helper.make_node("Add", ["smul", "SB"], ["all_scores"]),
        helper.make_node("Greater", ["all_scores", "T"], ["keep_mask"]),
        helper.make_node("NonZero", ["keep_mask"], ["keep_2d"]),
        helper.make_node("Squeeze", ["keep_2d", "axis0"], ["keep"]),
        helper.make_node("Gather", ["all_scores", "keep"], ["scores"], axis=0),
        helper.make_node("Shape", ["image"], ["shape"]),
        helper.make_node("Gather", ["shape", "hw_index"], ["whwh_int"], axis=0),
        helper.make_node("Cast", ["whwh_int"], ["whwh"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["BN", "whwh"], ["all_boxes"]),
        helper.make_node("Gather", ["all_boxes", "keep"], ["boxes"], axis=0),
        helper.make_node("Gather", ["L", "keep"], ["labels"], axis=0),
        helper.make_node("Unsqueeze", ["image", "axis1"], ["chan"]),
        helper.make_node("Mul", ["chan", "MA"], ["mmul"]),
        helper.make_node("Add", ["mmul", "MB"], ["all_masks"]),
        helper.make_node("Gather", ["all_masks", "keep"], ["masks"], axis=0),
    ]
    inits = [
        const("hw_index", np.array([2, 1, 2, 1], np.int64)),
        const("BN", bn),
        const("L", labels),
        const("SA", sa),
        const("SB", sb),
        const("T", np.array(t, np.float32)),
        const("axis0", np.array([0], np.int64)),
        const("axis1", np.array([1], np.int64)),
        const("MA", np.array(ma, np.float32)),
        const("MB", np.array(mb, np.float32)),
    ]
    graph = helper.make_graph(
        nodes,
        "torch_jit",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [3, "height", "width"])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("labels", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info("masks", TensorProto.FLOAT, ["N", 1, "height", "width"]),
        ],
        inits,
    )
    model = finish(graph, "pytorch")
    spec = {
        "BN": bn.reshape(-1).tolist(),
        "L": labels.tolist(),
        "SA": sa.tolist(),
        "SB": sb.tolist(),
        "T": float(t),
        "MA": float(ma),
        "MB": float(mb),
    }
    return model, spec


# sam-decoder-multimask.onnx: mask k's radius² offsets and score factors.
SAM_MO = [0, -100, 100, -150]
SAM_MS = [0.5, 0.25, 1, 0.75]


def sam_encoder():
    w = np.zeros((256, 3, 1, 1), np.float32)
    for c in range(256):
        w[c, c % 3, 0, 0] = 1
    nodes = [
        helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[16, 16], strides=[16, 16]),
        helper.make_node("Conv", ["pooled", "W"], ["image_embeddings"]),
    ]
    graph = helper.make_graph(
        nodes,
        "sam_image_encoder",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 1024, 1024])],
        [helper.make_tensor_value_info("image_embeddings", TensorProto.FLOAT, [1, 256, 64, 64])],
        [const("W", w)],
    )
    return finish(graph, "imagehub-testdata"), None


def sam_decoder(multimask=False):
    f = lambda v: np.array(v, np.float32)
    i = lambda v: np.array(v, np.int64)
    nodes = [
        # The original size, as int64 sides for the pixel grid.
        helper.make_node("Cast", ["orig_im_size"], ["hw"], to=TensorProto.INT64),
        helper.make_node("Gather", ["hw", "zero"], ["H"], axis=0),
        helper.make_node("Gather", ["hw", "one"], ["W"], axis=0),
        helper.make_node("ReduceMax", ["orig_im_size"], ["long"], keepdims=0),
        helper.make_node("Div", ["long", "side"], ["s"]),
        # The first point back in the original frame.
        helper.make_node("Gather", ["point_coords", "zero"], ["p0"], axis=1),  # [1, 2]
        helper.make_node("Gather", ["p0", "zero"], ["x0"], axis=1),  # [1]
        helper.make_node("Gather", ["p0", "one"], ["y0"], axis=1),
        helper.make_node("Mul", ["x0", "s"], ["px"]),
        helper.make_node("Mul", ["y0", "s"], ["py"]),
        helper.make_node("Range", ["zero", "H", "one"], ["ys"]),
        helper.make_node("Range", ["zero", "W", "one"], ["xs"]),
        helper.make_node("Cast", ["ys"], ["ysf"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["xs"], ["xsf"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["ysf", "half"], ["yc"]),
        helper.make_node("Add", ["xsf", "half"], ["xc"]),
        helper.make_node("Sub", ["yc", "py"], ["dy"]),
        helper.make_node("Sub", ["xc", "px"], ["dx"]),
        helper.make_node("Mul", ["dy", "dy"], ["dy2"]),
        helper.make_node("Mul", ["dx", "dx"], ["dx2"]),
        helper.make_node("Unsqueeze", ["dy2", "col"], ["dy2c"]),  # [H, 1]
        helper.make_node("Add", ["dy2c", "dx2"], ["d2"]),  # [H, W]
        helper.make_node("Gather", ["point_labels", "zero"], ["l0"], axis=1),  # [1]
        helper.make_node("Mul", ["l0", "hundred"], ["l100"]),
        helper.make_node("Add", ["l100", "base"], ["r2"]),
        helper.make_node("Sub", ["r2", "d2"], ["logits"]),
        helper.make_node("Unsqueeze", ["logits", "lead"], ["masks1"]),  # [1, 1, H, W]
        # The score.
        helper.make_node("ReduceSum", ["point_labels"], ["lsum"], keepdims=0),
        helper.make_node("Mul", ["lsum", "tenth"], ["lpart"]),
        helper.make_node("ReduceMean", ["image_embeddings"], ["emean"], keepdims=0),
        helper.make_node("ReduceMean", ["mask_input"], ["mmean"], keepdims=0),
        helper.make_node("Div", ["mmean", "sixteen"], ["mpart"]),
        helper.make_node("Add", ["lpart", "emean"], ["t1"]),
        helper.make_node("Add", ["t1", "mpart"], ["t2"]),
        helper.make_node("Add", ["t2", "has_mask_input"], ["t3"]),  # [1]
        helper.make_node("Sigmoid", ["t3"], ["sig"]),
        helper.make_node("Unsqueeze", ["sig", "zero1"], ["iou1"]),  # [1, 1]
        helper.make_node("Identity", ["mask_input"], ["low_res_masks1"]),
    ]
    m = 1
    if multimask:
        # Four masks: the disc with radius² + MO[k], scored sigmoid · MS[k].
        m = 4
        nodes += [
            helper.make_node("Add", ["masks1", "MO"], ["masks"]),  # [1, 4, H, W]
            helper.make_node("Mul", ["iou1", "MS"], ["iou_predictions"]),  # [1, 4]
            helper.make_node("Concat", ["low_res_masks1"] * 4, ["low_res_masks"], axis=1),
        ]
    else:
        nodes += [
            helper.make_node("Identity", ["masks1"], ["masks"]),
            helper.make_node("Identity", ["iou1"], ["iou_predictions"]),
            helper.make_node("Identity", ["low_res_masks1"], ["low_res_masks"]),
        ]
    inits = [
        const("zero", i(0)),
        const("one", i(1)),
        const("side", f(1024)),
        const("half", f(0.5)),
        const("hundred", f(100)),
        const("base", f(200)),
        const("tenth", f(0.1)),
        const("sixteen", f(16)),
        const("col", i([1])),
        const("lead", i([0, 1])),
        const("zero1", i([0])),
    ]
    if multimask:
        inits += [const("MO", f(SAM_MO).reshape(1, 4, 1, 1)), const("MS", f(SAM_MS).reshape(1, 4))]
    fl = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "sam_mask_decoder",
        [
            helper.make_tensor_value_info("image_embeddings", fl, [1, 256, 64, 64]),
            helper.make_tensor_value_info("point_coords", fl, [1, "num_points", 2]),
            helper.make_tensor_value_info("point_labels", fl, [1, "num_points"]),
            helper.make_tensor_value_info("mask_input", fl, [1, 1, 256, 256]),
            helper.make_tensor_value_info("has_mask_input", fl, [1]),
            helper.make_tensor_value_info("orig_im_size", fl, [2]),
        ],
        [
            helper.make_tensor_value_info("masks", fl, [1, m, "height", "width"]),
            helper.make_tensor_value_info("iou_predictions", fl, [1, m]),
            helper.make_tensor_value_info("low_res_masks", fl, [1, m, 256, 256]),
        ],
        inits,
    )
    return finish(graph, "imagehub-testdata"), None


def finish(graph, producer):
    model = helper.make_model(graph, producer_name=producer, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def write(name, model, spec):
    onnx.save(model, os.path.join(HERE, name + ".onnx"))
    if spec is None:
        print(f"wrote testdata/onnx/{name}.onnx", file=sys.stderr)
        return
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        # Each float32 exactly, as the float64 it widens to.
        json.dump(spec, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote testdata/onnx/{name}.onnx and {name}.json", file=sys.stderr)


if __name__ == "__main__":
    write("yolo-seg", *yolo("batch"))
    write("yolo-seg-b1", yolo(1)[0], None)  # constants as yolo-seg.json
    # Ultralytics' own names for the dynamic axes.
    write("yolo-seg-dynamic", yolo("batch", ("height", "width"), "anchors", ("mask_height", "mask_width"))[0], None)
    write("yolo-seg-640", *yolo640())
    write("maskrcnn", *maskrcnn())
    write("sam-encoder", *sam_encoder())
    write("sam-decoder", *sam_decoder())
    write("sam-decoder-multimask", *sam_decoder(True))
