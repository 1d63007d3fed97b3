"""The rules' random draws as a network input (GameSpec.chance), like the action."""

from __future__ import annotations

import torch
from torch import nn


class ChanceEmbedding(nn.Module):
    """Draws (B, len(sizes)) long, draw i in 0..sizes[i]-1 -> the sum of one learned vector
    per draw (B, dim). Starts at zero: a network given it first computes what it did
    without it (a warm start from one trained before the draws were told)."""

    def __init__(self, sizes: tuple[int, ...], dim: int):
        super().__init__()
        self.embed = nn.Embedding(max(sum(sizes), 1), dim)
        offsets = torch.tensor([0, *sizes[:-1]], dtype=torch.long).cumsum(0) if sizes else None
        self.register_buffer("offsets", offsets, persistent=False)
        nn.init.zeros_(self.embed.weight)

    def forward(self, chance: torch.Tensor) -> torch.Tensor:
        return self.embed(chance + self.offsets).sum(dim=1)
