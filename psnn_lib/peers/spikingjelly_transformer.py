"""SpikingJelly 2.0's transformer conversion of the sentence classifier, as its BERT example does it.

``spikingjelly.activation_based.ann2snn.Converter`` with ``TransformerTDEquivalentRecipe``
(the SpikeZIP-TF accumulate-and-difference idea) traces a model with ``torch.fx`` and
replaces its operators by "TD-equivalent" ones. The recipe cannot trace
:class:`~psnn_lib.models.minilm.SentenceClassifier` itself: Hugging Face's BERT is not
symbolically traceable, and ``torch.fx`` stops (TypeError or TraceError) before any
operator is replaced: ``BertEmbeddings`` slices ``position_ids`` with a traced length,
``BertModel.forward``'s config-defaults decorator writes into its ``**kwargs`` (a Proxy
when traced) and ``BertSelfAttention`` unpacks a traced shape, before its SDPA call. The
GELU is no obstacle (``BertIntermediate`` alone converts, its ``F.gelu`` to ``TDGELU``);
the recipe's own SDPA support is never reached. So :func:`convert` does what SpikingJelly's example
``ann2snn/examples/bert_sst2_transformer_td_equivalent.py`` does: it rebuilds the encoder
with the example's own ``FXFriendlyBertEncoder`` (eager attention: matmul, scale, additive
mask, ``torch.softmax``, matmul; the pretrained modules reused) and converts everything
after the embedding layer. Here that is the encoder, mean pooling (written as a mean over
tokens weighted by ``length * mask / real tokens``, a form the recipe's step-mode rewrite
accepts, where ``sum(1)`` is refused) and the linear head. The embeddings (word + position
+ token type and their LayerNorm) stay an ANN, computed once per batch outside the
converted graph, as in the example; so do the pooling weights and the additive attention
mask, built as ``get_extended_attention_mask`` built it (transformers 5 removed that
method, so the example's own ``make_embedding_batch`` fails).

Converted: every ``nn.Linear`` (36 in the encoder, and the head) to ``TDLinear``, every
``nn.LayerNorm`` (12) to ``TDLayerNorm``, the ``F.gelu`` inside transformers'
``GELUActivation`` (6) to ``TDGELU``, ``torch.softmax`` (6) to ``TDSoftmax``, the two
``torch.matmul`` of each attention (12) to ``SNNMatrixOperator``; views, permutes and the
pooling mean become per-step shape operations. Left as they were, applied to each step's
difference: the residual additions, the division by sqrt(head size), the pooling weights'
product, the attention mask's addition (added at every step, so a padded key's score
sums to (t + 1) times float32's minimum, -inf from step 1: still weight 0) and dropout
(identity in eval mode). No neuron is inserted anywhere: see :data:`EMITS`.

Run (the converted model is called like the classifier; ``minilm.predict`` runs it on
encoded sentences) as the example runs it: multi-step mode, the embedding output presented
at step 0 and zeros at steps 1..T-1 (``make_first_real_then_zero_sequence``), the network reset before and after every
batch (a TD operator carries its running sums on to the next input of the same shape), and
the logits and the embedding read out as their sums over the T steps. The encoding matters:
the embedding output presented at every step would make the running sum at step k the
ANN's output for k times the embedding output.

Install: ``pip install --no-deps spikingjelly==2.0.0 loguru==0.7.3``
(pinned in ``requirements-data.txt``).
"""
from __future__ import annotations

import copy
from collections import Counter
from typing import Any, Optional

import torch
from torch import nn

from ..models.minilm import SentenceClassifier, SentenceOutput
from .spikingjelly import _spikingjelly

# the time steps of SpikingJelly's BERT example (its --time-steps default)
TIME_STEPS = 8

EMITS = ("floating-point temporal differences, no spikes: each converted operator f keeps the running "
         "sum of its inputs and emits f(sum up to step t) - f(sum up to step t-1) (for a matmul, the "
         "product of the two running sums, differenced); fed the embedding output at step 0 and zeros "
         "after it, step 0 carries the ANN's logits and embedding and steps 1..T-1 are exactly 0.0, so "
         "the sum over T steps is the ANN's output at every T and T only multiplies the cost")


def _example() -> Any:
    """SpikingJelly's BERT example module (FX-friendly encoder, input encoding)."""
    _spikingjelly()
    from spikingjelly.activation_based.ann2snn.examples import (  # noqa: PLC0415
        bert_sst2_transformer_td_equivalent as example,
    )
    return example


class _FromEmbeddings(nn.Module):
    """What the recipe converts: the example's FX-friendly encoder, mean pooling and the head."""

    def __init__(self, model: SentenceClassifier) -> None:
        super().__init__()
        self.encoder = _example().FXFriendlyBertEncoder(model.encoder.encoder, model.encoder.config)
        self.head = model.head

    def forward(self, embedding_output: torch.Tensor, extended_attention_mask: torch.Tensor,
                pool_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(embedding_output, extended_attention_mask)
        embedding = (hidden * pool_weights).mean(1)
        return self.head(embedding), embedding


class TDSentenceClassifier(nn.Module):
    """The ANN embeddings and SpikingJelly's converted rest, called like the classifier:
    the sums over ``time_steps`` steps of the logits and the embedding."""

    def __init__(self, embeddings: nn.Module, converted: nn.Module, time_steps: int) -> None:
        super().__init__()
        self.embeddings = embeddings
        self.converted = converted
        self.time_steps = time_steps

    def steps(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              token_type_ids: Optional[torch.Tensor] = None) -> SentenceOutput:
        """The per-step outputs, (T, batch, ...), the network reset before and after the batch."""
        sj = _spikingjelly()
        embedding_output = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        mask = attention_mask.to(embedding_output.dtype)
        extended = (1.0 - mask[:, None, None, :]) * torch.finfo(mask.dtype).min
        pool_weights = (mask * mask.shape[1] / mask.sum(1, keepdim=True).clamp_min(1)).unsqueeze(-1)
        sj.functional.reset_net(self.converted)
        x_seq = _example().make_first_real_then_zero_sequence(embedding_output, self.time_steps)
        logits, embedding = self.converted(x_seq, extended, pool_weights)
        sj.functional.reset_net(self.converted)
        return SentenceOutput(logits, embedding)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: Optional[torch.Tensor] = None) -> SentenceOutput:
        logits, embedding = self.steps(input_ids, attention_mask, token_type_ids)
        return SentenceOutput(logits.sum(0), embedding.sum(0))


def supports(model: nn.Module) -> bool:
    """Whether the example's adapter takes ``model``: a SentenceClassifier with a BERT encoder."""
    return isinstance(model, SentenceClassifier) and getattr(model.encoder.config, "model_type", None) == "bert"


def convert(model: SentenceClassifier, time_steps: int = TIME_STEPS) -> TDSentenceClassifier:
    """SpikingJelly's TD-equivalent conversion of a copy of ``model`` (a BERT
    :class:`~psnn_lib.models.minilm.SentenceClassifier`), run for ``time_steps`` steps."""
    if not isinstance(time_steps, int) or isinstance(time_steps, bool) or time_steps < 1:
        raise ValueError(f"time_steps must be a positive int, got {time_steps!r}")
    if not supports(model):
        raise TypeError("SpikingJelly's BERT example adapter converts a SentenceClassifier with a BERT encoder, "
                        f"got {type(model).__name__}")
    sj = _spikingjelly()
    ann = copy.deepcopy(model).eval()
    recipe = sj.ann2snn.TransformerTDEquivalentRecipe(time_steps=time_steps)
    converted = sj.ann2snn.Converter(recipe).convert(_FromEmbeddings(ann).eval()).eval()
    sj.functional.set_step_mode(converted, "m")
    return TDSentenceClassifier(ann.encoder.embeddings, converted, time_steps).eval()


def operator_counts(snn: TDSentenceClassifier) -> dict[str, int]:
    """How many modules of each type the converted graph holds (its TD operators, the
    step-mode shape operations, the dropouts it left)."""
    return dict(Counter(type(m).__name__ for m in snn.converted.modules() if not list(m.children())))
