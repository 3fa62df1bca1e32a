#!/usr/bin/env python3
"""A hand-written backprop step in numpy, checked against `backprop trace`.

    backprop trace --config run.toml --step 3 --out ours.safetensors
    python3 scripts/trace_reference.py ours.safetensors --out theirs.safetensors
    backprop trace --compare theirs.safetensors --against ours.safetensors

It reads from the trace only what a step reads (the batch `input` and one-hot `target`, every
`layer{l}.weight` [inputs, outputs] and `layer{l}.bias`, the optimizer's state
`optimizer.{velocity|m|v}.layer{l}.*`, and the metadata: architecture, optimizer, lr), then
computes the step itself and saves every tensor under the same names. `--mistake NAME` plants
one of the classic hand-written-backprop bugs, which `--compare` should name:

    softmax-derivative   the softmax derivative applied on top of cross-entropy
    summed               the gradient summed over the batch, not averaged
    transposed           the weight gradient transposed
    no-bias-gradient     the biases never get a gradient
    sign-flip            y - p instead of p - y
    derivative-from-z    the tanh/sigmoid derivative taken from the pre-activation
    wrong-activations    a weight gradient built on the layer's own output
"""

import argparse
import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

MISTAKES = [
    "none",
    "softmax-derivative",
    "summed",
    "transposed",
    "no-bias-gradient",
    "sign-flip",
    "derivative-from-z",
    "wrong-activations",
]


def activate(kind, slope, z):
    if kind == "relu":
        return np.maximum(z, 0.0)
    if kind == "leaky_relu":
        return np.where(z > 0, z, slope * z)
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if kind == "tanh":
        return np.tanh(z)
    if kind == "identity":
        return z
    if kind == "silu":
        return z / (1.0 + np.exp(-z))
    sys.exit(f"unknown activation {kind}")


def derivative(kind, slope, a, z, mistake):
    """f'(z) written with the output a, as the chain rule needs it."""
    if mistake == "derivative-from-z" and kind in ("tanh", "sigmoid"):
        a = z  # the bug: the formula of the output applied to the pre-activation
    if kind == "relu":
        return (a > 0).astype(a.dtype)
    if kind == "leaky_relu":
        return np.where(a > 0, 1.0, slope)
    if kind == "sigmoid":
        return a * (1.0 - a)
    if kind == "tanh":
        return 1.0 - a * a
    if kind == "identity":
        return np.ones_like(a)
    s = 1.0 / (1.0 + np.exp(-z))
    return s * (1.0 + z * (1.0 - s))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def output_delta(loss, act, z, a, y, smoothing, mistake):
    """The loss (batch mean) and d loss / d z of the output layer."""
    n, width = z.shape
    sign = -1.0 if mistake == "sign-flip" else 1.0
    per = 1.0 if mistake == "summed" else 1.0 / n
    if loss == "softmax_cross_entropy":
        t = (1.0 - smoothing) * y + smoothing / width
        p = softmax(z)
        log_p = z - z.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        delta = sign * (p - t) * per
        if mistake == "softmax-derivative":
            delta = delta * p * (1.0 - p)
        return -(t * log_p).sum() / n, delta
    if loss == "mean_squared_error":
        err = a - y
        d = derivative(act["kind"], act.get("slope", 0.0), a, z, "none")
        return (err**2).sum() / (n * width), sign * 2.0 * err * d * per / width
    p = 1.0 / (1.0 + np.exp(-z))
    value = (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).sum() / (n * width)
    return value, sign * (p - y) * per / width


def update(h, lr, t, p, g, state, decays):
    """One step of the optimizer; `state` (velocity, or m and v) is updated in place."""
    kind = h["kind"]
    l2 = h["weight_decay"] if decays and kind != "adamw" else 0.0
    g = g + l2 * p
    if kind == "sgd":
        return p - lr * g
    if kind in ("momentum", "nesterov"):
        v = state[0]
        v[...] = h["momentum"] * v + g
        step = v if kind == "momentum" else g + h["momentum"] * v
        return p - lr * step
    m, v = state
    if decays and kind == "adamw":
        p = p - lr * h["weight_decay"] * p
    m[...] = h["beta1"] * m + (1 - h["beta1"]) * g
    v[...] = h["beta2"] * v + (1 - h["beta2"]) * g * g
    m_hat, v_hat = m / (1 - h["beta1"] ** t), v / (1 - h["beta2"] ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + h["eps"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trace", help="a trace written by `backprop trace --out`")
    ap.add_argument("--out", required=True, help="where this step's tensors go")
    ap.add_argument("--mistake", choices=MISTAKES, default="none")
    args = ap.parse_args()
    with safe_open(args.trace, "np") as f:
        meta = f.metadata()
    arch = json.loads(meta["architecture"])
    opt = json.loads(meta["optimizer"])
    lr, smoothing = float(meta["lr"]), float(meta["label_smoothing"])
    h, mistake = opt["hyper"], args.mistake
    states = {"sgd": [], "momentum": ["velocity"], "nesterov": ["velocity"]}.get(h["kind"], ["m", "v"])
    src = {k: v.astype(np.float64) for k, v in load_file(args.trace).items()}
    layers = arch["layers"]
    out = {"input": src["input"], "target": src["target"]}
    # Forward.
    acts, pres = [src["input"]], []
    for l, layer in enumerate(layers):
        z = acts[-1] @ src[f"layer{l}.weight"] + src[f"layer{l}.bias"]
        a = activate(layer["activation"]["kind"], layer["activation"].get("slope", 0.0), z)
        out[f"layer{l}.pre"], out[f"layer{l}.out"] = z, a
        pres.append(z)
        acts.append(a)
    last = len(layers) - 1
    loss, delta = output_delta(
        arch["loss"], layers[last]["activation"], pres[last], acts[-1], src["target"], smoothing, mistake
    )
    out["loss"] = np.array(loss)
    # Backward.
    square = [l for l in range(1, len(layers)) if src[f"layer{l}.weight"].shape[0] == src[f"layer{l}.weight"].shape[1]]
    if mistake == "wrong-activations" and not square:
        sys.exit("wrong-activations needs a hidden layer as wide as the one below it")
    for l in range(last, -1, -1):
        out[f"layer{l}.delta"] = delta
        below = acts[l]
        if mistake == "wrong-activations" and l == square[0]:
            below = acts[l + 1]  # the bug: the layer's own output instead of its input
        gw, gb = below.T @ delta, delta.sum(axis=0)
        out[f"layer{l}.weight.grad"] = gw.T.copy() if mistake == "transposed" else gw
        if mistake != "no-bias-gradient":
            out[f"layer{l}.bias.grad"] = gb
        grads = {"weight": gw, "bias": gb if mistake != "no-bias-gradient" else None}
        for p, g in grads.items():
            before = src[f"layer{l}.{p}"]
            if g is None:
                out[f"layer{l}.{p}.after"] = before
                continue
            state = [src[f"optimizer.{s}.layer{l}.{p}"].copy() for s in states]
            decays = h["weight_decay"] != 0 and (p == "weight" or h["decay_biases"])
            out[f"layer{l}.{p}.after"] = update(h, lr, opt["steps"] + 1, before, g, state, decays)
        if l > 0:
            act = layers[l - 1]["activation"]
            d = derivative(act["kind"], act.get("slope", 0.0), acts[l], pres[l - 1], mistake)
            delta = (delta @ src[f"layer{l}.weight"].T) * d
    save_file({k: np.ascontiguousarray(v, dtype=np.float64) for k, v in out.items()}, args.out)


if __name__ == "__main__":
    main()
