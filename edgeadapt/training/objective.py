"""The training objective ``L = L_task + lambda * L_align + beta * ||theta - theta_0||^2`` as one module.

Everything that needs gradients runs inside :meth:`StageObjective.forward`, so that one
``DistributedDataParallel`` wrapper (from accelerate) sees every trainable parameter used.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeadapt.training.model import PromptedQAModel


def alignment_loss(source_features: torch.Tensor, target_features: torch.Tensor) -> torch.Tensor:
    """Mean over pairs of the squared L2 distance between pooled features ``[batch, hidden]``."""
    return (source_features - target_features).pow(2).sum(dim=-1).mean()


def l2_anchor(params: list[nn.Parameter], anchors: list[torch.Tensor]) -> torch.Tensor:
    """``sum ||theta - theta_0||^2`` over the trainable parameters."""
    total = params[0].new_zeros(())
    for param, anchor in zip(params, anchors, strict=True):
        total = total + (param - anchor).pow(2).sum()
    return total


class StageObjective(nn.Module):
    """Wraps the model; ``forward`` returns every loss part and the weighted total."""

    def __init__(self, model: PromptedQAModel, align_weight: float, l2_weight: float):
        super().__init__()
        self.model = model
        self.align_weight = align_weight
        self.l2_weight = l2_weight
        self._trainable = [p for p in model.parameters() if p.requires_grad]
        for i, param in enumerate(self._trainable):
            self.register_buffer(f"anchor_{i}", param.detach().clone(), persistent=False)

    def anchors(self) -> list[torch.Tensor]:
        return [getattr(self, f"anchor_{i}") for i in range(len(self._trainable))]

    def forward(
        self, task: dict[str, torch.Tensor], align: dict[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        out = self.model(**task)
        parts = {"task": out.loss}
        total = out.loss
        if align is not None:
            source = self.model.pooled_features(align["source_ids"], align["source_mask"])
            target = self.model.pooled_features(align["target_ids"], align["target_mask"])
            parts["align"] = alignment_loss(source, target)
            total = total + self.align_weight * parts["align"]
        parts["l2"] = l2_anchor(self._trainable, self.anchors())
        total = total + self.l2_weight * parts["l2"]
        parts["total"] = total
        return parts
