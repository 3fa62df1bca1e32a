#!/usr/bin/env python3
"""Time `backprop` against the numpy reference (and torch, when importable) on the same cases.

Each case is run as alternating pairs (backprop, numpy float32, numpy float64[, torch],
then again), `--repeats` times, every run in its own process with the same thread count,
and summarised as a markdown table: median [min-max] over all measured epochs of all
repeats (seconds per epoch; microseconds per step for the online sine case).

    python3 benches/compare.py --repeats 3 --epochs 2 --out /tmp/compare.md
"""

import argparse
import datetime
import importlib.util
import json
import math
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NUMPY_REFERENCE = REPO / "benches" / "numpy_reference.py"
MNIST_DIR = REPO / "data" / "mnist"
FASHION_DIRS = [REPO.parent / "shared" / "datasets" / "fashion-mnist",
                Path("/usr/share/datasets/fashion-mnist")]
# (folder, mean, std) of each image set.
IMAGE_SETS = {
    "mnist": (MNIST_DIR, 0.1307, 0.3081),
    "fashion": (next((d for d in FASHION_DIRS if d.is_dir()), FASHION_DIRS[0]), 0.2860, 0.3530),
}
SEED = 1


@dataclass
class Case:
    label: str
    task: str  # "mnist" (an IDX image set, see `images`) or "sine"
    hidden: list
    batch_size: int
    lr: float
    images: str = "mnist"  # a key of IMAGE_SETS


CASES = {
    1: Case("784-300-300-10, batch 600, SGD lr 0.1", "mnist", [300, 300], 600, 0.1),
    2: Case("784-300-300-10, batch 128, SGD lr 0.05", "mnist", [300, 300], 128, 0.05),
    3: Case("784-96-10, batch 200, SGD lr 0.1", "mnist", [96], 200, 0.1),
    4: Case("1-6-1 sine, batch 1 (online), SGD lr 0.01", "sine", [6], 1, 0.01),
    5: Case("784-300-300-10, batch 32, SGD lr 0.02", "mnist", [300, 300], 32, 0.02),
    6: Case("Fashion-MNIST 784-300-300-10, batch 600, SGD lr 0.1", "mnist", [300, 300], 600,
            0.1, "fashion"),
    7: Case("784-300-300-10, batch 8, SGD lr 0.005", "mnist", [300, 300], 8, 0.005),
    8: Case("784-300-300-10, batch 6000, SGD lr 0.5", "mnist", [300, 300], 6000, 0.5),
}


class RunError(Exception):
    pass


def tail(text, lines=30):
    return "\n".join(text.strip().splitlines()[-lines:])


# ----------------------------------------------------------------------------- backprop

def ensure_binary(explicit):
    """The backprop executable: `explicit` as given, else target/release/backprop, rebuilt
    with `cargo build --release` when missing or older than any source."""
    if explicit:
        if not (Path(explicit).is_file() and os.access(explicit, os.X_OK)):
            raise RunError(f"--backprop {explicit}: not an executable file")
        return Path(explicit).resolve()
    binary = REPO / "target" / "release" / "backprop"
    sources = [REPO / "Cargo.toml", REPO / "Cargo.lock", REPO / "build.rs",
               *(REPO / "src").rglob("*.rs")]
    newest = max(p.stat().st_mtime for p in sources if p.exists())
    if binary.exists() and binary.stat().st_mtime >= newest:
        return binary
    print("building: cargo build --release", file=sys.stderr)
    try:
        proc = subprocess.run(["cargo", "build", "--release"], cwd=REPO,
                              capture_output=True, text=True)
    except FileNotFoundError:
        raise RunError("cargo not found on PATH (or pass --backprop PATH)") from None
    if proc.returncode != 0:
        raise RunError(f"cargo build --release failed (exit {proc.returncode}):\n"
                       f"{tail(proc.stderr)}")
    if not binary.exists():
        raise RunError(f"cargo build --release succeeded but {binary} is missing")
    return binary


def toml_config(case, epochs, threads):
    """The run description both sides share, as TOML (paths absolute)."""
    lines = [f"seed = {SEED}", f"threads = {threads}", "", "[data]"]
    if case.task == "mnist":
        folder, mean, std = IMAGE_SETS[case.images]
        lines += [f"dir = {json.dumps(str(folder))}",  # a JSON string is a TOML string
                  f"mean = {mean}", f"std = {std}", "",
                  "[model]", f"hidden = {case.hidden}", 'activation = "relu"',
                  'loss = "softmax_cross_entropy"', 'init = "he_normal"']
    else:
        two_pi = 2 * math.pi
        lines += [f"mean = {two_pi!r}", f"std = {two_pi!r}", "",
                  "[data.sine]", "train_samples = 1000", "test_samples = 200", "noise = 0.1",
                  "", "[model]", f"hidden = {case.hidden}", 'activation = "tanh"',
                  'loss = "mean_squared_error"', 'init = "xavier_uniform"']
    lines += ["", "[train]", f"epochs = {epochs}", f"batch_size = {case.batch_size}",
              "", "[optimizer]", 'kind = "sgd"', f"lr = {case.lr}", ""]
    return "\n".join(lines)


def run_json(cmd, what, env=None):
    """Runs `cmd` and returns the JSON object on the last `{` line of its stdout."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    command = shlex.join(str(c) for c in cmd)
    if proc.returncode != 0:
        raise RunError(f"{what} failed (exit {proc.returncode}): {command}\n{tail(proc.stderr)}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError as e:
                raise RunError(f"{what}: bad JSON ({e}) from {command}") from None
    raise RunError(f"{what} printed no JSON object: {command}\nstdout:\n{tail(proc.stdout)}\n"
                   f"stderr:\n{tail(proc.stderr)}")


# ----------------------------------------------------------------------------- torch

def torch_importable():
    if importlib.util.find_spec("torch") is None:
        return False
    return subprocess.run([sys.executable, "-c", "import torch"],
                          capture_output=True).returncode == 0


def torch_worker(spec):
    """The torch equivalent of a case (float32, same init, plain SGD, shuffled minibatches
    incl. the partial last one), timed like the numpy reference; prints one JSON object."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, str(NUMPY_REFERENCE.parent))
    import numpy_reference as ref

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(SEED)
    dtype = np.dtype(np.float32)
    if spec["task"] == "sine":
        data = ref.make_sine(np.random.default_rng([SEED, 1]), dtype)
        sizes, activation, loss_fn = [1, *spec["hidden"], 1], torch.nn.Tanh, F.mse_loss
    else:
        folder, mean, std = IMAGE_SETS[spec.get("images", "mnist")]
        data = ref.load_mnist(folder, dtype, mean, std)
        sizes, activation, loss_fn = [784, *spec["hidden"], 10], torch.nn.ReLU, F.cross_entropy
    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in data)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        linear = torch.nn.Linear(fan_in, fan_out)
        if spec["task"] == "sine":
            torch.nn.init.xavier_uniform_(linear.weight)
        else:
            torch.nn.init.normal_(linear.weight, 0.0, math.sqrt(2.0 / fan_in))
        torch.nn.init.zeros_(linear.bias)
        layers += [linear, activation()]
    model = torch.nn.Sequential(*layers[:-1])  # identity output layer
    optimizer = torch.optim.SGD(model.parameters(), lr=spec["lr"])
    n, batch = x_train.shape[0], spec["batch_size"]
    steps = -(-n // batch)
    epochs = []
    for epoch in range(1, spec["epochs"] + 1):
        started = time.perf_counter()
        order = torch.randperm(n)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        total, correct = 0.0, 0
        with torch.no_grad():
            for start in range(0, x_test.shape[0], 1000):
                out = model(x_test[start:start + 1000])
                y = y_test[start:start + 1000]
                # Per-row losses summed, so that total / rows is the test-set mean.
                summed = loss_fn(out, y, reduction="sum").item()
                if spec["task"] == "sine":
                    total += summed / out.shape[1]
                else:
                    total += summed
                    correct += (out.argmax(dim=1) == y).sum().item()
        epochs.append({"epoch": epoch, "seconds": seconds,
                       "eval_seconds": time.perf_counter() - started,
                       "test_loss": total / x_test.shape[0],
                       "test_acc": None if spec["task"] == "sine" else correct / x_test.shape[0]})
    median = statistics.median(e["seconds"] for e in epochs)
    print(json.dumps({"impl": "torch", "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "epochs": epochs,
                      "steps_per_epoch": steps, "median_seconds_per_epoch": median,
                      "median_seconds_per_step": median / steps}))


# ----------------------------------------------------------------------------- runs

def thread_env(threads):
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    return env


def commands(case, config, binary, args):
    """{implementation: (command, environment)} of one case, in the order they alternate."""
    common = ["--task", case.task, "--hidden", ",".join(map(str, case.hidden)),
              "--batch-size", case.batch_size, "--lr", case.lr, "--epochs", args.epochs,
              "--seed", SEED, "--json"]
    if case.task == "mnist":
        folder, mean, std = IMAGE_SETS[case.images]
        common += ["--data-dir", folder, "--mean", mean, "--std", std]
    env = thread_env(args.threads)
    runs = {"backprop": ([binary, "bench", "--config", config, "--epochs", args.epochs,
                          "--batch-size", case.batch_size, "--threads", args.threads,
                          "--json"], None)}
    for dtype in ["float32"] + ([] if args.no_float64 else ["float64"]):
        runs[f"numpy {dtype}"] = ([sys.executable, NUMPY_REFERENCE, *common, "--dtype", dtype],
                                  env)
    if args.torch:
        spec = {"task": case.task, "images": case.images, "hidden": case.hidden,
                "batch_size": case.batch_size,
                "lr": case.lr, "epochs": args.epochs, "threads": args.threads}
        runs["torch float32"] = ([sys.executable, Path(__file__).resolve(), "--torch-worker",
                                  json.dumps(spec)], env)
    return runs


def busy_cpu_seconds():
    """CPU seconds all processes of the machine have used since boot (non-idle time)."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(case, config, binary, args):
    """{implementation: [result JSON per repeat]}, the implementations alternating, and the
    average number of cores that other processes kept busy meanwhile."""
    results = {}
    # Whatever the machine did beyond our child processes competed with them. /proc/stat
    # counts in clock ticks, so this is only meaningful over the whole case, not one run.
    busy, ours, started = busy_cpu_seconds(), children_cpu_seconds(), time.monotonic()
    for repeat in range(1, args.repeats + 1):
        for impl, (cmd, env) in commands(case, config, binary, args).items():
            result = run_json(cmd, impl, env)
            results.setdefault(impl, []).append(result)
            print(f"  repeat {repeat}/{args.repeats}  {impl:14s}"
                  f" {result['median_seconds_per_epoch']:.4f} s/epoch", file=sys.stderr)
    others = (busy_cpu_seconds() - busy) - (children_cpu_seconds() - ours)
    return results, max(0.0, others / (time.monotonic() - started))


# ----------------------------------------------------------------------------- report

def spread(runs, case):
    """median [min-max] over every epoch of every run: seconds, or microseconds per step."""
    if case.task == "sine":
        values = [e["seconds"] / r["steps_per_epoch"] * 1e6 for r in runs for e in r["epochs"]]
        unit = " µs/step"
    else:
        values = [e["seconds"] for r in runs for e in r["epochs"]]
        unit = " s"
    med = statistics.median(values)
    return med, f"{med:.3g} [{min(values):.3g}-{max(values):.3g}]{unit}"


def quality(runs):
    """Median final test accuracy (classification) or test MSE (regression) over runs."""
    last = [r["epochs"][-1] for r in runs]
    if last[0]["test_acc"] is not None:
        return f"{100 * statistics.median(e['test_acc'] for e in last):.2f}%"
    return f"MSE {statistics.median(e['test_loss'] for e in last):.4f}"


def table(rows, impls):
    header = (["case"] + [f"{impl} median [min-max]" for impl in impls]
              + ["time numpy f32 / backprop", "backprop / products floor", "backprop input"]
              + [f"{impl} test acc / MSE" for impl in impls])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, case, results, _ in rows:
        medians, cells = {}, []
        for impl in impls:
            medians[impl], cell = spread(results[impl], case)
            cells.append(cell)
        ratio = medians["numpy float32"] / medians["backprop"]
        floor = statistics.median(r["ratio_to_floor"] for r in results["backprop"])
        path = results["backprop"][0].get("input_path", "?").split(" (")[0]
        cells += [f"{ratio:.2f}×", f"{floor:.2f}", path]
        cells += [quality(results[impl]) for impl in impls]
        lines.append("| " + " | ".join([f"{key}. {case.label}"] + cells) + " |")
    return "\n".join(lines)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def git_revision():
    proc = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO,
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


def environment_notes(rows, args):
    bp = rows[0][2]["backprop"][0]
    np32 = rows[0][2]["numpy float32"][0]
    env = {var: os.environ.get(var, "not set") for var in ("OPENBLAS_CORETYPE",
                                                          "OPENBLAS_L2_SIZE")}
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    notes = [
        "Times: median [min-max] over every epoch of every repeat (training loop only). "
        "time numpy f32 / backprop > 1: backprop is faster. sgemm floor: the same epoch's "
        "matrix products alone, from `backprop bench`.",
        "",
        f"- backprop: {bp['blas_config']}; core {bp['blas_core']}; "
        f"{bp['rayon_threads']} rayon threads (single-threaded sgemm calls, products cut "
        f"over the rayon pool); "
        f"{bp['profile']} build ({args.binary}); git {git_revision()}",
        f"- numpy {np32['numpy']}: {np32['blas']}; "
        f"core {np32['blas_core'] or 'unknown (no threadpoolctl)'}; "
        f"{np32['blas_threads']} BLAS threads (OPENBLAS_NUM_THREADS={args.threads})",
        "- torch: " + ("float32, torch.set_num_threads(%d)" % args.threads if args.torch
                       else "not importable, no torch column"),
        f"- OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']}, "
        f"OPENBLAS_L2_SIZE={env['OPENBLAS_L2_SIZE']} (both OpenBLAS builds read them)",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs",
        "- cores kept busy by other processes (average while a case ran): "
        + ", ".join(f"case {key} {foreign:.2f}" for key, _, _, foreign in rows)
        + ("" if max(row[3] for row in rows) < 0.25 else
           "  **(the machine was not quiet: timings are skewed)**"),
        f"- {args.repeats} repeats × {args.epochs} epochs per implementation and case",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- command: `{command}`",
    ]
    return "\n".join(notes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="pairs of runs per case")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run")
    parser.add_argument("--cases", default="1,2,3,4,5,6",
                        help="comma-separated case numbers: " + "; ".join(
                            f"{k}: {c.label}" for k, c in CASES.items()))
    parser.add_argument("--threads", type=int, default=2,
                        help="BLAS/rayon/torch threads of every run (default 2)")
    parser.add_argument("--no-float64", action="store_true", help="skip numpy float64")
    parser.add_argument("--backprop", metavar="PATH", help="use this binary, do not build")
    parser.add_argument("--out", type=Path, metavar="FILE.md", help="also write the report here")
    parser.add_argument("--torch-worker", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_worker:
        torch_worker(json.loads(args.torch_worker))
        return 0
    try:
        keys = [int(k) for k in args.cases.split(",") if k.strip()]
        if not keys or any(k not in CASES for k in keys):
            raise ValueError
    except ValueError:
        parser.error(f"--cases: comma-separated numbers out of {sorted(CASES)}")
    if min(args.repeats, args.epochs, args.threads) < 1:
        parser.error("--repeats, --epochs and --threads must be positive")

    try:
        args.binary = ensure_binary(args.backprop)
        args.torch = torch_importable()
        rows = []
        with tempfile.TemporaryDirectory(prefix="backprop-compare-") as tmp:
            for key in keys:
                case = CASES[key]
                print(f"case {key}: {case.label}", file=sys.stderr)
                config = Path(tmp) / f"case{key}.toml"
                config.write_text(toml_config(case, args.epochs, args.threads))
                rows.append((key, case, *measure(case, config, args.binary, args)))
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    impls = list(rows[0][2])
    report = f"{table(rows, impls)}\n\n{environment_notes(rows, args)}\n"
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
