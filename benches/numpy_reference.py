#!/usr/bin/env python3
"""Plainly vectorized numpy implementation of what `backprop` trains: the speed baseline.

Same math as the Rust trainer: fully connected layers `Z = X @ W + b` with W of shape
(inputs, outputs), ReLU (MNIST) or tanh (sine) hidden units, an identity output layer with
either fused softmax + cross-entropy or mean squared error, plain SGD (optionally with
PyTorch-style momentum), a fresh permutation every epoch and minibatches gathered by fancy
indexing, the partial last batch included. Every array is in the chosen dtype.

    python3 benches/numpy_reference.py --epochs 3 --batch-size 128 --lr 0.05
    python3 benches/numpy_reference.py --task sine --batch-size 1 --lr 0.01 --json
    python3 benches/numpy_reference.py --self-test
"""

import argparse
import gzip
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
EVAL_CHUNK = 1000


# ----------------------------------------------------------------------------- data

def read_idx(path, expected_dims):
    """An IDX file of unsigned bytes (gzipped or plain) as a uint8 array, magic checked."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic)")
    if raw[2] != 0x08:
        raise ValueError(f"{path}: element type 0x{raw[2]:02x}, expected 0x08 (unsigned byte)")
    dims = raw[3]
    if dims != expected_dims:
        raise ValueError(f"{path}: {dims} dimensions, expected {expected_dims}")
    header = 4 + 4 * dims
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=dims, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {data.size} bytes of data, header says shape {shape}")
    return data.reshape(shape)


def find_idx(data_dir, stem):
    for name in (stem + ".gz", stem):
        path = Path(data_dir) / name
        if path.exists():
            return path
    raise FileNotFoundError(f"{data_dir}: neither {stem}.gz nor {stem}")


def load_mnist(data_dir, dtype, mean=None, std=None):
    """(x_train, y_train, x_test, y_test): inputs bytes/255, optionally standardised, in
    `dtype` with one row per image; labels as int64 (they only index, never enter the math)."""
    arrays = {}
    for key, stem in IDX_NAMES.items():
        arrays[key] = read_idx(find_idx(data_dir, stem), 3 if key.endswith("images") else 1)
    out = []
    for split in ("train", "test"):
        images, labels = arrays[split + "_images"], arrays[split + "_labels"]
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{split}: {images.shape[0]} images but {labels.shape[0]} labels")
        if labels.max() > 9:
            raise ValueError(f"{split}: label {labels.max()} out of range 0..9")
        x = images.reshape(images.shape[0], -1).astype(dtype)
        x /= dtype.type(255)
        if mean is not None:
            x -= dtype.type(mean)
            x /= dtype.type(std)
        out += [x, labels.astype(np.int64)]
    return tuple(out)


def make_sine(rng, dtype, train=1000, test=200, noise=0.1):
    """Noisy sin on U[0, 4 pi] for training, the noiseless sine on an even grid for testing;
    inputs standardised as (x - 2 pi) / (2 pi), everything as (rows, 1) columns."""
    x_max = 4 * np.pi
    x_train = rng.uniform(0.0, x_max, size=(train, 1))
    y_train = np.sin(x_train) + rng.uniform(-noise, noise, size=(train, 1))
    x_test = np.linspace(0.0, x_max, test).reshape(test, 1)
    y_test = np.sin(x_test)
    half = x_max / 2
    return tuple(a.astype(dtype) for a in
                 ((x_train - half) / half, y_train, (x_test - half) / half, y_test))


# ----------------------------------------------------------------------------- network

def init_params(sizes, init, rng, dtype):
    """[(W, b), ...] with W (fan_in, fan_out): He normal or Xavier uniform, zero biases."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        if init == "he_normal":
            w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
        else:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, size=(fan_in, fan_out))
        params.append((w.astype(dtype), np.zeros(fan_out, dtype=dtype)))
    return params


def forward(params, x, hidden):
    """Activations of every layer, input first; the last entry is the output (identity)."""
    acts = [x]
    for i, (w, b) in enumerate(params):
        z = acts[-1] @ w
        z += b
        if i < len(params) - 1:
            if hidden == "relu":
                np.maximum(z, 0, out=z)
            else:
                np.tanh(z, out=z)
        acts.append(z)
    return acts


def backward(params, acts, delta, hidden):
    """[(dW, db), ...] from the gradient at the output; no delta for the input layer."""
    grads = [None] * len(params)
    for l in range(len(params) - 1, -1, -1):
        grads[l] = (acts[l].T @ delta, delta.sum(axis=0))
        if l > 0:
            a = acts[l]
            delta = delta @ params[l][0].T
            if hidden == "relu":
                delta *= a > 0
            else:
                delta *= 1 - a * a
    return grads


def softmax_cross_entropy(logits, labels):
    """(summed loss, correct count, gradient at the logits of the row-mean loss)."""
    n = logits.shape[0]
    rows = np.arange(n)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sums = exp.sum(axis=1, keepdims=True)
    loss = np.log(sums[:, 0]).sum() - shifted[rows, labels].sum()
    correct = int(np.count_nonzero(logits.argmax(axis=1) == labels))
    grad = exp / sums
    grad[rows, labels] -= 1
    grad /= grad.dtype.type(n)
    return float(loss), correct, grad


def mean_squared_error(out, target):
    """(loss summed over rows of the per-row mean, None, gradient of the overall mean)."""
    n, k = out.shape
    diff = out - target
    loss = float((diff * diff).sum()) / k
    diff *= diff.dtype.type(2.0 / (n * k))
    return loss, None, diff


class Model:
    def __init__(self, sizes, hidden, loss, init, rng, dtype):
        self.hidden = hidden
        self.classifier = loss == "softmax_cross_entropy"
        self.loss = softmax_cross_entropy if self.classifier else mean_squared_error
        self.params = init_params(sizes, init, rng, dtype)
        self.velocity = None

    def gradients(self, x, y):
        acts = forward(self.params, x, self.hidden)
        loss, correct, delta = self.loss(acts[-1], y)
        return loss, correct, backward(self.params, acts, delta, self.hidden)

    def sgd_step(self, grads, lr, momentum):
        """p -= lr g, or with momentum (PyTorch rule) v = M v + g; p -= lr v."""
        if momentum:
            if self.velocity is None:
                self.velocity = [tuple(np.zeros_like(p) for p in layer) for layer in self.params]
            for layer, vel, grad in zip(self.params, self.velocity, grads):
                for p, v, g in zip(layer, vel, grad):
                    v *= momentum
                    v += g
                    p -= lr * v
        else:
            for layer, grad in zip(self.params, grads):
                for p, g in zip(layer, grad):
                    p -= lr * g

    def evaluate(self, x, y):
        """(mean loss, accuracy or None) over a held-out set, in chunks of EVAL_CHUNK rows."""
        loss, correct = 0.0, 0
        for start in range(0, x.shape[0], EVAL_CHUNK):
            out = forward(self.params, x[start:start + EVAL_CHUNK], self.hidden)[-1]
            chunk_loss, chunk_correct, _ = self.loss(out, y[start:start + EVAL_CHUNK])
            loss += chunk_loss
            correct += chunk_correct or 0
        n = x.shape[0]
        return loss / n, (correct / n if self.classifier else None)


def train_epoch(model, x, y, batch_size, lr, momentum, rng):
    """One pass in a fresh random order; returns (seconds, mean training loss)."""
    started = time.perf_counter()
    order = rng.permutation(x.shape[0])
    total = 0.0
    for start in range(0, x.shape[0], batch_size):
        idx = order[start:start + batch_size]
        loss, _, grads = model.gradients(x[idx], y[idx])
        model.sgd_step(grads, lr, momentum)
        total += loss
    return time.perf_counter() - started, total / x.shape[0]


# ----------------------------------------------------------------------------- reporting

def blas_info():
    """(library description, runtime core or None, threads or None) of numpy's BLAS."""
    name = "unknown"
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        name = f"{blas.get('name')} {blas.get('version')}"
        if blas.get("openblas configuration"):
            name += f" ({blas['openblas configuration']})"
    except (TypeError, KeyError):  # numpy < 1.26 has no dict mode
        pass
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        env = os.environ.get("OPENBLAS_NUM_THREADS")
        return name, None, int(env) if env else None
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return name, pool.get("architecture"), pool.get("num_threads")
    return name, None, None


def run(args):
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(args.seed)
    if args.task == "sine":
        data = make_sine(np.random.default_rng([args.seed, 1]), dtype)
        sizes = [1, *args.hidden, 1]
        model = Model(sizes, "tanh", "mean_squared_error", "xavier_uniform", rng, dtype)
    else:
        data = load_mnist(args.data_dir, dtype, args.mean, args.std)
        sizes = [data[0].shape[1], *args.hidden, 10]
        model = Model(sizes, "relu", "softmax_cross_entropy", "he_normal", rng, dtype)
    x_train, y_train, x_test, y_test = data
    lr, momentum = dtype.type(args.lr), dtype.type(args.momentum)
    steps = -(-x_train.shape[0] // args.batch_size)
    arch = "-".join(map(str, sizes))
    log = sys.stderr if args.json else sys.stdout
    print(f"numpy {arch}, {args.dtype}, batch {args.batch_size}, {steps} steps/epoch", file=log)
    epochs = []
    for epoch in range(1, args.epochs + 1):
        seconds, train_loss = train_epoch(model, x_train, y_train, args.batch_size, lr,
                                          momentum, rng)
        started = time.perf_counter()
        test_loss, test_acc = model.evaluate(x_test, y_test)
        eval_seconds = time.perf_counter() - started
        epochs.append({"epoch": epoch, "seconds": seconds, "eval_seconds": eval_seconds,
                       "train_loss": train_loss, "test_loss": test_loss, "test_acc": test_acc})
        acc = "" if test_acc is None else f"  test acc {test_acc:.4f}"
        print(f"epoch {epoch}: {seconds:.3f} s ({seconds / steps * 1e6:.1f} us/step)"
              f"  test loss {test_loss:.5f}{acc}", file=log)
    median = statistics.median(e["seconds"] for e in epochs)
    print(f"median {median:.4f} s/epoch, {median / steps * 1e6:.2f} us/step", file=log)
    if args.json:
        blas, core, threads = blas_info()
        print(json.dumps({
            "impl": "numpy", "numpy": np.__version__, "task": args.task, "architecture": arch,
            "dtype": args.dtype, "batch_size": args.batch_size, "blas": blas, "blas_core": core,
            "blas_threads": threads, "epochs": epochs, "steps_per_epoch": steps,
            "median_seconds_per_epoch": median, "median_seconds_per_step": median / steps,
        }))


# ----------------------------------------------------------------------------- self-test

def gradient_check(sizes, hidden, loss, init, x, y):
    """Worst |analytic - numeric| / max(|analytic|, |numeric|, 1e-3) over all parameters,
    numeric by central differences in float64 (the floor keeps round-off in near-zero
    gradients from counting as relative error)."""
    model = Model(sizes, hidden, loss, init, np.random.default_rng(3), np.float64)
    _, _, grads = model.gradients(x, y)
    h, worst = 1e-5, 0.0
    for layer, grad in zip(model.params, grads):
        for p, g in zip(layer, grad):
            for i in np.ndindex(p.shape):
                keep = p[i]
                p[i] = keep + h
                up = model.gradients(x, y)[0]
                p[i] = keep - h
                down = model.gradients(x, y)[0]
                p[i] = keep
                # The loss functions return row sums; the gradient is of the row mean.
                numeric = (up - down) / (2 * h) / x.shape[0]
                worst = max(worst, abs(g[i] - numeric) / max(abs(g[i]), abs(numeric), 1e-3))
    return worst


def self_test(data_dir):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5))
    failed = False
    checks = [("softmax-CE classifier 5-4-3-3 (relu)", "relu", "softmax_cross_entropy",
               "he_normal", rng.integers(0, 3, size=4)),
              ("MSE regressor 5-4-3-3 (tanh)", "tanh", "mean_squared_error",
               "xavier_uniform", rng.normal(size=(4, 3)))]
    for name, hidden, loss, init, y in checks:
        worst = gradient_check([5, 4, 3, 3], hidden, loss, init, x, y)
        ok = worst <= 1e-6
        failed |= not ok
        print(f"gradient check, {name}: worst relative error {worst:.2e}"
              f" {'ok' if ok else 'FAILED (> 1e-6)'}")

    # Standardised inputs, as in the repo's MNIST configs (plain /255 lands near 88%).
    dtype = np.dtype(np.float32)
    x_train, y_train, x_test, y_test = load_mnist(data_dir, dtype, 0.1307, 0.3081)
    model = Model([784, 100, 10], "relu", "softmax_cross_entropy", "he_normal",
                  np.random.default_rng(1), dtype)
    seconds, _ = train_epoch(model, x_train[:10000], y_train[:10000], 100, dtype.type(0.1),
                             dtype.type(0), np.random.default_rng(2))
    _, acc = model.evaluate(x_test, y_test)
    ok = acc > 0.90
    failed |= not ok
    print(f"MNIST 784-100-10, 1 epoch on 10,000 samples ({seconds:.2f} s): test accuracy"
          f" {acc:.4f} {'ok' if ok else 'FAILED (<= 0.90)'}")
    return 1 if failed else 0


def check_args(parser, args):
    """Cross-option checks and the task-dependent default widths."""
    if (args.mean is None) != (args.std is None):
        parser.error("--mean and --std go together")
    if args.hidden is None:
        args.hidden = [6] if args.task == "sine" else [300, 300]
    if args.batch_size < 1 or args.epochs < 1:
        parser.error("--batch-size and --epochs must be positive")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=["mnist", "sine"], default="mnist")
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / "data" / "mnist")
    parser.add_argument("--hidden", type=lambda s: [int(w) for w in s.split(",") if w],
                        help="hidden widths, e.g. 300,300 (default: 300,300 for mnist,"
                             " 6 for sine)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--mean", type=float, help="standardise MNIST inputs after /255")
    parser.add_argument("--std", type=float)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout (epoch lines go to stderr)")
    parser.add_argument("--self-test", action="store_true",
                        help="gradient checks and a quick MNIST accuracy check")
    args = parser.parse_args()
    check_args(parser, args)
    try:
        if args.self_test:
            return self_test(args.data_dir)
        run(args)
    except (OSError, ValueError) as e:  # missing or malformed data files
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
