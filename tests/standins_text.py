"""Stand-ins for Table 3's ``paper`` profile (:mod:`psnn_lib.paper1.language`), offline: tiny,
randomly initialised Hugging Face classifiers saved as a hub checkpoint is, and the tasks'
sentence files in the layout :func:`psnn_lib.models.sentences.paper_task` reads from a
folder. Nothing here is a result: random weights, real sentences with random labels.

Importable as ``from standins_text import ...`` by the tests (pytest puts ``tests/`` on
``sys.path``: it has no ``__init__.py``) and by a script that puts ``tests/`` there.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from psnn_lib.models import minilm, sentences

# the stand-in architecture: hidden 32, 2 layers of 2 heads, GELU
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "hidden_act": "gelu"}
# each task's files in one format, so that the three readers are all exercised
TASK_FORMATS = {"sst2": ".csv", "cola": ".parquet", "sst5": ".jsonl"}
SST5_LABEL_TEXT = ("very negative", "negative", "neutral", "positive", "very positive")


def tiny_classifier(folder: Path, kind: str, num_labels: int, seed: int = 0) -> Path:
    """Save a tiny random ``BertForSequenceClassification`` (``kind="bert"``) or
    ``RobertaForSequenceClassification`` (``"roberta"``) with MiniLM's BERT WordPiece tokenizer
    (offline here) into ``folder``, which ``minilm.hub_classifier(str(folder))`` loads. The
    RoBERTa stand-in takes the tokenizer's vocabulary and special tokens: its padding index is
    the tokenizer's, so its position ids (counted from padding index + 1) skip the padding."""
    import transformers  # noqa: PLC0415 (optional, as in the library)

    tok = minilm.tokenizer()
    special = {"vocab_size": len(tok), "pad_token_id": tok.pad_token_id, "num_labels": num_labels}
    if kind == "bert":
        model_cls, config = transformers.BertForSequenceClassification, transformers.BertConfig(
            **TINY, **special, max_position_embeddings=tok.model_max_length)
    elif kind == "roberta":
        # RoBERTa's positions run from pad + 1 to pad + length: as the hub's RoBERTa, 2 more than its length
        model_cls, config = transformers.RobertaForSequenceClassification, transformers.RobertaConfig(
            **TINY, **special, bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
            max_position_embeddings=tok.model_max_length + tok.pad_token_id + 2)
    else:
        raise ValueError(f"unknown kind {kind!r}: bert or roberta")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    with minilm._quiet_transformers():  # no progress bar of the saving
        model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _snippets() -> list[str]:
    """The distinct fresh and rotten Rotten Tomatoes snippets, in the CSV's order."""
    rows = pd.read_csv(sentences.rotten_tomatoes_csv())
    return list(dict.fromkeys(rows.loc[rows["category"].isin(sentences.RT_LABELS), "text"]))


def _write(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)


def sentence_sets(folder: Path, n: int = 64, seed: int = 0) -> Path:
    """Write ``n`` sentences of each task's training split and of the split the paper reports
    (sst2 and cola: validation, sst5: test) into ``folder`` in the layout of
    :func:`~psnn_lib.models.sentences.paper_task`, with the hub's column names (:data:`TASK_FORMATS`:
    sst2 as CSV, cola as Parquet, sst5 as JSON lines): real Rotten Tomatoes snippets, no
    sentence in two files, and seeded random labels 0 .. classes - 1. Returns ``folder``."""
    texts, rng, used = _snippets(), np.random.default_rng(seed), 0
    for name, suffix in TASK_FORMATS.items():
        task = sentences.PAPER_TASKS[name]
        for split in ("train", task.split):
            part, used = texts[used:used + n], used + n
            if len(part) < n:
                raise ValueError(f"{n} sentences per file is more than the {len(texts)} snippets hold")
            labels = rng.integers(0, task.classes, n)
            if name == "sst5":
                frame = pd.DataFrame({"text": part, "label": labels,
                                      "label_text": [SST5_LABEL_TEXT[y] for y in labels]})
            else:
                frame = pd.DataFrame({"sentence": part, "label": labels, "idx": range(n)})
            _write(frame[list(task.columns)], folder / name / f"{split}{suffix}")
    return folder
