"""The tile generator: a masked (discrete) diffusion transformer over a game's tiles.

Where a game draws every frame with a small set of tiles on a fixed grid (`GameSpec.tile`:
Pac-Man's maze and HUD, 4-pixel tiles), a frame is exactly its grid of tile ids, as a
latent is its image under a lossless tokenizer. `TileDiT` reads the same inputs as
`FrameDiT` (frames in [-1, 1]), turns each into ids by its tile set (a buffer saved with
the weights) and predicts, per tile of the frame to draw, logits over the set: one token
per tile, so a 4-pixel sprite is one choice, never a smudge across a patch. A tile that
is not known (all 0: a blanked HUD, a place the map does not know, the edge a context
frame's camera move reveals) is the id `UNKNOWN`.

The objective is absorbing-state discrete diffusion (MaskGIT): a random share of the
target's tiles is hidden (`UNKNOWN`) and the network, told the share, predicts them;
`TileSampler` draws a frame from all hidden in a few steps, keeping the surest tiles of
each step. The conditioning is FrameDiT's: adaLN-Zero on the share, the action, the
context corruption level and the rules' random draws; digit tokens appended to the
sequence.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .chance import ChanceEmbedding
from .dit import (
    Block,
    FinalLayer,
    ScalarEmbedder,
    align_context,
    grid_position_embedding,
    init_dit,
    run_trunk,
)
from .flow import sample_sigma

# sampling temperature: a near-certain tile stays certain, a real choice stays a choice
TEMPERATURE = 0.5
# where the map's view knows the tile (extra channels: canvas, then the known-mask as +1/-1)
# the choice is the map's, not a guess: drawn sharper (docs/pacman-experiments.md, session 35)
MAPPED_TEMPERATURE = 0.25
# a tile drawn with less probability than SURE is kept alone in its pass, with up to
# EXTRA_PASSES more passes for such tiles (TileSampler; 0.97 and 8 drew Pac-Man a little
# better but 3.4x slower: docs/pacman-experiments.md, session 34)
SURE = 0.9
EXTRA_PASSES = 4


class TileSet:
    """A network that reads frames as the ids of their tiles (`TileDiT`, a LogicNet with
    `read_tiles`): the set is a buffer saved with the weights (`tiles`, `tile_count`); id
    `unknown` (the set's size) is a tile whose every pixel is 0."""

    def register_tile_set(self, frame_size: int, tile_size: int, max_tiles: int) -> None:
        self.unknown = max_tiles  # the id of a tile not known (or hidden)
        self.grid = frame_size // tile_size
        self.register_buffer(
            "tiles", torch.zeros(max_tiles, tile_size * tile_size * 3, dtype=torch.uint8)
        )
        self.register_buffer("tile_count", torch.zeros((), dtype=torch.long))

    def set_tiles(self, tiles: np.ndarray) -> None:
        """Take `tiles` (K, t, t, 3) uint8 as the tile set (K at most `max_tiles`)."""
        count, t = len(tiles), self.config.tile_size
        if tiles.shape[1:] != (t, t, 3) or not 0 < count <= self.config.max_tiles:
            raise ValueError(
                f"a tile set is 1 to {self.config.max_tiles} tiles ({t}, {t}, 3), got {tiles.shape}"
            )
        self.tiles.zero_()
        self.tiles[:count] = torch.from_numpy(np.ascontiguousarray(tiles).reshape(count, -1))
        self.tile_count.fill_(count)

    def tile_array(self) -> np.ndarray:
        """A copy of the tile set (K, t, t, 3) uint8."""
        t = self.config.tile_size
        return self.tiles[: int(self.tile_count)].cpu().numpy().reshape(-1, t, t, 3).copy()

    def tile_tables(self) -> list[tuple[torch.Tensor, int]]:
        """Every weight whose first dimension runs over tile ids, with the rows of one
        block of ids (a table may hold one block per context frame)."""
        raise NotImplementedError

    @torch.no_grad()
    def adopt_tiles(self, tiles: np.ndarray) -> int:
        """Grow the set by the tiles of `tiles` (K, t, t, 3) uint8 it lacks, each new id a
        copy of its nearest known tile in every id-indexed weight (`tile_tables`): the
        network reads it as that tile until training tells them apart (a game whose look
        gained a tile keeps its trained network). Returns how many were added."""
        known = self.tile_array()
        flat = known.reshape(len(known), -1).astype(np.int64)
        new = [tile for tile in tiles if not (flat == tile.reshape(-1)).all(1).any()]
        count = len(known) + len(new)
        if count > self.config.max_tiles:
            raise ValueError(f"{count} tiles do not fit a set of {self.config.max_tiles}")
        for index, tile in enumerate(new, start=len(known)):
            nearest = int(((flat - tile.reshape(-1).astype(np.int64)) ** 2).sum(1).argmin())
            self.tiles[index] = torch.from_numpy(np.ascontiguousarray(tile).reshape(-1))
            for table, block in self.tile_tables():
                for start in range(0, len(table), block):
                    table[start + index] = table[start + nearest]
        self.tile_count.fill_(count)
        return len(new)

    def _unit_tiles(self) -> torch.Tensor:
        return self.tiles[: int(self.tile_count)].float() / 127.5 - 1.0

    def tile_ids(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (B, 3, H, W) in [-1, 1] -> (B, N) ids of each grid tile's nearest tile of
        the set (squared distance), `unknown` where every pixel of the tile is 0."""
        t, g = self.config.tile_size, self.grid
        rows = (
            frames.float()
            .reshape(-1, 3, g, t, g, t)
            .permute(0, 2, 4, 3, 5, 1)
            .reshape(-1, g * g, t * t * 3)
        )
        table = self._unit_tiles()
        with torch.autocast(frames.device.type, enabled=False):
            distance = (table**2).sum(1) - 2 * rows @ table.T
        ids = distance.argmin(-1)
        return torch.where(rows.abs().amax(-1) < 1e-6, self.unknown, ids)


class TileDiT(TileSet, ModelMixin, ConfigMixin):
    """Next-frame generator over tile ids. Saved and loaded as safetensors + config.json
    (diffusers); the tile set travels in the weights (`tiles`, `tile_count`)."""

    @register_to_config
    def __init__(
        self,
        frame_size: int = 64,
        tile_size: int = 4,
        max_tiles: int = 512,
        context_frames: int = 4,
        extra_channels: int = 0,
        num_actions: int = 3,
        cond_vocab_size: int = 0,
        num_cond_tokens: int = 0,
        hud_height: int = 0,
        hidden_size: int = 128,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        chance: tuple[int, ...] = (),
        aligned_context: bool = False,
        player_tile: int = 0,  # as FrameDiT's: the base shows the player where the record puts it
        cond_in_adaln: bool = False,  # as FrameDiT's: the condition tokens in adaLN too
    ):
        super().__init__()
        self.register_tile_set(frame_size, tile_size, max_tiles)
        ids = max_tiles + 1
        self.target_embed = nn.Embedding(ids, hidden_size)
        self.base_embed = nn.Embedding(ids, hidden_size)
        self.context_embed = nn.Embedding(context_frames * ids, hidden_size)  # one table per age
        if extra_channels:  # the map's canvas where it knows it
            self.map_embed = nn.Embedding(ids, hidden_size)
        self.register_buffer(
            "pos_embed", grid_position_embedding(hidden_size, self.grid)[None], persistent=False
        )
        self.time_embed = ScalarEmbedder(hidden_size)
        self.corruption_embed = ScalarEmbedder(hidden_size)
        self.action_embed = nn.Embedding(num_actions, hidden_size)
        if chance:
            self.chance_embed = ChanceEmbedding(tuple(chance), hidden_size)
        if num_cond_tokens:
            self.cond_embed = nn.Embedding(cond_vocab_size, hidden_size)
            self.cond_pos = nn.Parameter(torch.zeros(1, num_cond_tokens, hidden_size))
            if cond_in_adaln:
                self.cond_adaln = nn.Embedding(cond_vocab_size, hidden_size)
        self.blocks = nn.ModuleList(Block(hidden_size, num_heads, mlp_ratio) for _ in range(depth))
        self.final = FinalLayer(hidden_size, 1, max_tiles)  # one logit per tile of the set
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT's init (`init_dit`), every id table small."""
        tables = [self.target_embed, self.base_embed, self.context_embed, self.action_embed]
        init_dit(self, tables + ([self.map_embed] if self.config.extra_channels else []))

    def tile_tables(self) -> list[tuple[torch.Tensor, int]]:
        ids, out = self.unknown + 1, self.final.linear
        tables = [self.target_embed, self.base_embed, self.context_embed]
        tables += [self.map_embed] if self.config.extra_channels else []
        return [(t.weight, ids) for t in tables] + [
            (out.weight, len(out.bias)),
            (out.bias, len(out.bias)),
        ]

    def draw(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids (B, N) of the set -> frames (B, 3, H, W) in [-1, 1]."""
        t, g = self.config.tile_size, self.grid
        pixels = self._unit_tiles()[ids]  # (B, N, t * t * 3)
        return (
            pixels.reshape(-1, g, g, t, t, 3).permute(0, 5, 1, 3, 2, 4).reshape(-1, 3, g * t, g * t)
        )

    def forward(
        self,
        tokens: torch.Tensor,
        hidden_share: torch.Tensor,
        base: torch.Tensor,
        context: torch.Tensor,
        action: torch.Tensor,
        corruption: torch.Tensor,
        extra: torch.Tensor | None = None,
        cond_ids: torch.Tensor | None = None,
        chance: torch.Tensor | None = None,
        context_moves: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B, N, max_tiles) of each tile of the frame to draw (tiles beyond the set
        at -inf). tokens (B, N): the tiles known so far, `unknown` where hidden;
        hidden_share (B,) in [0, 1]; the rest as `FrameDiT.forward`."""
        if self.config.aligned_context and context_moves is not None:
            context = align_context(context, context_moves, self.config.hud_height)
        frames = self.config.context_frames
        ages = self.tile_ids(context.unflatten(1, (frames, 3)).flatten(0, 1)).unflatten(
            0, (-1, frames)
        )
        ages = ages + torch.arange(frames, device=ages.device)[:, None] * (self.unknown + 1)
        x = self.target_embed(tokens) + self.base_embed(self.tile_ids(base))
        x = x + self.context_embed(ages).sum(dim=1) + self.pos_embed
        if extra is not None:  # canvas where known, 0 elsewhere: unknown there
            x = x + self.map_embed(self.tile_ids(extra[:, :3]))
        x, c = run_trunk(self, x, hidden_share, corruption, action, chance, cond_ids)
        logits = self.final(x, c).float()
        beyond = torch.arange(self.config.max_tiles, device=logits.device) >= self.tile_count
        return logits.masked_fill(beyond, float("-inf"))


def tile_loss(
    model: TileDiT,
    target: torch.Tensor,
    base: torch.Tensor,
    context: torch.Tensor,
    action: torch.Tensor,
    corruption: torch.Tensor,
    generator: torch.Generator,
    extra: torch.Tensor | None = None,
    cond_ids: torch.Tensor | None = None,
    one_step_share: float = 0.5,
    weight: torch.Tensor | None = None,
    chance: torch.Tensor | None = None,
    context_moves: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of the hidden tiles of the target (B, 3, H, W), a random share of
    them hidden per example (all of them in `one_step_share` of the examples: the first
    sampler step); `weight` (B, 1, H, W) weighs each tile by its heaviest pixel. The
    arguments are `flow.training_loss`'s."""
    network = getattr(model, "module", model)  # under DistributedDataParallel
    ids = network.tile_ids(target)
    batch, count = ids.shape
    share = sample_sigma(batch, generator, one_step_share)
    hidden = torch.rand(batch, count, generator=generator) < share[:, None]
    hidden[torch.arange(batch), torch.randint(count, (batch,), generator=generator)] = True
    hidden, share = hidden.to(ids.device), share.to(ids.device)
    tokens = torch.where(hidden, network.unknown, ids)
    logits = model(
        tokens, share, base, context, action, corruption, extra, cond_ids, chance, context_moves
    )
    loss = F.cross_entropy(logits.transpose(1, 2), ids, reduction="none")
    tile_weight = hidden.float()
    if weight is not None:
        t = network.config.tile_size
        tile_weight = tile_weight * F.max_pool2d(weight.to(ids.device).float(), t).flatten(1)
    return (loss * tile_weight).sum() / tile_weight.sum()


class TileSampler:
    """Few-step sampler of a TileDiT: every tile hidden at first; each step draws the
    hidden ones (at TEMPERATURE) and keeps the surest, as many as a cosine schedule says
    (all of them at the last step). Tiles drawn unsure (below SURE) are kept one at a time,
    the surest first, with up to `extra_passes` more passes for them: two tiles that each
    may show the one ghost (a move the frames cannot tell) are not both drawn with it at
    once; the second is drawn again knowing the first."""

    def __init__(self, steps: int = 1, extra_passes: int = EXTRA_PASSES):
        self.steps = steps
        self.extra_passes = extra_passes

    @torch.no_grad()
    def sample(
        self,
        model: TileDiT,
        base: torch.Tensor,
        context: torch.Tensor,
        action: torch.Tensor,
        generator: torch.Generator,
        extra: torch.Tensor | None = None,
        cond_ids: torch.Tensor | None = None,
        steps: int | None = None,
        chance: torch.Tensor | None = None,
        context_moves: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The next frames (B, 3, H, W) in [-1, 1], in `steps` (default `self.steps`)
        steps and, where tiles come out unsure, up to `extra_passes` more."""
        steps = steps or self.steps
        batch, count = base.shape[0], model.grid * model.grid
        tokens = torch.full((batch, count), model.unknown, dtype=torch.long, device=base.device)
        kept = torch.zeros(batch, count, dtype=torch.bool, device=base.device)
        corruption = torch.zeros(batch, device=base.device)
        rows = torch.arange(batch, device=base.device)
        self.passes = 0  # of the last call: `steps` plus the extra ones it took
        temperature = torch.full((batch, count, 1), TEMPERATURE, device=base.device)
        if extra is not None and extra.shape[1] > 3:  # every pixel of the tile known
            known = -F.max_pool2d(-extra[:, 3:4], model.config.tile_size) > 0
            temperature[known.flatten(1)] = MAPPED_TEMPERATURE
        for step in range(steps + self.extra_passes):
            if kept.all():
                break
            self.passes += 1
            share = (~kept).float().mean(dim=1)
            logits = model(
                tokens,
                share,
                base,
                context,
                action,
                corruption,
                extra,
                cond_ids,
                chance,
                context_moves,
            ).float()
            uniform = torch.rand(logits.shape, generator=generator).to(logits.device)
            drawn = (
                logits / temperature - torch.log(-torch.log(uniform.clamp(1e-20, 1.0)))
            ).argmax(-1)
            sureness = logits.log_softmax(-1).gather(-1, drawn[..., None])[..., 0]
            sureness = sureness.masked_fill(kept, float("inf"))
            keep = count - int(count * math.cos(math.pi / 2 * min(step + 1, steps) / steps))
            surest = sureness.topk(keep, dim=1).indices
            newly = torch.zeros_like(kept).scatter_(1, surest, True) & ~kept
            if self.extra_passes and step < steps + self.extra_passes - 1:  # the last keeps all
                unsure = newly & (sureness < math.log(SURE))
                first = sureness.masked_fill(~unsure, -float("inf")).argmax(dim=1)
                newly &= ~unsure
                newly[rows, first] |= unsure[rows, first]
            tokens = torch.where(newly, drawn, tokens)
            kept |= newly
        return model.draw(tokens)
