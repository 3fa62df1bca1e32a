#!/usr/bin/env python3
"""Run a model written by `backprop export` with onnxruntime and compare it with backprop.

Usage: check_onnx.py MODEL.onnx INPUT.bin --shape N,D1[,D2...] --dtype uint8|float32
                     EXPECTED.f32 [--labels LABELS.u8] [--atol 1e-5]

INPUT.bin holds the raw inputs (little-endian, batch first), EXPECTED.f32 the outputs
backprop computed for them (float32, N rows). Prints one JSON object:
  max_abs_diff     largest |onnxruntime - backprop| over all outputs
  argmax_mismatch  rows whose largest output differs (classifiers)
  correct          rows whose argmax equals the label (with --labels)
  batch_of_one     max |diff| of row 0 run alone against row 0 of the batch (dynamic N)
  row_sum_error    max |sum(row) - 1| for softmax `probabilities`
and exits 1 if a check fails (max_abs_diff > atol, any argmax mismatch, wrong input type).
"""
import argparse
import json
import sys

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("input")
    ap.add_argument("expected")
    ap.add_argument("--shape", required=True)
    ap.add_argument("--dtype", choices=["uint8", "float32"], required=True)
    ap.add_argument("--labels")
    ap.add_argument("--atol", type=float, default=1e-5)
    args = ap.parse_args()

    shape = tuple(int(d) for d in args.shape.split(","))
    x = np.fromfile(args.input, dtype=np.dtype(args.dtype).newbyteorder("<")).reshape(shape)
    sess = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    want_type = "tensor(uint8)" if args.dtype == "uint8" else "tensor(float)"
    problems = []
    if inp.name != "input" or inp.type != want_type or isinstance(inp.shape[0], int):
        problems.append(f"input is {inp.name} {inp.type} {inp.shape}")
    if list(inp.shape[1:]) != list(shape[1:]):
        problems.append(f"input sample shape {inp.shape[1:]}, data has {shape[1:]}")

    (got,) = sess.run([out.name], {"input": x})
    expected = np.fromfile(args.expected, dtype="<f4").reshape(got.shape[0], -1)
    (one,) = sess.run([out.name], {"input": x[:1]})
    report = {
        "output": out.name,
        "rows": int(got.shape[0]),
        "max_abs_diff": float(np.max(np.abs(got.astype(np.float64) - expected))),
        "batch_of_one": float(np.max(np.abs(one[0].astype(np.float64) - got[0]))),
    }
    if got.shape[1] > 1:
        mismatch = np.argmax(got, axis=1) != np.argmax(expected, axis=1)
        report["argmax_mismatch"] = int(mismatch.sum())
        if mismatch.any():
            problems.append(f"argmax differs at rows {np.flatnonzero(mismatch)[:10].tolist()}")
    if args.labels:
        labels = np.fromfile(args.labels, dtype=np.uint8)
        report["correct"] = int((np.argmax(got, axis=1) == labels).sum())
    if out.name == "probabilities" and got.shape[1] > 1:
        report["row_sum_error"] = float(np.max(np.abs(got.sum(axis=1, dtype=np.float64) - 1)))
    if report["max_abs_diff"] > args.atol:
        problems.append(f"max |diff| {report['max_abs_diff']:.3g} > atol {args.atol}")
    report["problems"] = problems
    print(json.dumps(report))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
