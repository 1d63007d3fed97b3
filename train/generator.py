"""`maag train generator`: teacher-forced training of the FrameDiT next-frame generator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from maag.errors import MaagError
from maag.io import write_atomic
from maag.spec import GameSpec
from maag.transitions import copy_a_sprite, drop_new_sprites

from .loop import Recipe, train

MOVING_THRESHOLD = 0.1  # |next - base| on some channel, in [-1, 1] units: a pixel to change
FADE_LOW = 0.25  # the least share of its pixels a faded last context frame shows


@dataclass
class GeneratorRecipe(Recipe):
    """A generator run: the loop's fields plus the network's and the objective's."""

    network: ClassVar[str] = "generator"
    preset: str = "S"
    # transformer blocks, 0: the preset's; a warm start from a network as wide with fewer
    # blocks starts the ones it lacks as the identity (adaLN-Zero), so it draws as before
    depth: int = 0
    # draw tile ids, not pixels (models/tiles.py): for a game whose frames are a grid of
    # tiles (GameSpec.tile); patch_size, motion_skip and pixel_head do not apply
    tiles: bool = False
    max_tiles: int = 512  # with tiles: the most distinct tiles the frames may hold
    # with spatial, for a game whose camera follows a player drawn on tiles: the base shows
    # the last frame's player tile where the record puts the player (after the step's moves
    # and events), so the generator draws the player where the rules moved it
    player_in_base: bool = False
    patch_size: int = 8
    context_frames: int = 4
    motion_skip: bool = True  # weigh base copies shifted by one scroll step (see models/dit.py)
    # show each context frame moved into the camera window of the frame to draw (by the
    # data's camera moves; in play the record's): a sprite walking a scrolling world then
    # walks steadily across the context frames (see models/dit.py)
    aligned_context: bool = False
    numerical: bool = False  # condition on the values' digit tokens (the numerical module)
    token_dropout: float = 0.15  # share of examples without tokens: the module can be off
    event_tokens: bool = False  # with numerical: also a token per event, its count this step
    # with numerical: each token also summed into the adaLN conditioning vector (zero at
    # first), so a step's event modulates every block, not only the tiles that attend to it
    tokens_in_adaln: bool = False
    # with numerical: share of the examples told their tokens that are shown values drawn
    # at random over each value's range instead (the target's HUD redrawn to match), so every
    # digit is drawn at every place, whatever values the data's episodes reached
    random_values_share: float = 0.0
    spatial: bool = False  # condition on the spatial map's view (the spatial module)
    map_dropout: float = 0.15  # share of examples without the map: the module can be off
    max_corruption: float = 0.2  # context noise augmentation, std in [-1, 1] units
    clean_share: float = 0.3  # share of examples trained with an uncorrupted context
    # share of examples whose last context frame shows only some of its pixels, the rest
    # as in the frame before: what a few-step sampler drawing in the data's colours makes
    # where it is unsure (a broken ball), so that the generator learns to draw it whole again
    fade_share: float = 0.0
    # share of examples whose last context frame shows the game's moving sprites only where
    # the frame before showed them too: a ball drawn nowhere, which the generator must draw
    # again from the older frames instead of losing it for good (the game's sprite_mask)
    sprite_dropout: float = 0.0
    # share of examples whose last context frames show one tile of a sprite twice, at its
    # place and on a neighbouring tile (one scroll step off): a sprite a generator drew where
    # it was and where it went; the generator must draw it once, where the rules put it
    sprite_copies: float = 0.0
    # share of examples shown upside down: the field below the HUD flipped top to bottom and
    # the actions swapped as the game's `mirrored_actions` say, for a game whose rules read
    # the same so (Pong): twice the scenes to learn from (never an episode's first step,
    # whose start frame does not show which way the first serve goes)
    mirror_share: float = 0.0
    one_step_share: float = 0.5  # share of examples at flow time 1 (the first sampler step)
    # loss weight of the pixels the generator must change from its base: small moving things
    # a plain MSE all but ignores (a ball, a sprite), digits drawn over a blanked HUD, a
    # place the map does not show; 1: every pixel the same
    moving_weight: float = 1.0
    pixel_head: int = 0  # channels of a full-resolution 3x3 conv head (0: none)
    sampler_steps: int = 1  # default for play and evaluation
    reveal_sampler_steps: int = 0  # steps where the map knows nothing of a newly seen place


def build_generator(recipe: GeneratorRecipe, spec: GameSpec, episodes: dict | None = None):
    """A fresh generator sized by the recipe's preset for `spec`'s frames and actions: a
    FrameDiT, or with `tiles` a TileDiT whose tile set is read off `episodes` (None: left
    empty, for weights that bring their own)."""
    from maag.models.dit import PRESETS, FrameDiT
    from maag.models.tiles import TileDiT
    from maag.numerical import DigitTokenizer

    if recipe.preset not in PRESETS:
        raise MaagError(f"unknown preset {recipe.preset!r} (choose from {', '.join(PRESETS)})")
    if recipe.depth < 0:
        raise MaagError(f"depth must be 0 (the preset's) or more, got {recipe.depth}")
    cell = spec.tile[0] if recipe.tiles and spec.tile else recipe.patch_size
    if recipe.tiles and (spec.tile is None or spec.tile[0] != spec.tile[1]):
        raise MaagError(f"tiles needs a game drawn on square tiles; {spec.name}'s frames are not")
    if spec.frame_height != spec.frame_width or spec.frame_height % cell or spec.hud_height % cell:
        raise MaagError(
            f"{spec.name} frames are {spec.frame_height}x{spec.frame_width} with a "
            f"{spec.hud_height}-row HUD: the generator needs square frames divisible by "
            f"{'tile' if recipe.tiles else 'patch'} size {cell}"
        )
    if recipe.player_in_base and not (recipe.spatial and spec.follow and spec.tile):
        raise MaagError(
            "player_in_base needs spatial and a game whose camera follows a player on tiles; "
            f"{spec.name} has no such player"
            if recipe.spatial
            else "player_in_base needs spatial"
        )
    if recipe.tokens_in_adaln and not recipe.numerical:
        raise MaagError("tokens_in_adaln needs numerical (the tokens it sums)")
    tokens = DigitTokenizer(spec, recipe.event_tokens) if recipe.numerical else None
    shared = {
        "frame_size": spec.frame_height,
        "context_frames": recipe.context_frames,
        "num_actions": len(spec.actions),
        "extra_channels": 4 if recipe.spatial else 0,  # map canvas (3) and known-mask (1)
        "cond_vocab_size": tokens.vocab_size if tokens else 0,
        "num_cond_tokens": tokens.num_tokens if tokens else 0,
        "hud_height": spec.hud_height,
        "aligned_context": recipe.aligned_context,
        "chance": spec.chance,
        "player_tile": spec.tile[0] if recipe.player_in_base else 0,
        "cond_in_adaln": recipe.tokens_in_adaln,
        **PRESETS[recipe.preset],
    }
    if recipe.depth:
        shared["depth"] = recipe.depth
    if recipe.tiles:
        network = TileDiT(tile_size=cell, max_tiles=recipe.max_tiles, **shared)
        if episodes is not None:
            network.set_tiles(training_tiles(episodes, spec, recipe.max_tiles))
        return network
    sx, sy = spec.scroll
    offsets = [(dx, dy) for dx, dy in ((sx, 0), (-sx, 0), (0, sy), (0, -sy)) if dx or dy]
    return FrameDiT(
        patch_size=recipe.patch_size,
        shift_offsets=tuple(offsets) if recipe.motion_skip else (),
        pixel_head_channels=recipe.pixel_head,
        **shared,
    )


HUD_SAMPLES = 4096  # HUD bands drawn at random values for a tile set: every digit everywhere


def training_tiles(episodes: dict, spec: GameSpec, max_tiles: int) -> np.ndarray:
    """The tile set (K, t, t, 3) uint8 of the training frames, with the HUD's tiles at
    values drawn at random over each value's range (as `random_values_share` shows them),
    or MaagError where there are more than `max_tiles`."""
    from maag.games.common import hud_band
    from maag.palette import tile_set

    rng = np.random.default_rng(0)
    bands = []
    for _ in range(HUD_SAMPLES if spec.values else 0):
        drawn = {v.name: int(rng.integers(v.low, v.high, endpoint=True)) for v in spec.values}
        bands.append(hud_band(spec, drawn))
    blocks = [*iter(episodes["frames"]), *([np.stack(bands)] if bands else [])]
    tiles = tile_set(blocks, spec.tile)
    if len(tiles) > max_tiles:
        raise MaagError(
            f"the training frames hold {len(tiles)} distinct tiles, more than max_tiles "
            f"{max_tiles}: raise it"
        )
    return tiles


def corrupt(context: torch.Tensor, recipe: GeneratorRecipe, generator: torch.Generator):
    """Noise augmentation of the context (GameNGen/DIAMOND): returns (context, level)."""
    from maag.models.flow import noise_like

    batch = context.shape[0]
    level = torch.rand(batch, generator=generator) * recipe.max_corruption
    level = torch.where(torch.rand(batch, generator=generator) < recipe.clean_share, 0.0, level)
    level = level.to(context.device)
    noise = noise_like(context.shape, generator, context.device)
    return context + level.view(-1, *[1] * (context.ndim - 1)) * noise, level


def fade_last_change(
    context: torch.Tensor, share: float, generator: torch.Generator
) -> torch.Tensor:
    """Context (B, K, 3, H, W) with, in `share` of the rows, each pixel of the last frame
    left as in the frame before with a probability drawn per row in [0, 1 - FADE_LOW)."""
    if not share:
        return context
    batch, _, _, height, width = context.shape
    faded = torch.rand(batch, generator=generator) < share
    keep = FADE_LOW + (1 - FADE_LOW) * torch.rand(batch, 1, 1, 1, generator=generator)
    shown = torch.rand(batch, 1, height, width, generator=generator) < keep
    shown = (shown | ~faded.view(-1, 1, 1, 1)).to(context.device)
    before, last = context[:, -2], context[:, -1]
    return torch.cat([context[:, :-1], torch.where(shown, last, before)[:, None]], dim=1)


def mirror(
    context: torch.Tensor, target: torch.Tensor, action: torch.Tensor, rows: torch.Tensor,
    mirrored_actions: tuple[int, ...], hud: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """Context (B, K, H, W, 3), target (B, H, W, 3) uint8 and actions (B,) with, in `rows`,
    the field below the HUD flipped top to bottom and each action `a` made
    `mirrored_actions[a]`."""
    context, target, action = context.clone(), target.clone(), action.clone()
    context[rows, :, hud:] = context[rows, :, hud:].flip(2)
    target[rows, hud:] = target[rows, hud:].flip(1)
    action[rows] = torch.tensor(mirrored_actions)[action[rows]]
    return context, target, action


def change_weight(target: torch.Tensor, base: torch.Tensor, factor: float) -> torch.Tensor:
    """Per-pixel loss weights (B, 1, H, W): `factor` where the target (B, 3, H, W) differs
    from the base by more than MOVING_THRESHOLD on some channel, 1 elsewhere."""
    changed = (target - base).abs().amax(dim=1, keepdim=True) > MOVING_THRESHOLD
    return 1 + (factor - 1) * changed.float()


def with_random_values(
    spec: GameSpec, values: torch.Tensor, target: torch.Tensor, rows: torch.Tensor,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Shown values (B, V) and target frames (B, H, W, 3) uint8 with the rows `rows` shown
    values drawn uniformly over each value's range, their HUD band drawn anew."""
    from maag.games.common import hud_band

    low = np.array([v.low for v in spec.values])
    high = np.array([v.high for v in spec.values])
    drawn = torch.from_numpy(rng.integers(low, high, size=tuple(values.shape), endpoint=True))
    values, target = values.clone(), target.clone()
    for row in torch.nonzero(rows).flatten().tolist():
        values[row] = drawn[row]
        shown = dict(zip(spec.value_names, drawn[row].tolist(), strict=True))
        target[row, : spec.hud_height] = torch.from_numpy(hud_band(spec, shown).copy())
    return values, target


class GeneratorTask:
    """Rectified flow on the residual; digit tokens (with dropout) when `numerical`."""

    def build(self, recipe: GeneratorRecipe, spec: GameSpec, episodes: dict | None = None):
        from maag.numerical import DigitTokenizer

        if recipe.alternative_share and not (recipe.numerical and recipe.event_tokens):
            raise MaagError(
                "alternative_share needs numerical and event_tokens: only the event tokens "
                "tell the generator which outcome to draw"
            )
        from maag.games import get_game

        definition = get_game(spec.name)
        self.sprite_mask, self.mirrored_actions = (
            definition.sprite_mask,
            definition.mirrored_actions,
        )
        if recipe.mirror_share and not self.mirrored_actions:
            raise MaagError(
                f"mirror_share needs a game whose rules read the same upside down; "
                f"{spec.name}'s do not (no mirrored_actions)"
            )
        if recipe.mirror_share and recipe.spatial:
            raise MaagError("mirror_share does not mirror the spatial map's views: leave it at 0")
        for share in ("sprite_dropout", "sprite_copies"):
            if getattr(recipe, share) and self.sprite_mask is None:
                raise MaagError(f"{share} needs a game with a sprite_mask; {spec.name} has none")
        if recipe.sprite_copies and spec.tile is None:
            raise MaagError(
                f"sprite_copies needs a game whose view scrolls by tiles; {spec.name}'s does not"
            )
        self.spec = spec
        self.tokens = DigitTokenizer(spec, recipe.event_tokens) if recipe.numerical else None
        self.palette, self.maps = None, None
        return build_generator(recipe, spec, episodes)

    def prepare(self, episodes, recipe: GeneratorRecipe):
        """The map views; with `rollout_share`, also the palette of the training frames,
        which the generator's own drawings are snapped to (as `maag export --palette` has
        play do), where the frames have one."""
        from maag.palette import palette_of

        if recipe.rollout_share:
            try:
                self.palette = palette_of(iter(episodes["frames"]), self.spec.hud_height)
            except MaagError:  # too many colours: a game not drawn with a palette
                self.palette = None
        self.maps = self.map_views(episodes, recipe)
        return self.maps

    def own_context(self, model, batch, recipe: GeneratorRecipe, noise) -> torch.Tensor:
        """The batch's context (B, K, H, W, 3) uint8 with, in its rolled rows, the last
        frames drawn by `model` itself (no gradient, `sampler_steps` steps, both modules
        on, told the true values), each from the frames before it: the data's, then its
        own drawings, as a rollout in play goes on."""
        from maag.metrics import draw_next
        from maag.models.flow import sampler_for

        context = batch["context"]
        if "rolled" not in batch or not batch["rolled"].any():
            return context
        network = getattr(model, "module", model)  # under DistributedDataParallel
        sampler, window = sampler_for(network, recipe.sampler_steps), context.shape[1]
        drawn: list[torch.Tensor] = []  # (n, H, W, 3) each, oldest first
        for transition in batch["history"]:
            own = min(len(drawn), window)
            if own:
                transition = transition | {
                    "context": torch.cat(
                        [transition["context"][:, : window - own], torch.stack(drawn[-own:], 1)],
                        dim=1,
                    )
                }
            frames = draw_next(
                network, transition, sampler, noise, self.tokens, self.maps, self.palette
            )
            drawn.append(frames)
        own = min(len(drawn), window)
        context = context.clone()
        context[batch["rolled"], window - own :] = torch.stack(drawn[-own:], 1)
        return context

    def map_views(self, episodes, recipe: GeneratorRecipe):
        """Training views of the spatial map, when the recipe has the module."""
        from maag.games import get_game
        from maag.transitions import MapViews

        if not recipe.spatial:
            return None
        return MapViews(episodes, self.spec, get_game(self.spec.name).sprite_mask)

    def augment(self, batch: dict, recipe: GeneratorRecipe, rng: np.random.Generator) -> dict:
        """The changes to a drawn batch that need no network, made where it is drawn (in the
        loader processes when there are any, off the training process's step): sprites
        dropped from the last context frame of a share of rows, and with the numerical
        module the rows told their tokens (`keep_tokens`), a share of them shown random
        values. Draws from the sampler's generator `rng`, so a resumed run draws the same."""
        rows = len(batch["target"])
        if recipe.sprite_dropout:
            dropped = torch.from_numpy(rng.random(rows) < recipe.sprite_dropout)
            batch["context"] = drop_new_sprites(batch["context"], dropped, self.sprite_mask)
        if self.tokens:
            keep = torch.from_numpy(rng.random(rows) >= recipe.token_dropout)
            keep |= batch["alternative"]  # the tokens alone tell an alternative outcome
            if recipe.random_values_share:
                redraw = keep & torch.from_numpy(rng.random(rows) < recipe.random_values_share)
                batch["values"], batch["target"] = with_random_values(
                    self.spec, batch["values"], batch["target"], redraw, rng
                )
            batch["keep_tokens"] = keep
        return batch

    def loss(self, model, batch, recipe: GeneratorRecipe, noise, device):
        from maag.models.flow import loss_for

        inputs = self.inputs(model, batch, recipe, noise, device)
        loss = loss_for(getattr(model, "module", model))  # under DistributedDataParallel
        return loss(model, **inputs, generator=noise, one_step_share=recipe.one_step_share)

    def inputs(
        self, model, batch: dict, recipe: GeneratorRecipe, noise: torch.Generator, device
    ) -> dict[str, torch.Tensor | None]:
        """`training_loss`'s tensors for an augmented batch (`augment`), on `device`: the
        context augmented (its rolled rows drawn by `model`, noise, dropped modules), the
        base, the target and the pixels' weights."""
        from maag.models.flow import stack_context, to_unit
        from maag.numerical import blank_hud
        from maag.spatial import generator_inputs, player_moves

        context = self.own_context(model, batch, recipe, noise)
        player_tile = getattr(model, "module", model).config.player_tile
        target, action, hud = batch["target"], batch["action"], self.spec.hud_height
        if recipe.mirror_share:
            rows = torch.rand(len(context), generator=noise) < recipe.mirror_share
            rows &= batch["target_step"] > 1
            context, target, action = mirror(
                context, target, action, rows, self.mirrored_actions, hud
            )
        if recipe.sprite_copies:
            copied = torch.rand(len(context), generator=noise) < recipe.sprite_copies
            context = copy_a_sprite(context, copied, self.sprite_mask, self.spec.scroll, hud, noise)
            if "sprites" in batch:  # the map's sprite mask of the last frame, as in play
                batch = batch | {"sprites": batch["sprites"].copy()}
                for row in torch.nonzero(copied).flatten().tolist():
                    batch["sprites"][row] = self.sprite_mask(context[row, -1].numpy())
        # from here on the frames' arithmetic runs where the network does (a GPU's, fast)
        clean = to_unit(context.to(device))
        context, level = corrupt(fade_last_change(clean, recipe.fade_share, noise), recipe, noise)
        map_on, keep, cond_ids = None, None, None
        if recipe.spatial:
            map_on = (torch.rand(len(context), generator=noise) >= recipe.map_dropout).numpy()
        if self.tokens:
            keep = batch["keep_tokens"]
            cond_ids = self.tokens.batch(batch["values"], keep, batch["events"]).to(device)

        def base_of(last: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
            """The generator's base (and map channels) from a last context frame."""
            base, extra = last, None
            if map_on is not None:
                on = map_on[:, None, None]
                base, extra = generator_inputs(
                    last, batch["canvas"], batch["known"] & on, hud,
                    batch["camera_move"] * map_on[:, None],  # the module off knows no camera
                    batch["sprites"] & on,
                    player_moves(batch, map_on) if player_tile else None, player_tile,
                )  # fmt: skip
            if keep is not None:
                base = blank_hud(base, keep, hud)
            return base, extra

        base, extra = base_of(context[:, -1])
        if keep is not None:
            context = blank_hud(context, keep, hud)
        target = to_unit(target.to(device))
        weight = None
        if recipe.moving_weight != 1.0:
            weight = change_weight(target, base_of(clean[:, -1])[0], recipe.moving_weight)
        return {
            "target": target,
            "base": base,
            "context": stack_context(context),
            "action": action.to(device),
            "corruption": level,
            "cond_ids": cond_ids,
            "extra": extra,
            "weight": weight,
            "chance": batch["chance"].to(device),
            "context_moves": torch.as_tensor(batch["context_moves"]).to(device),
        }

    def evaluate(self, ema, episodes, recipe: GeneratorRecipe) -> dict[str, float]:
        from maag.metrics import teacher_forced_psnr

        maps = self.map_views(episodes, recipe)
        return teacher_forced_psnr(
            ema, episodes, recipe.sampler_steps, count=256, tokens=self.tokens, maps=maps
        )

    def sample(self, path: Path, ema, spec: GameSpec, episodes, recipe: GeneratorRecipe) -> None:
        """A rollout beside the ground truth, driven by a recorded episode's actions."""
        import imageio.v3 as iio

        from maag.generative import GenerativeGame

        game = GenerativeGame(ema, spec, episodes["frames"][:1, 0], recipe.sampler_steps)
        truth = episodes["frames"][0]
        frames = [np.concatenate([game.reset(0).frame, truth[0]], axis=1)]
        for t in range(min(64, len(truth) - 1)):
            generated = game.step(int(episodes["actions"][0, t])).frame
            frames.append(np.concatenate([generated, truth[t + 1]], axis=1))
        video = np.stack(frames).repeat(4, axis=1).repeat(4, axis=2)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(
            path, lambda tmp: iio.imwrite(tmp, video, extension=".gif", duration=80, loop=0)
        )


def train_generator(recipe: GeneratorRecipe, out: str | Path, resume: bool = False, progress=True):
    """Train (or resume) a generator run in folder `out`."""
    return train(GeneratorTask(), recipe, out, resume, progress)
