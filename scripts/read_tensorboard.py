#!/usr/bin/env python3
"""Read a backprop TensorBoard run back with TensorBoard's own event reader.

Usage: read_tensorboard.py RUN_DIR

Prints one JSON object: {"scalars": [[tag, step, value], ...], "texts": [[tag, step, text],
...], "plugins": {tag: plugin_name}} with every value the EventAccumulator finds.
"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

# 0 keeps every event of each kind (the default samples some away).
SIZE_GUIDANCE = {k: 0 for k in ("compressedHistograms", "images", "audio", "scalars",
                                "histograms", "tensors")}


def main():
    acc = EventAccumulator(sys.argv[1], size_guidance=SIZE_GUIDANCE)
    acc.Reload()
    tags = acc.Tags()
    scalars = [[t, e.step, e.value] for t in tags["scalars"] for e in acc.Scalars(t)]
    texts, plugins = [], {}
    for t in tags["tensors"]:
        plugins[t] = acc.SummaryMetadata(t).plugin_data.plugin_name
        for e in acc.Tensors(t):
            value = tensor_util.make_ndarray(e.tensor_proto).item().decode("utf-8")
            texts.append([t, e.step, value])
    print(json.dumps({"scalars": scalars, "texts": texts, "plugins": plugins}))


if __name__ == "__main__":
    main()
