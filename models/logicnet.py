"""LogicNet: which of the game's events does this step trigger?

A small convolutional network over the last context frames (and the spatial module's map
view, where that module is on) with the action: per event class of the GameSpec, a
distribution over how often it fires this step (0 .. max_count). It decides; the record
does the arithmetic.
"""

from __future__ import annotations

import itertools

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .chance import ChanceEmbedding


class LogicNet(ModelMixin, ConfigMixin):
    """Context frames + action -> event counts. Saved as safetensors + config.json."""

    @register_to_config
    def __init__(
        self,
        frame_size: int = 64,
        context_frames: int = 2,
        extra_channels: int = 0,
        num_actions: int = 3,
        event_names: tuple[str, ...] = (),
        max_count: int = 2,
        width: int = 32,
        chance: tuple[int, ...] = (),
    ):
        super().__init__()
        channels = [3 * context_frames + extra_channels, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(channels):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.SiLU()]
        self.features = nn.Sequential(*layers, nn.Flatten())
        feature_size = channels[-1] * (frame_size // 16) ** 2
        self.action_embed = nn.Embedding(num_actions, feature_size)
        if chance:  # the rules' random draws: whether a wandering ghost steps onto Pac-Man
            self.chance_embed = ChanceEmbedding(tuple(chance), feature_size)
        self.head = nn.Sequential(
            nn.Linear(feature_size, 256),
            nn.SiLU(),
            nn.Linear(256, len(event_names) * (max_count + 1)),
        )

    def forward(
        self,
        context: torch.Tensor,
        action: torch.Tensor,
        extra: torch.Tensor | None = None,
        chance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B, num_events, max_count + 1) from context (B, 3K, H, W) in [-1, 1],
        action (B,) and, where the game has them, the step's draws (B, len(chance))."""
        inputs = context if extra is None else torch.cat([context, extra], dim=1)
        told = self.action_embed(action)
        if self.config.chance:
            told = told + self.chance_embed(chance)
        features = self.features(inputs) * (1 + told)
        logits = self.head(features)
        return logits.view(len(logits), len(self.config.event_names), self.config.max_count + 1)

    @torch.inference_mode()
    def predict(
        self, context: torch.Tensor, action: torch.Tensor, extra=None, chance=None
    ) -> torch.Tensor:
        """The most likely count (B, num_events) of each event."""
        return self(context, action, extra, chance).argmax(dim=-1)
