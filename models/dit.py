"""The generator: a pixel-space diffusion transformer that draws the next frame.

After facebookresearch/DiT's models.py: patch embedding, transformer blocks with
adaLN-Zero conditioning, explicit initialisation, and size presets in one registry.
What is particular to maag:

- Input: the noisy residual channel-concatenated with the base image (the last frame, or
  the spatial module's map view where it knows the pixel), the K context frames and any
  extra channels (the map canvas and its known-mask). The network predicts the clean
  residual (x0-style): next frame = base + residual.
- Motion-compensated skip: where the game's view scrolls (GameSpec.scroll), the network
  also weighs copies of the base shifted by one scroll step in each direction (the HUD
  rows stay put), so copying a scrolled scene costs it one softmax, not a learned warp.
- Conditioning vector: flow time, the action and the context-corruption level, summed and
  fed to adaLN-Zero. Extra condition tokens (the numerical module's digit tokens) are
  appended to the token sequence and read by attention; only patch tokens are decoded.
  With `cond_in_adaln` each condition token's own embedding (every slot's ids are its
  own) is also summed into the conditioning vector: a step's event then modulates every
  block at once instead of waiting to be attended to.
- The player where the record puts it (`player_tile`, the player's square tile in pixels;
  0: not told): the input builders (`maag.spatial.generator_inputs`) draw the last frame's
  player tile into the base where the record moved the player; the network reads it there.
- Aligned context (`aligned_context`): each context frame's scene is first moved into the
  camera window of the frame to draw, by the camera moves the caller passes. A sprite that
  walks the world then walks steadily across the context frames, whatever the camera did,
  as a ball does on a screen that never scrolls.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .chance import ChanceEmbedding

PRESETS: dict[str, dict[str, int]] = {
    "XXS": {"hidden_size": 64, "depth": 2, "num_heads": 2},  # smoke tests and CI
    "XS": {"hidden_size": 128, "depth": 4, "num_heads": 4},
    "S": {"hidden_size": 256, "depth": 6, "num_heads": 4},
    "M": {"hidden_size": 384, "depth": 8, "num_heads": 6},
    "L": {"hidden_size": 512, "depth": 12, "num_heads": 8},
}


def sincos_embedding(values: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features (N, dim) of scalar `values` (N,)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=values.device) / half)
    args = values.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ScalarEmbedder(nn.Module):
    """A scalar in [0, 1] (flow time, corruption level) -> a conditioning vector."""

    def __init__(self, hidden_size: int, frequency_size: int = 256):
        super().__init__()
        self.frequency_size = frequency_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        return self.mlp(sincos_embedding(value * 1000.0, self.frequency_size))


def grid_position_embedding(dim: int, grid: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding (grid*grid, dim), as in DiT/MAE."""
    coords = torch.arange(grid, dtype=torch.float32)
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    return torch.cat(
        [sincos_embedding(ys.flatten(), dim // 2), sincos_embedding(xs.flatten(), dim // 2)], dim=1
    )


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class Block(nn.Module):
    """Transformer block with adaLN-Zero: the conditioning sets shift, scale and gate."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        mlp_hidden = int(hidden_size * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(hidden_size, mlp_hidden),
            nn.GELU(approximate="tanh"),
            nn.Linear(mlp_hidden, hidden_size),
        )
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.adaLN_modulation(c).chunk(6, 1)
        b, n, d = x.shape
        qkv = self.qkv(modulate(self.norm1(x), shift_a, scale_a))
        q, k, v = qkv.view(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        x = x + gate_a[:, None] * self.proj(attn)
        return x + gate_m[:, None] * self.mlp(modulate(self.norm2(x), shift_m, scale_m))


class FinalLayer(nn.Module):
    def __init__(self, hidden_size: int, patch_size: int, out_channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm(x), shift, scale))


def init_dit(network: nn.Module, tables: list[nn.Embedding]) -> None:
    """DiT's init, for a network with its trunk (`run_trunk`) and `final` layer: xavier
    linears, small embeddings (`tables` and the condition tokens), the scalar embedders'
    MLPs small, adaLN and the output zeroed (each block starts as the identity)."""

    def basic(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)

    network.apply(basic)
    for table in tables:
        nn.init.normal_(table.weight, std=0.02)
    if network.config.num_cond_tokens:
        nn.init.normal_(network.cond_embed.weight, std=0.02)
        nn.init.normal_(network.cond_pos, std=0.02)
    if hasattr(network, "cond_adaln"):  # zero: a warm-started network draws as its source did
        nn.init.zeros_(network.cond_adaln.weight)
    for embedder in (network.time_embed, network.corruption_embed):
        nn.init.normal_(embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(embedder.mlp[2].weight, std=0.02)
    for block in network.blocks:
        nn.init.zeros_(block.adaLN_modulation[-1].weight)
        nn.init.zeros_(block.adaLN_modulation[-1].bias)
    for layer in (network.final.adaLN_modulation[-1], network.final.linear):
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)


def run_trunk(
    network: nn.Module, x: torch.Tensor, time: torch.Tensor, corruption: torch.Tensor,
    action: torch.Tensor, chance: torch.Tensor | None, cond_ids: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The transformer blocks of a generator over its frame tokens x (B, N, D): the
    conditioning vector (B, D) from `time`, the corruption level, the action and the rules'
    draws (and, with `cond_in_adaln`, the condition tokens), the condition tokens appended
    to the sequence; returns (x's N tokens after the blocks, the conditioning vector)."""
    c = network.time_embed(time) + network.corruption_embed(corruption)
    c = c + network.action_embed(action)
    if network.config.chance:
        c = c + network.chance_embed(chance)
    if hasattr(network, "cond_adaln") and cond_ids is not None:
        c = c + network.cond_adaln(cond_ids).sum(dim=1)
    count = x.shape[1]
    if cond_ids is not None:
        x = torch.cat([x, network.cond_embed(cond_ids) + network.cond_pos], dim=1)
    for block in network.blocks:
        x = block(x, c)
    return x[:, :count], c


class FrameDiT(ModelMixin, ConfigMixin):
    """Next-frame generator. Saved and loaded as safetensors + config.json (diffusers)."""

    @register_to_config
    def __init__(
        self,
        frame_size: int = 64,
        patch_size: int = 8,
        context_frames: int = 4,
        extra_channels: int = 0,
        num_actions: int = 3,
        cond_vocab_size: int = 0,
        num_cond_tokens: int = 0,
        hud_height: int = 0,
        shift_offsets: tuple[tuple[int, int], ...] = (),
        hidden_size: int = 256,
        depth: int = 6,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        pixel_head_channels: int = 0,
        chance: tuple[int, ...] = (),
        aligned_context: bool = False,
        player_tile: int = 0,
        cond_in_adaln: bool = False,
    ):
        super().__init__()
        self.in_channels = 3 + 3 + 3 * context_frames + extra_channels  # noisy, base, context
        self.grid = frame_size // patch_size
        self.patch_embed = nn.Conv2d(self.in_channels, hidden_size, patch_size, stride=patch_size)
        self.register_buffer(
            "pos_embed", grid_position_embedding(hidden_size, self.grid)[None], persistent=False
        )
        self.time_embed = ScalarEmbedder(hidden_size)
        self.corruption_embed = ScalarEmbedder(hidden_size)
        self.action_embed = nn.Embedding(num_actions, hidden_size)
        if chance:  # the rules' random draws, told like the action
            self.chance_embed = ChanceEmbedding(tuple(chance), hidden_size)
        if num_cond_tokens:
            self.cond_embed = nn.Embedding(cond_vocab_size, hidden_size)
            self.cond_pos = nn.Parameter(torch.zeros(1, num_cond_tokens, hidden_size))
            if cond_in_adaln:
                self.cond_adaln = nn.Embedding(cond_vocab_size, hidden_size)
        self.blocks = nn.ModuleList(Block(hidden_size, num_heads, mlp_ratio) for _ in range(depth))
        self.final = FinalLayer(hidden_size, patch_size, 3)
        if shift_offsets:
            self.shift_head = nn.Sequential(
                nn.LayerNorm(hidden_size), nn.Linear(hidden_size, len(shift_offsets) + 1)
            )
        if pixel_head_channels:  # 3x3 convs at full resolution: motion finer than a patch
            self.pixel_head = nn.Sequential(
                nn.Conv2d(3 + 3 + 6, pixel_head_channels, 3, padding=1),
                nn.SiLU(),
                nn.Conv2d(pixel_head_channels, 3, 3, padding=1),
            )
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT's init (`init_dit`); the patch embedding like a linear layer."""
        init_dit(self, [self.action_embed])
        w = self.patch_embed.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.bias)
        if self.config.shift_offsets:  # start out copying the base unshifted
            nn.init.zeros_(self.shift_head[1].weight)
            nn.init.zeros_(self.shift_head[1].bias)
            self.shift_head[1].bias.data[0] = 4.0
        if self.config.pixel_head_channels:  # start out adding nothing
            nn.init.zeros_(self.pixel_head[-1].weight)
            nn.init.zeros_(self.pixel_head[-1].bias)

    def forward(
        self,
        noisy: torch.Tensor,
        sigma: torch.Tensor,
        base: torch.Tensor,
        context: torch.Tensor,
        action: torch.Tensor,
        corruption: torch.Tensor,
        extra: torch.Tensor | None = None,
        cond_ids: torch.Tensor | None = None,
        chance: torch.Tensor | None = None,
        context_moves: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the clean residual (B, 3, H, W).

        noisy (B, 3, H, W), base (B, 3, H, W), context (B, 3K, H, W), extra (B, C, H, W),
        all in [-1, 1]; sigma and corruption (B,) in [0, 1]; action (B,) long;
        cond_ids (B, num_cond_tokens) long; chance (B, len(config.chance)) long;
        context_moves (B, K, 2) long: how far (x, y) the camera moves from each context
        frame to the frame drawn (used with `aligned_context`; None: it did not move).
        """
        if self.config.aligned_context and context_moves is not None:
            context = self.align(context, context_moves)
        inputs = [noisy, base, context] + ([extra] if extra is not None else [])
        x = self.patch_embed(torch.cat(inputs, dim=1)).flatten(2).transpose(1, 2) + self.pos_embed
        x, c = run_trunk(self, x, sigma, corruption, action, chance, cond_ids)
        out = self.final(x, c)
        p, g = self.config.patch_size, self.grid
        out = out.view(-1, g, g, p, p, 3).permute(0, 5, 1, 3, 2, 4)
        residual = out.reshape(-1, 3, g * p, g * p)
        if self.config.shift_offsets:
            weights = self.shift_head(x.mean(dim=1)).softmax(dim=-1)
            moved = torch.stack([self.shift(base, *o) - base for o in self.config.shift_offsets], 1)
            residual = residual + (weights[:, 1:, None, None, None] * moved).sum(dim=1)
        if self.config.pixel_head_channels:  # sees the residual, the base, the last 2 frames
            local = torch.cat([residual, base, context[:, -6:]], dim=1)
            residual = residual + self.pixel_head(local)
        return residual

    def align(self, context: torch.Tensor, moves: torch.Tensor) -> torch.Tensor:
        """Context (B, 3K, H, W) with each frame's scene moved against its camera move
        (`moves`, B x K x 2): into the window of the frame drawn."""
        return align_context(context, moves, self.config.hud_height)

    def shift(self, frames: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
        """`frames` with the scene (rows below the HUD) moved by (dx, dy); revealed pixels 0."""
        return shift_scene(frames, dx, dy, self.config.hud_height)


def align_context(context: torch.Tensor, moves: torch.Tensor, hud: int) -> torch.Tensor:
    """Context (B, 3K, H, W) with each frame's scene (the rows below a HUD of `hud` rows)
    moved against its camera move (`moves`, B x K x 2): into the window of the frame drawn."""
    frames = context.unflatten(1, (-1, 3))
    aligned = frames.clone()
    moves = moves.to(context.device)
    for dx, dy in moves.reshape(-1, 2).unique(dim=0).tolist():
        if dx or dy:
            moved = (moves == moves.new_tensor([dx, dy])).all(dim=-1)
            rows, ages = moved.nonzero(as_tuple=True)
            aligned[rows, ages] = shift_scene(frames[rows, ages], -dx, -dy, hud)
    return aligned.flatten(1, 2)


def shift_scene(frames: torch.Tensor, dx: int, dy: int, hud: int) -> torch.Tensor:
    """`frames` (B, C, H, W) with the scene (rows below the HUD) moved by (dx, dy);
    revealed pixels 0."""
    scene = frames[:, :, hud:]
    h, w = scene.shape[-2:]
    m = max(abs(dx), abs(dy))
    padded = F.pad(scene, (m, m, m, m))
    moved = padded[:, :, m - dy : m - dy + h, m - dx : m - dx + w]
    return torch.cat([frames[:, :, :hud], moved], dim=2)
