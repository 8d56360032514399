"""The model that edgeadapt trains and exports.

A frozen encoder (optionally wrapped by peft adapters), an optional soft prompt of ``k`` learnable
vectors placed in front of the word embeddings (before position and token-type embeddings are
added), and a head with two outputs (``qa_outputs``): for QA a span head on every token (the first ``k``
start/end logits belong to the prompt and are dropped, so labels and logits always index the real tokens), for
``pawsx`` a pair head on the mean of the real tokens' last hidden states (:mod:`edgeadapt.tasks`).

Positions (``prompt_positions``): ``tail`` gives the prompt the last ``k`` rows of the position table and the text
the positions it has without a prompt, so the text looks to the encoder as it did in the source stage; ``shift``
numbers prompt and text together from the start (the text moves ``k`` places on), which costs accuracy early in
training (BENCHMARKS.md, section 6).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class QAOutput:
    """Start and end logits over the real tokens ``[batch, seq]``, and the loss when labels were given."""

    start_logits: torch.Tensor
    end_logits: torch.Tensor
    loss: torch.Tensor | None = None


@dataclass
class PairOutput:
    """Label logits ``[batch, 2]`` of sentence pairs (``edgeadapt.tasks.PAIR_LABELS``), and the loss when labels
    were given."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` ``[batch, seq, hidden]`` over the positions ``attention_mask`` marks ``[batch, hidden]``
    (the pair head's pooling and the alignment loss's features; the exported graph uses it too)."""
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def position_offset(encoder: nn.Module) -> int:
    """Position id of a text's first token: ``padding_idx + 1`` in the RoBERTa / XLM-R family, else 0."""
    for module in encoder.modules():
        if hasattr(module, "position_embeddings") and getattr(module, "padding_idx", None) is not None:
            return int(module.padding_idx) + 1
    return 0


@dataclass(frozen=True)
class PromptPlacement:
    """Where an encoder's soft prompt sits: ``scheme`` (``tail`` or ``shift``) and, for ``tail``, the encoder's
    first text position and position-table size (read once from the encoder)."""

    scheme: str
    offset: int
    max_positions: int

    @classmethod
    def of(cls, encoder: nn.Module, scheme: str) -> PromptPlacement:
        return cls(scheme, position_offset(encoder), int(encoder.config.max_position_embeddings))

    def position_ids(self, seq: int, k: int, device: torch.device) -> torch.Tensor | None:
        """``[1, k + seq]`` ids for ``tail`` (prompt on the table's last ``k`` rows, text from ``offset`` on);
        None for ``shift`` (the encoder numbers prompt and text together)."""
        if self.scheme != "tail":
            return None
        prompt = torch.arange(self.max_positions - k, self.max_positions, device=device)
        text = torch.arange(self.offset, self.offset + seq, device=device)
        return torch.cat([prompt, text]).unsqueeze(0)


def prepend_prompt(
    embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor,
    prompt: torch.Tensor,
    placement: PromptPlacement,
) -> dict[str, torch.Tensor]:
    """Encoder keyword inputs with the ``[k, hidden]`` prompt in front of the word embeddings: masks extended to
    match, and position ids where the placement sets them. The training model and the exported graph share it."""
    (batch, seq), k = attention_mask.shape, prompt.shape[0]
    inputs = {
        "inputs_embeds": torch.cat([prompt.to(embeds.dtype).unsqueeze(0).expand(batch, -1, -1), embeds], dim=1),
        "attention_mask": torch.cat([attention_mask.new_ones(batch, k), attention_mask], dim=1),
        "token_type_ids": torch.cat([token_type_ids.new_zeros(batch, k), token_type_ids], dim=1),
    }
    position_ids = placement.position_ids(seq, k, embeds.device)
    if position_ids is not None:
        inputs["position_ids"] = position_ids
    return inputs


class PromptedQAModel(nn.Module):
    """Encoder + optional soft prompt + head (``qa_outputs``: hidden -> 2): span start/end logits per token for
    ``task`` ``qa``, label logits of the pooled pair for ``pawsx``."""

    def __init__(
        self,
        encoder: nn.Module,
        prompt_len: int = 0,
        prompt_init: torch.Tensor | None = None,
        prompt_positions: str = "tail",
        task: str = "qa",
    ):
        super().__init__()
        self.encoder = encoder
        self.task = task
        self.placement = PromptPlacement.of(encoder, prompt_positions)
        hidden = self.hidden_size
        self.prompt: nn.Parameter | None = None
        if prompt_len > 0:
            init = prompt_init if prompt_init is not None else torch.zeros(prompt_len, hidden)
            if tuple(init.shape) != (prompt_len, hidden):
                raise ValueError(f"prompt init has shape {tuple(init.shape)}, expected {(prompt_len, hidden)}")
            self.prompt = nn.Parameter(init.detach().clone().float())
        self.qa_outputs = nn.Linear(hidden, 2)

    @property
    def hidden_size(self) -> int:
        return int(self.encoder.config.hidden_size)

    @property
    def prompt_positions(self) -> str:
        return self.placement.scheme

    @property
    def prompt_len(self) -> int:
        return 0 if self.prompt is None else int(self.prompt.shape[0])

    def _inputs_with_prompt(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """Word embeddings with the prompt in front, masks extended to match, and position ids (``tail``)."""
        embeds = self.encoder.get_input_embeddings()(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        if self.prompt is None:
            return {"inputs_embeds": embeds, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        return prepend_prompt(embeds, attention_mask, token_type_ids, self.prompt, self.placement)

    def hidden_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Last-layer hidden states of the real tokens ``[batch, seq, hidden]`` (prompt positions dropped)."""
        inputs = self._inputs_with_prompt(input_ids, attention_mask, token_type_ids)
        hidden = self.encoder(**inputs).last_hidden_state
        return hidden[:, self.prompt_len :]

    def pooled_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean of the last-layer hidden states over real (non-padding, non-prompt) tokens ``[batch, hidden]``."""
        return masked_mean(self.hidden_states(input_ids, attention_mask, token_type_ids), attention_mask)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> QAOutput | PairOutput:
        if self.task != "qa":
            logits = self.qa_outputs(self.pooled_features(input_ids, attention_mask, token_type_ids))
            loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
            return PairOutput(logits=logits, loss=loss)
        hidden = self.hidden_states(input_ids, attention_mask, token_type_ids)
        start_logits, end_logits = self.qa_outputs(hidden).split(1, dim=-1)
        start_logits, end_logits = start_logits.squeeze(-1), end_logits.squeeze(-1)
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = span_loss(start_logits, end_logits, start_positions, end_positions)
        return QAOutput(start_logits=start_logits, end_logits=end_logits, loss=loss)


def span_loss(
    start_logits: torch.Tensor, end_logits: torch.Tensor, start_positions: torch.Tensor, end_positions: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy of start and end positions; positions index the real tokens (prompt excluded)."""
    seq = start_logits.shape[1]
    start = start_positions.clamp(0, seq)
    end = end_positions.clamp(0, seq)
    loss_fn = nn.CrossEntropyLoss(ignore_index=seq)
    return (loss_fn(start_logits, start) + loss_fn(end_logits, end)) / 2
