"""Paper 1, Sect. 4.2 and Table 3: PS neurons in transformers (GELU BERTs).

Only the activations are converted (every GELU, fitted to the exact form
the model uses): softmax, LayerNorm and attention stay analog, as in the
paper, and the conversion report lists them. Each site's interval is
calibrated on real sentences with the padding masked out
(``token_mask="attention_mask"``), at a fixed precision dy, so each site's
K follows from its range (Eq. 19); Table 3's K column is their range.

- ``default``: all-MiniLM-L6-v2 fine-tuned for fresh/rotten on the Rotten
  Tomatoes critic snippets (:mod:`psnn_lib.models.minilm`): a substitute for
  the paper's RoBERTa-base on SST-2, which was built from the same snippets.
- ``paper``: the paper's tasks with fine-tuned hub checkpoints
  (:func:`paper_task`).

Beside PS: FS neurons at K = 16 (the paper's FS rows), and SpikingJelly's
transformer converter (:mod:`psnn_lib.peers.spikingjelly_transformer`).
Beyond the paper: accuracy and embedding similarity against dy, and the
error each site carries when it alone spikes.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..book.records import Record
from ..converter.engine import ConvertedModel, convert
from ..converter.network_stats import NetworkStats
from ..converter.report import ConversionReport
from ..models import minilm, sentences
from ..models.minilm import SentenceOutput
from ..models.sentences import Encoded
from ..peers import spikingjelly_transformer
from .conversion import frame, outcome
from .numbers import TABLE3

TOKEN_MASK = "attention_mask"
# |loss| within this many points of the paper's reproduces a PS row: one sentence of the
# default test set is 0.08 points, FS's smallest loss in the paper is 4.56
LOSS_TOLERANCE = 0.5


@dataclass
class Task:
    """One Table 3 row group: a fine-tuned classifier, its calibration and test sentences,
    the paper's dataset key (TABLE3) it reproduces or stands for, and what it substitutes."""

    title: str
    paper_key: str
    model: nn.Module
    calibration: Encoded
    test: Encoded
    substitute: str = ""
    strict: bool = True


def offline_task(n_calibration: int, n_test: int, batch_size: int = 64, seed: int = 0) -> Task:
    """The committed MiniLM classifier; calibration sentences from the training split,
    test sentences from the test split (the first n of each, after the seeded split)."""
    model, _ = minilm.load_finetuned()
    tok, data = minilm.tokenizer(), sentences.rotten_tomatoes(seed)
    cal, test = data["train"].select(range(n_calibration)), data["test"].select(range(min(n_test, len(data["test"]))))
    return Task("MiniLM-L6 (GELU), Rotten Tomatoes", "sst2", model,
                sentences.encode(cal["text"], cal["label"], tok, batch_size),
                sentences.encode(test["text"], test["label"], tok, batch_size),
                substitute="MiniLM-L6 on Rotten Tomatoes for RoBERTa-base on SST-2")


def paper_task(key: str, checkpoint: str, n_calibration: int, n_test: Optional[int], batch_size: int = 32,
               device: str = "cpu", folder: Union[str, Path, None] = None) -> Task:
    """A paper task with a fine-tuned hub checkpoint (needs the internet or the HF cache; a
    local folder saved with ``save_pretrained`` works too): calibration sentences from the
    task's training split, test sentences from the split the paper reports, both from the hub
    or, with ``folder``, from a local copy (:func:`~psnn_lib.models.sentences.paper_task`:
    ``<folder>/<key>/train.csv`` and ``<folder>/<key>/validation.csv``, ``test.csv`` for sst5;
    or ``.parquet``, ``.jsonl``). Converted with ``strict=False``: the paper converts the GELUs,
    and an activation a hub model calls as a function outside a module (RoBERTa's
    classification head calls ``torch.tanh``) stays analog, listed in the report."""
    model, tok = minilm.hub_classifier(checkpoint)
    model = model.to(device)  # converted and run there
    classes = sentences.PAPER_TASKS[key].classes
    if model.model.config.num_labels != classes:
        raise ValueError(f"{checkpoint} has {model.model.config.num_labels} labels; {key} has {classes}")
    test = sentences.paper_task(key, folder=folder)
    train = sentences.paper_task(key, split="train", folder=folder).shuffle(seed=0).select(range(n_calibration))
    test = test if n_test is None else test.select(range(min(n_test, len(test))))
    return Task(f"{checkpoint}, {key}", key, model, sentences.encode(train["text"], train["label"], tok, batch_size),
                sentences.encode(test["text"], test["label"], tok, batch_size), strict=False)


def skipped_task(key: str) -> str:
    """What a paper task without a checkpoint name is told: not run, and how to run it."""
    task = sentences.PAPER_TASKS[key]
    return (f"{key}: not run: no fine-tuned checkpoint is named (the notebook's parameter {key}_model is empty); "
            f"its Table 3 claims are recorded as not run. To run it, set {key}_model to a hub checkpoint "
            f"fine-tuned on {key} ({task.classes} labels; the paper's: {TABLE3[key]['PS'][0]}), fetched online "
            "once or with `hf download NAME`")


def paper_tasks(checkpoints: dict[str, str], n_calibration: int, n_test: Optional[int], device: str = "cpu",
                folder: Union[str, Path, None] = None) -> list[Task]:
    """:func:`paper_task` for every dataset key with a checkpoint name (its sentences from the
    hub, or from ``folder``, a local copy: None or ``""`` for the hub); whatever is missing
    (offline: every model and dataset) is named in one error, not one at a time. A key without
    a name is skipped, and a line says so (:func:`skipped_task`; :func:`table3_claims` records its
    claims as not run); no name at all is an error."""
    if not any(checkpoints.values()):
        raise ValueError("no Table 3 task has a checkpoint: name at least one of "
                         + ", ".join(f"{key}_model" for key in checkpoints))
    tasks, missing = [], []
    for key, checkpoint in checkpoints.items():
        if not checkpoint:
            print(skipped_task(key), flush=True)
            continue
        try:
            tasks.append(paper_task(key, checkpoint, n_calibration, n_test, device=device, folder=folder))
        except FileNotFoundError as err:  # DatasetMissing too
            missing.append(f"{key}: {err}")
    if missing:
        where = f"the local copy {folder}" if folder else "a local copy of the sentences"
        raise sentences.DatasetMissing(f"the paper profile needs (internet, the Hugging Face caches or {where}):\n"
                                       + "\n".join(missing))
    return tasks


def matthews(pred: torch.Tensor, labels: torch.Tensor) -> float:
    """Matthews correlation of binary predictions (GLUE's CoLA score), in [-1, 1]."""
    tp = float(((pred == 1) & (labels == 1)).sum())
    tn = float(((pred == 0) & (labels == 0)).sum())
    fp = float(((pred == 1) & (labels == 0)).sum())
    fn = float(((pred == 0) & (labels == 1)).sum())
    den = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
    return (tp * tn - fp * fn) / den if den else 0.0


def compare(method: str, steps: Any, ann: SentenceOutput, snn: SentenceOutput, labels: torch.Tensor,
            stats: Optional[dict] = None, report: Optional[ConversionReport] = None,
            cost_totals: Optional[dict] = None) -> dict[str, Any]:
    """One Table 3 row: accuracies and loss (points), agreement, logit errors, the cosine
    similarity of ANN and SNN sentence embeddings, Matthews correlations, spike statistics and
    energy per sentence (``cost_totals``: the converted model's :meth:`CostReport.totals`)."""
    o = outcome(method, 0, ann.logits, snn.logits, labels, stats, report, cost_totals)
    cos = F.cosine_similarity(ann.embedding.double(), snn.embedding.double(), dim=1)
    stats = stats or {}
    return {**o.row(), "K or T": steps, "cosine (mean)": float(cos.mean()), "cosine (min)": float(cos.min()),
            "MCC ANN": matthews(ann.logits.argmax(1), labels), "MCC SNN": matthews(snn.logits.argmax(1), labels),
            "sentences": len(labels), "tokens per sentence": stats.get("tokens"),
            "spikes per token": stats.get("spikes_per_token")}


def convert_task(task: Task, method: str, **options: Any) -> tuple[ConvertedModel, ConversionReport]:
    """Convert the task's model with ``method`` on its calibration sentences (padding masked).
    Hugging Face models do not trace with torch.fx: the converter swaps their activation
    modules (``report.traced`` is False) and probes for leftovers; its warning saying so is
    not repeated for every conversion."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.fx could not trace")
        return convert(task.model, method, calibration=task.calibration.batches, token_mask=TOKEN_MASK,
                       strict=task.strict, progress=False, **options)


def short_site(name: str) -> str:
    """A site's name for a plot: its transformer layer (``..._layer_3_...`` -> ``layer 3``)."""
    parts = name.split("_")
    return f"layer {parts[parts.index('layer') + 1]}" if "layer" in parts[:-1] else name


def k_range(report: ConversionReport) -> list[int]:
    """The smallest and largest K of the converted sites (Table 3's K column is one number)."""
    ks = [r.time_steps for r in report.rows]
    return [min(ks), max(ks)]


def evaluate(task: Task, snn: ConvertedModel) -> tuple[SentenceOutput, NetworkStats]:
    """The SNN's outputs on the test sentences and its spike statistics there."""
    snn.reset_stats()
    out = minilm.predict(snn, task.test, progress=True)
    return out, snn.spike_stats()


def method_row(task: Task, ann: SentenceOutput, method: str, **options: Any
               ) -> tuple[dict[str, Any], ConvertedModel, ConversionReport, NetworkStats]:
    """Convert, evaluate and compare one method (its row, the SNN, its report and stats)."""
    snn, report = convert_task(task, method, **options)
    out, stats = evaluate(task, snn)
    steps = k_range(report) if method == "ps" else snn.options.K
    return (compare(method, steps, ann, out, task.test.all_labels, stats.as_dict(), report, snn.cost().totals()),
            snn, report, stats)


def site_table(report: ConversionReport, stats: NetworkStats) -> list[dict[str, Any]]:
    """Per site (by :func:`short_site`): the calibrated interval, K, the share of calibration
    and of test inputs outside the interval, and the test neurons and spikes per sentence."""
    tested = {r["site"]: r for r in stats.rows}
    return [{"site": short_site(r.site), "activation": r.activation, "l": r.l, "r": r.r, "K": r.time_steps,
             "neurons per sentence": tested[r.site]["neurons"], "calibration inputs outside": r.clipped_fraction,
             "test inputs outside": tested[r.site]["clipped_fraction"],
             "spikes per sentence": tested[r.site]["spikes"]} for r in report.rows]


def dy_sweep(task: Task, ann: SentenceOutput, dys: Sequence[float], done: dict[float, dict[str, Any]]
             ) -> list[dict[str, Any]]:
    """PS at each precision dy: K range, accuracy, agreement, embedding similarity (the rows
    of ``done``, by dy, are not computed again)."""
    return [{"dy": dy, **(done[dy] if dy in done else method_row(task, ann, "ps", dy=dy)[0])} for dy in dys]


def site_errors(task: Task, snn: ConvertedModel, ann: SentenceOutput, n: int) -> list[dict[str, Any]]:
    """Which sites carry the error: the SNN with only one site spiking (the others exact), on
    the first ``n`` test sentences."""
    part, rows = task.test.head(n), []
    ann = ann.head(n)
    for name in snn.neurons:
        with snn.only([name]):
            out = minilm.predict(snn, part)
        row = compare("ps", None, ann, out, part.all_labels)
        rows.append({"site": short_site(name), "agreement": row["agreement"],
                     "max |logit error|": row["max |logit error|"], "mean |logit error|": row["mean |logit error|"],
                     "1 - cosine (mean)": 1 - row["cosine (mean)"]})
    return rows


@dataclass
class Run:
    """One task's Table 3 rows (PS, FS, SpikingJelly), the ANN's outputs, and the PS SNN
    with its report, test statistics and per-site table."""

    task: Task
    ann: SentenceOutput
    rows: list[dict[str, Any]]
    snn: ConvertedModel
    report: ConversionReport
    sites: list[dict[str, Any]]


def table3_run(task: Task, dy: float, fs_K: int, sj_steps: int, n_peer: int) -> Run:
    """PS at precision ``dy``, FS at ``fs_K`` steps and SpikingJelly's transformer converter
    at ``sj_steps`` (on the first ``n_peer`` test sentences) on one task."""
    ann = minilm.predict(task.model, task.test)
    ps, snn, report, stats = method_row(task, ann, "ps", dy=dy)
    fs, *_ = method_row(task, ann, "fs", K=fs_K)
    rows = [{**ps, "task": task.title, "method": "PS"}, {**fs, "task": task.title, "method": f"FS (K = {fs_K})"},
            {**spikingjelly_row(task, ann, sj_steps, n_peer), "task": task.title,
             "method": f"SpikingJelly TD-equivalent (T = {sj_steps})"}]
    return Run(task, ann, rows, snn, report, site_table(report, stats))


def spikingjelly_row(task: Task, ann: SentenceOutput, steps: int, n: int) -> dict[str, Any]:
    """SpikingJelly 2.0's transformer converter on the first ``n`` test sentences (its BERT
    example's adapter takes this project's BERT classifier only: a row of its reason otherwise)."""
    if not spikingjelly_transformer.supports(task.model):
        return {"K or T": steps, "note": "not run: SpikingJelly's BERT example adapter takes a BERT "
                                         "SentenceClassifier, not this model"}
    part = task.test.head(n)
    snn = spikingjelly_transformer.convert(task.model, steps)
    out = minilm.predict(snn, part)
    return compare("spikingjelly", steps, ann.head(n), out, part.all_labels)


def spikingjelly_emits() -> str:
    """What SpikingJelly's transformer converter emits (from its code and documentation)."""
    return f"SpikingJelly's transformer converter emits {spikingjelly_transformer.EMITS}."


ROW_COLUMNS = ["K or T", "sentences", "ANN acc", "SNN acc", "loss", "agreement", "cosine (mean)", "MCC ANN",
               "MCC SNN", "spikes per token", "energy (µJ)", "ANN energy (µJ)"]


def rows_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The Table 3 rows by task and method (with a ``note`` column where a row was not run)."""
    notes = ["note"] if any("note" in r for r in rows) else []
    return frame(rows, ["task", "method"], ROW_COLUMNS + notes)


def paper_rows() -> pd.DataFrame:
    """Paper 1's Table 3 as printed (method, network, ANN, SNN, loss, K per dataset)."""
    rows = [{"dataset": key, "method": method, "network": net, "ANN acc": a, "SNN acc": s, "loss": loss, "K": K}
            for key, methods in TABLE3.items() for method, (net, a, s, loss, K) in methods.items()]
    return pd.DataFrame(rows).set_index(["dataset", "method"])


def analog_summary(report: ConversionReport) -> pd.DataFrame:
    """The operations that stay analog by design, counted by kind (calls per forward pass)."""
    counts: dict[str, int] = {}
    for op in report.kept_analog:
        kind = f"{op.op} ({op.kind})"
        counts[kind] = counts.get(kind, 0) + op.calls
    return pd.DataFrame({"calls per forward pass": counts}).rename_axis("analog operation")


def table3_claims(record: Record, runs: Sequence[Run]) -> None:
    """PS's and FS's loss against the paper's on each run's row group (a substitute is named
    in the claim), the ANN accuracy where the model is the paper's, and the paper's other
    groups as not run. The K range follows from dy (Eq. 19): in the rows, not a claim."""
    done = set()
    for run in runs:
        task, (ps, fs) = run.task, run.rows[:2]
        paper, done = TABLE3[task.paper_key], done | {task.paper_key}
        label = f"{task.paper_key} ({task.substitute})" if task.substitute else task.paper_key
        why = "the substitute's numbers" if task.substitute else "another fine-tuned checkpoint than the paper's"
        record.compare(f"{label}, PS: loss (points)", paper["PS"][3], round(ps["loss"], 3), LOSS_TOLERANCE, why=why)
        if not task.substitute:
            record.compare(f"{label}, PS: ANN accuracy", paper["PS"][1], round(ps["ANN acc"], 2), 0.5, why=why)
        if "FS" in paper:
            *_, fs_loss, fs_K = paper["FS"]
            ours_K = "" if fs["K or T"] == fs_K else f"; ours at K = {fs['K or T']}"  # the notebook's fs_K
            record.compare(f"{label}, FS (K = {fs_K}{ours_K}): loss (points)", fs_loss, round(fs["loss"], 3),
                           LOSS_TOLERANCE, why=f"{why}; FS's GELU parameters from this package's table, the paper's "
                                               "from a run of the FS authors' code")
            record.compare(f"{label}: PS loses less than FS", True, abs(ps["loss"]) < abs(fs["loss"]))
    for key, methods in TABLE3.items():
        if key in done:
            continue
        why = (f"needs the paper's dataset and a fine-tuned hub checkpoint: the paper profile, with the "
               f"notebook's parameter {key}_model naming one")
        record.compare(f"{key}, PS: loss (points)", methods["PS"][3], None, why=why)
        if "FS" in methods:
            record.compare(f"{key}, FS (K = {methods['FS'][4]}): loss (points)", methods["FS"][3], None, why=why)
            record.compare(f"{key}: PS loses less than FS", True, None, why=why)
