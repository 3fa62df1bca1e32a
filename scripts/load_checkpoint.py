#!/usr/bin/env python3
"""Load a backprop checkpoint with safetensors and numpy alone, run the forward pass on an
IDX test set and print the accuracy (classification) or the mean squared error (regression).

    python3 scripts/load_checkpoint.py model.safetensors --data-dir data/mnist

The checkpoint holds `layer{l}.weight` ([inputs, outputs]) and `layer{l}.bias` as float32,
and metadata: `architecture` (JSON: layers with activations, loss) and `input_scaling` (JSON:
byte_scale, mean, std), so that inputs are prepared exactly as in training:
x = (bytes * byte_scale - mean) / std.
"""

import argparse
import gzip
import json
import os
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file


def read_idx(path):
    """An IDX file of unsigned bytes as an array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        sys.exit(f"{path}: not an IDX file of unsigned bytes")
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def find(data_dir, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(data_dir, candidate)
        if os.path.exists(path):
            return path
    sys.exit(f"{data_dir}: neither {name} nor {name}.gz")


def activation(name, slope, z):
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, np.float32(slope) * z)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "identity":
        return z
    if name == "silu":
        return z / (1 + np.exp(-z))
    sys.exit(f"unknown activation {name}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data-dir", required=True, help="folder with t10k-images/labels IDX files")
    args = parser.parse_args()

    tensors = load_file(args.checkpoint)
    with safe_open(args.checkpoint, framework="np") as f:
        meta = f.metadata()
    arch = json.loads(meta["architecture"])
    scaling = json.loads(meta["input_scaling"])

    images = read_idx(find(args.data_dir, "t10k-images-idx3-ubyte"))
    labels = read_idx(find(args.data_dir, "t10k-labels-idx1-ubyte")).astype(np.int64)
    x = images.reshape(len(images), -1).astype(np.float32)
    x = (x * np.float32(scaling["byte_scale"]) - np.float32(scaling["mean"])) / np.float32(scaling["std"])

    a = x
    for l, layer in enumerate(arch["layers"]):
        z = a @ tensors[f"layer{l}.weight"] + tensors[f"layer{l}.bias"]
        act = layer["activation"]
        a = activation(act["kind"], act.get("slope", 0.0), z)

    loss = arch["loss"]
    if loss == "mean_squared_error" and a.shape[1] > 1:
        onehot = np.eye(a.shape[1], dtype=np.float32)[labels]
        print(f"mean squared error {np.mean((a - onehot) ** 2):.6f} on {len(a)} samples")
    if a.shape[1] == 1:
        predicted = (a[:, 0] > (0.0 if loss == "sigmoid_binary_cross_entropy" else 0.5)).astype(np.int64)
    else:
        predicted = a.argmax(axis=1)
    correct = int((predicted == labels).sum())
    print(f"accuracy {100.0 * correct / len(labels):.2f}% ({correct} of {len(labels)}) on {args.data_dir}")


if __name__ == "__main__":
    main()
