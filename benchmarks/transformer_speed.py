"""Converted MiniLM inference time over ANN inference time, on the CPU.

Converts the committed fine-tuned all-MiniLM-L6-v2 classifier to PS neurons
(dy = 0.001, padding masked, 256 calibration sentences), then prints, for one
batch of 64 real Rotten Tomatoes test sentences (padded to the longest), the
ANN time (the baseline, measured in the same process just before) and the
ratios of the PS fast path (spike counters on) and of the time-stepped path
(Eqs. 1-3 step by step) to it, the largest |logit difference| of each to the
ANN, and how much each raised the peak resident memory (0 when it stayed under
an earlier peak). Target: fast path <= 1.3x ANN.

    python benchmarks/transformer_speed.py [--batch 64] [--repeat 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import time

import torch

from psnn_lib import convert
from psnn_lib.models import minilm, sentences

from convert_speed import peak_mib, timed

TARGET = 1.3  # the fast path's time over the ANN's


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    model, _ = minilm.load_finetuned()
    tok, data = minilm.tokenizer(), sentences.rotten_tomatoes(0)
    cal = data["train"].select(range(256))
    calibration = sentences.encode(cal["text"], cal["label"], tok, 64).batches
    test = data["test"].select(range(a.batch))
    batch = dict(tok(list(test["text"]), padding=True, truncation=True, max_length=128, return_tensors="pt"))
    real = int(batch["attention_mask"].sum())

    t = time.perf_counter()
    snn, report = convert(model, "ps", calibration=calibration, token_mask="attention_mask", dy=0.001,
                          progress=False)
    ks = [r.time_steps for r in report.rows]
    print(f"conversion (256 sentences, {len(ks)} GELU sites, K {min(ks)}-{max(ks)}): "
          f"{time.perf_counter() - t:.2f} s, {a.threads} threads")
    print(f"batch of {a.batch} sentences, {tuple(batch['input_ids'].shape)} tokens, {real} real")
    before = peak_mib()
    ann_out = model(**batch)
    ann = timed(lambda: model(**batch), a.repeat)
    print(f"ANN: {1e3 * ann:.1f} ms (peak RSS +{peak_mib() - before:.0f} MiB)")
    for mode in ("fast", "stepped"):
        snn.set_mode(mode)
        before = peak_mib()
        out = snn(**batch)
        ratio = timed(lambda: snn(**batch), a.repeat) / ann
        diff = float((out.logits - ann_out.logits).abs().max())
        target = f", target <= {TARGET}x: {'met' if ratio <= TARGET else 'NOT met'}" if mode == "fast" else ""
        print(f"PS {mode:8s}: {ratio:5.2f}x ANN{target}, max |logit diff| {diff:.2e} "
              f"(peak RSS +{peak_mib() - before:.0f} MiB)")


if __name__ == "__main__":
    main()
