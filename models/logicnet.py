"""LogicNet: which of the game's events does this step trigger?

A small convolutional network over the last context frames (and the spatial module's map
view, where that module is on) with the action: per event class of the GameSpec, a
distribution over how often it fires this step (0 .. max_count). It decides; the record
does the arithmetic.

Where the camera follows a player (GameSpec.follow), `focus` > 0 adds a closer look: a
`focus` x `focus` pixel window of the context frames centred on the player's place (which
the record knows), at full resolution. What happens to the player (a wall or a pellet
ahead, a ghost a tile or two away) then lies at the same place in the window wherever
the player stands on screen, instead of somewhere in a summary of the whole frame.

An observer (`observes`) is a LogicNet whose last input frame is the step's outcome, not
its start: it reads which events a frame just drawn shows (everyone back at the start: a
death), where a LogicNet that decides must foresee them. An `aligned` observer gets the
outcome moved against the step's camera move, so that every input frame shows a world
tile at the same place (a ghost that kept still stands still in the window, wherever the
camera went).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .chance import ChanceEmbedding
from .tiles import TileSet

TILE_EMBED = 16  # features per tile id and frame (with `tiles`)


class LogicNet(TileSet, ModelMixin, ConfigMixin):
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
        focus: int = 0,
        hud_height: int = 0,
        observes: bool = False,
        read_tiles: bool = False,
        tile_size: int = 4,
        max_tiles: int = 128,
        aligned: bool = False,
    ):
        super().__init__()
        if aligned and not observes:
            raise ValueError("aligned moves the outcome an observer reads: it needs observes")
        channels = [3 * context_frames + extra_channels, width, 2 * width, 4 * width, 4 * width]
        self.features = _convs(channels, (2, 2, 2, 2))
        feature_size = channels[-1] * (frame_size // 16) ** 2
        if focus % (tile_size if read_tiles else 4) or (read_tiles and not focus):
            raise ValueError(
                f"focus must be a multiple of {tile_size if read_tiles else 4} pixels (and "
                f"given, to read tiles), got {focus}"
            )
        if read_tiles:  # the window's tile ids (and "outside the frame") -> features
            self.register_tile_set(frame_size, tile_size, max_tiles)
            self.tile_embed = nn.Embedding(max_tiles + 2, TILE_EMBED)
            window = context_frames * (focus // tile_size) ** 2 * TILE_EMBED
            self.focus_features = nn.Sequential(
                nn.Flatten(), nn.Linear(window, 16 * width), nn.SiLU()
            )
            feature_size += 16 * width  # after the whole frame's features
        elif focus:  # full resolution first, then two halvings
            self.focus_features = _convs([channels[0], width, 2 * width, 2 * width], (1, 2, 2))
            feature_size += 2 * width * (focus // 4) ** 2
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
        player: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B, num_events, max_count + 1) from context (B, 3K, H, W) in [-1, 1],
        action (B,), where the game has them the step's draws (B, len(chance)) and, with
        `focus`, the player's view pixel (x, y) below the HUD in the last frame (B, 2)."""
        inputs = context if extra is None else torch.cat([context, extra], dim=1)
        told = self.action_embed(action)
        if self.config.chance:
            told = told + self.chance_embed(chance)
        features = self.features(inputs)
        if self.config.read_tiles:
            window = self.focus_features(self.tile_embed(self._tiles_around(context, player)))
            features = torch.cat([features, window], dim=1)
        elif self.config.focus:
            window = self.focus_features(self._around(inputs, player))
            features = torch.cat([features, window], dim=1)
        logits = self.head(features * (1 + told))
        return logits.view(len(logits), len(self.config.event_names), self.config.max_count + 1)

    def _around(self, inputs: torch.Tensor, player: torch.Tensor) -> torch.Tensor:
        """The focus window of `inputs` centred on each row's player pixel; outside the
        frame it is 0 (neither black nor any colour the frame holds)."""
        height, width = inputs.shape[-2:]
        xs = player[:, 0].clamp(0, width)
        ys = (player[:, 1] + self.config.hud_height).clamp(0, height)
        return _windows(inputs, xs, ys, self.config.focus, 0)

    def tile_tables(self) -> list[tuple[torch.Tensor, int]]:
        return [(self.tile_embed.weight, len(self.tile_embed.weight))]

    def _tiles_around(self, inputs: torch.Tensor, player: torch.Tensor) -> torch.Tensor:
        """The tile ids (B, K, w, w) of the context frames in the focus window (w tiles)
        around each row's player tile; outside the frame one more id (the set's size + 1)."""
        t, size = self.config.tile_size, self.config.focus // self.config.tile_size
        frames = inputs.unflatten(1, (-1, 3))  # (B, K, 3, H, W)
        ids = self.tile_ids(frames.flatten(0, 1)).view(len(frames), -1, self.grid, self.grid)
        cols = (player[:, 0] // t).clamp(0, self.grid - 1)
        rows = ((player[:, 1] + self.config.hud_height) // t).clamp(0, self.grid - 1)
        return _windows(ids, cols, rows, size, self.unknown + 1)

    @torch.inference_mode()
    def predict(
        self, context: torch.Tensor, action: torch.Tensor, extra=None, chance=None, player=None
    ) -> torch.Tensor:
        """The most likely count (B, num_events) of each event."""
        return self(context, action, extra, chance, player).argmax(dim=-1)


def _windows(
    grid: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, size: int, fill: float
) -> torch.Tensor:
    """The `size` x `size` window of each row of `grid` (B, C, H, W) centred on its (xs,
    ys) (for an even size, the centre's right and lower neighbour); `fill` outside."""
    half = size // 2
    padded = F.pad(grid, (half, half, half, half), value=fill)
    corners = enumerate(zip(xs.tolist(), ys.tolist(), strict=True))  # in `padded`
    return torch.stack([padded[i, :, y : y + size, x : x + size] for i, (x, y) in corners])


def _convs(channels: list[int], strides: tuple[int, ...]) -> nn.Sequential:
    """3x3 convolutions with SiLU between `channels`, then flattened."""
    layers: list[nn.Module] = []
    for (c_in, c_out), stride in zip(itertools.pairwise(channels), strides, strict=True):
        layers += [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.SiLU()]
    return nn.Sequential(*layers, nn.Flatten())
