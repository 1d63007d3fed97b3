"""Transitions from trajectory data: (K context frames, action) -> next frame.

Training, evaluation and (later) the spatial module's training views all form contexts
here, the way the generative game forms them at play time: frames before the episode's
first frame repeat the first frame, as `GenerativeGame.reset` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from maag.data import Dataset, no_alternatives
from maag.errors import MaagError
from maag.spatial import MapHistory, map_channels
from maag.spec import GameSpec


def load_episodes(
    path: str | Path, game: str | None = None, more: Sequence[str | Path] = ()
) -> dict[str, np.ndarray]:
    """All episodes of a dataset folder, verified, as stacked arrays (see maag.data); the
    episodes of the folders `more` (the same game and episode length, e.g. another agent's
    play) follow them."""
    datasets = [Dataset(path, game=game)]
    for folder in more:
        datasets.append(Dataset(folder, game=datasets[0].spec.name))
        if datasets[-1].spec != datasets[0].spec or datasets[-1].steps != datasets[0].steps:
            raise MaagError(
                f"{folder} cannot join {path}: another game spec or episode length "
                f"({datasets[-1].steps} steps, not {datasets[0].steps})"
            )
    shards, offset = [], 0
    for dataset in datasets:
        for shard in dataset.load_all():
            if "alt_step" not in shard:  # written before alternatives existed
                shard |= no_alternatives(dataset.spec)
            shard["alt_step"] = shard["alt_step"] + [offset, 0]  # episode indices of the whole
            offset += len(shard["frames"])
            shards.append(shard)
    if len({s["player"].shape[-1] for s in shards}) > 1:  # positions only where all have them
        for shard in shards:
            shard["player"] = shard["player"][..., :0]
    return {key: np.concatenate([s[key] for s in shards]) for key in shards[0]}


def first_episodes(episodes: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
    """The first `count` episodes of `episodes` (see `load_episodes`), with their
    alternative outcomes."""
    kept = episodes["alt_step"][:, 0] < count
    return {
        key: array[kept] if key.startswith("alt_") else array[:count]
        for key, array in episodes.items()
    }


def drop_new_sprites(context: torch.Tensor, rows: torch.Tensor, sprite_mask) -> torch.Tensor:
    """Context (B, K, H, W, 3) uint8 with, in `rows`, each pixel that `sprite_mask` finds a
    sprite in the last frame and not in the frame before taken from the frame before: what
    moved is drawn nowhere, as in a frame where a generator lost it."""
    context = context.clone()
    for row in torch.nonzero(rows).flatten().tolist():
        last, before = context[row, -1].numpy(), context[row, -2].numpy()
        new = sprite_mask(last) & ~sprite_mask(before)
        last[new] = before[new]  # a view of the clone's memory
    return context


def copy_a_sprite(
    context: torch.Tensor,
    rows: torch.Tensor,
    sprite_mask,
    tile: tuple[int, int],
    hud_height: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Context (B, K, H, W, 3) uint8 with, in `rows`, one tile (`tile` = (width, height)
    pixels, on the grid that starts below the HUD) of a sprite of the last frame drawn a
    second time on a neighbouring tile that shows no sprite, in the last n frames (n drawn
    from 1..K-1): a sprite drawn twice, as a generator unsure whether it moved draws it. A
    row whose last frame shows no sprite, or none with a free neighbour, is left as it is.
    """
    context = context.clone()
    width, height = tile
    steps = [(width, 0), (-width, 0), (0, height), (0, -height)]
    frame_height, frame_width = context.shape[2:4]
    for row in torch.nonzero(rows).flatten().tolist():
        last = context[row, -1].numpy()
        sprites = sprite_mask(last)
        sprites[:hud_height] = False
        places = np.argwhere(sprites[hud_height::height, ::width])  # tiles (row, col)
        if not len(places):
            continue
        r, c = places[int(torch.randint(len(places), (1,), generator=generator))]
        y, x = hud_height + int(r) * height, int(c) * width
        free = [
            (y + dy, x + dx)
            for dx, dy in steps
            if hud_height <= y + dy <= frame_height - height
            and 0 <= x + dx <= frame_width - width
            and not sprites[y + dy : y + dy + height, x + dx : x + dx + width].any()
        ]
        if not free:
            continue
        to_y, to_x = free[int(torch.randint(len(free), (1,), generator=generator))]
        frames = int(torch.randint(1, context.shape[1], (1,), generator=generator))
        sprite = context[row, -1, y : y + height, x : x + width].clone()
        context[row, -frames:, to_y : to_y + height, to_x : to_x + width] = sprite
    return context


class MapViews:
    """The spatial map's view before each frame of each episode, as play would build it:
    frames 0..t-1 written (sprites kept out), the map restored where the transition into
    frame t has an event that restores the world, then read at frame t's camera."""

    def __init__(self, episodes: dict[str, np.ndarray], spec: GameSpec, sprite_mask):
        self.frames, self.cameras = episodes["frames"], episodes["camera"]
        restoring = [i for i, event in enumerate(spec.events) if event.restores_world]
        self.restoring = episodes["events"][..., restoring].sum(axis=-1) > 0  # (E, T + 1)
        self.hud = spec.hud_height
        self.sprite_mask = sprite_mask
        self.size = (spec.frame_height - spec.hud_height, spec.frame_width)
        self.histories: dict[int, MapHistory] = {}
        # per episode the sprite masks of its frames (T + 1, H, W / 8), bits packed along
        # the width: made with the history, whose writes keep sprites out, and read back
        # for every batch instead of finding the sprites again
        self.sprite_bits: dict[int, np.ndarray] = {}

    def history(self, episode: int) -> MapHistory:
        if episode not in self.histories:
            self.histories[episode], self.sprite_bits[episode] = self._build(episode)
        return self.histories[episode]

    def _build(self, episode: int) -> tuple[MapHistory, np.ndarray]:
        frames, restores = self.frames[episode], np.flatnonzero(self.restoring[episode])
        if self.sprite_mask is None:
            masks = np.zeros(frames.shape[:-1], bool)
            history = MapHistory(frames[:, self.hud :], self.cameras[episode], restores=restores)
            return history, np.packbits(masks, -1)
        masks = np.stack([self.sprite_mask(f) for f in frames])
        history = MapHistory(
            frames[:, self.hud :], self.cameras[episode], masks[:, self.hud :], restores=restores
        )
        return history, np.packbits(masks, axis=-1)

    def build_all(self, processes: int) -> None:
        """Build every episode's history now, over `processes` forked processes: before
        batch-drawing processes fork, so that they share the histories instead of each
        building its own."""
        missing = [e for e in range(len(self.frames)) if e not in self.histories]
        if processes < 2 or len(missing) < 2:
            for episode in missing:
                self.history(episode)
            return
        import multiprocessing

        global _BUILDING  # the forked processes find the episodes here, none pickled
        _BUILDING = self
        try:
            with multiprocessing.get_context("fork").Pool(processes) as pool:
                chunk = max(1, len(missing) // processes // 4)
                built = pool.map(_build_history, missing, chunksize=chunk)
        finally:
            _BUILDING = None
        for episode, (history, bits) in zip(missing, built, strict=True):
            self.histories[episode], self.sprite_bits[episode] = history, bits

    def views(self, episode: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
        """Before each target frame: the map's canvas (B, h, w, 3) uint8 and known (B, h, w)
        bool, and the last frame's sprites (B, H, W) bool."""
        canvases, knowns, sprite_bits = [], [], []
        for e, t in zip(episode.tolist(), target.tolist(), strict=True):
            canvas, known, _ = self.history(e).view(t, tuple(self.cameras[e, t]), self.size)
            canvases.append(canvas)
            knowns.append(known)
            sprite_bits.append(self.sprite_bits[e][t - 1])
        width = self.frames.shape[-2]
        return {
            "canvas": np.stack(canvases),
            "known": np.stack(knowns),
            "sprites": np.unpackbits(np.stack(sprite_bits), axis=-1, count=width).astype(bool),
        }


_BUILDING: MapViews | None = None  # see MapViews.build_all


def _build_history(episode: int) -> tuple[MapHistory, np.ndarray]:
    return _BUILDING._build(episode)


class TransitionSampler:
    """Gathers transitions by index or at random; its random state is checkpointable."""

    def __init__(
        self,
        episodes: dict[str, np.ndarray],
        context_frames: int,
        seed: int = 0,
        maps: MapViews | None = None,
        event_share: float = 0.0,
        event_window: int = 1,
        close_calls: np.ndarray | None = None,
        close_call_share: float = 0.0,
        alternative_share: float = 0.0,
        close_call_window: int = 1,
        rollout_share: float = 0.0,
        rollout_frames: int = 1,
        alternative_pairs: bool = False,
    ):
        """`event_share` of every random batch comes from transitions where an event
        fires: per example an event class the data holds, chosen evenly, then one of its
        transitions at random; the rest of the batch is drawn uniformly. With an
        `event_window` w > 1 an event's class also holds the w - 1 transitions after it
        (a serve after a point, a respawn after a death: the next frames are the hard
        ones), and the episodes' first w transitions (a start from a still context) form
        one more class. `close_call_share` of the rest comes from `close_calls`, flat
        transition indices (episode * T + target - 1; see `close_calls`), each with the
        `close_call_window` - 1 transitions after it (a ball's flight after a return), and
        `alternative_share` of what is left is an alternative outcome the data holds
        (`alt_*`, see maag.data): the same context and action, the target, values and
        events as the step would have been had its events come out otherwise. With
        `alternative_pairs` each of those rows is told, at even odds, the alternative or the
        true outcome of its step (where true steps with an alternative are rare in the
        data, as Pac-Man's eaten ghosts are, the alternatives alone would outnumber them):
        only the tokens tell the two apart. `alternative` marks all of them.

        `rollout_share` of every batch (rows whose target is past the episode's first
        `rollout_frames` frames) also carries its `history`: the `rollout_frames`
        transitions into the last context frames, oldest first, for a generator to draw
        those frames itself (see `GeneratorTask`); `rolled` marks the rows."""
        shares = {
            "event_share": event_share,
            "close_call_share": close_call_share,
            "alternative_share": alternative_share,
            "rollout_share": rollout_share,
        }
        for name, share in shares.items():
            if not 0.0 <= share <= 1.0:
                raise MaagError(f"{name} must be within 0..1, got {share}")
        self.alternatives = {k: v for k, v in episodes.items() if k.startswith("alt_")}
        if alternative_share and not len(self.alternatives.get("alt_step", ())):
            raise MaagError(
                "alternative_share needs data with alternative outcomes (maag data writes "
                "them for games whose engine offers them, such as pong)"
            )
        self.alternative_share = alternative_share
        self.alternative_pairs = alternative_pairs
        for name, window in (
            ("event_window", event_window),
            ("close_call_window", close_call_window),
            ("rollout_frames", rollout_frames),
        ):
            if window < 1:
                raise MaagError(f"{name} must be at least 1, got {window}")
        self.frames = episodes["frames"]  # (E, T+1, H, W, 3)
        self.maps = maps
        self.actions = episodes["actions"]  # (E, T)
        self.values = episodes["values"]  # (E, T+1, V)
        self.cameras = episodes["camera"]  # (E, T+1, 2)
        self.events = episodes["events"]  # (E, T+1, K)
        self.chance = episodes["chance"]  # (E, T+1, C)
        self.players = episodes["player"]  # (E, T+1, 2) world pixels, or (E, T+1, 0)
        self.context_frames = context_frames
        self.rng = np.random.default_rng(seed)
        self.event_share = event_share
        fired = self.events[:, 1:] > 0  # (E, T, K): the events of the transition into t >= 1
        after = fired.copy()
        for lag in range(1, event_window):
            after[:, lag:] |= fired[:, :-lag]
        classes = [after[..., k] for k in range(fired.shape[-1])]
        if event_window > 1:
            start = np.zeros(fired.shape[:2], bool)
            start[:, :event_window] = True
            classes.append(start)
        self.by_event = [np.flatnonzero(c) for c in classes]
        self.by_event = [flat for flat in self.by_event if len(flat)]
        self.close_calls = None
        if close_calls is not None and len(close_calls):
            lags = np.arange(close_call_window)
            within = close_calls[:, None] % self.actions.shape[1] + lags < self.actions.shape[1]
            self.close_calls = np.unique((close_calls[:, None] + lags)[within])
        self.close_call_share = close_call_share
        self.rollout_share, self.rollout_frames = rollout_share, rollout_frames

    def gather(self, episode: np.ndarray, target: np.ndarray) -> dict[str, torch.Tensor]:
        """The transitions into frame `target` (>= 1) of `episode` (index arrays)."""
        times = np.maximum(target[:, None] + np.arange(-self.context_frames, 0), 0)
        cameras = self.cameras[episode, target]
        return {
            "context": torch.from_numpy(self.frames[episode[:, None], times]),  # (B, K, H, W, 3)
            "target": torch.from_numpy(self.frames[episode, target]),  # (B, H, W, 3)
            "action": torch.from_numpy(self.actions[episode, target - 1]),  # (B,)
            "target_step": torch.from_numpy(target),  # (B,) the target's step in its episode
            "values": torch.from_numpy(self.values[episode, target]).long(),  # (B, V) shown
            "events": torch.from_numpy(self.events[episode, target]).long(),  # (B, E) counts
            "chance": torch.from_numpy(self.chance[episode, target]).long(),  # (B, C) draws
            "camera_move": cameras - self.cameras[episode, target - 1],
            # (B, K, 2) how far the camera moves from each context frame to the target
            "context_moves": cameras[:, None] - self.cameras[episode[:, None], times],
            # the player's view pixel (x, y) in the last context frame, where data has it
            "player": torch.from_numpy(
                self.players[episode, target - 1]
                - self.cameras[episode, target - 1, : self.players.shape[-1]]
            ),
            # and where it is in the target (after the step's moves and events)
            "target_player": torch.from_numpy(
                self.players[episode, target] - cameras[:, : self.players.shape[-1]]
            ),
            "alternative": torch.zeros(len(episode), dtype=torch.bool),  # see sample()
            **(self.maps.views(episode, target) if self.maps else {}),
        }

    def pick(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """`count` random (episode, target) pairs, `event_share` of them where an event
        fires (as in `sample`)."""
        flat, _ = self._flat(count)
        steps = self.actions.shape[1]
        return flat // steps, flat % steps + 1

    def _flat(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """`count` random flat transition indices, and which came from an event class."""
        episodes, steps = self.actions.shape
        flat = self.rng.integers(episodes * steps, size=count)
        taken = np.zeros(count, bool)  # rows drawn from a class of their own
        if self.by_event:
            taken = self.rng.random(count) < self.event_share
        for i in np.flatnonzero(taken):
            candidates = self.by_event[self.rng.integers(len(self.by_event))]
            flat[i] = candidates[self.rng.integers(len(candidates))]
        return flat, taken

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        steps = self.actions.shape[1]
        flat, taken = self._flat(batch_size)
        if self.close_calls is not None:
            close = ~taken & (self.rng.random(batch_size) < self.close_call_share)
            picks = self.rng.integers(len(self.close_calls), size=int(close.sum()))
            flat[close] = self.close_calls[picks]
            taken |= close
        episode, target = flat // steps, flat % steps + 1
        if not self.alternative_share:
            return self.with_history(self.gather(episode, target), episode, target)
        other = ~taken & (self.rng.random(batch_size) < self.alternative_share)
        picks = self.rng.integers(len(self.alternatives["alt_step"]), size=int(other.sum()))
        episode[other], target[other] = self.alternatives["alt_step"][picks].T
        batch = self.gather(episode, target)
        batch["alternative"][other] = True
        if self.alternative_pairs:  # half of them told their true outcome
            told_true = self.rng.random(len(picks)) < 0.5
            other[np.flatnonzero(other)[told_true]] = False
            picks = picks[~told_true]
        batch["target"][other] = torch.from_numpy(self.alternatives["alt_frames"][picks])
        batch["values"][other] = torch.from_numpy(self.alternatives["alt_values"][picks]).long()
        batch["events"][other] = torch.from_numpy(self.alternatives["alt_events"][picks]).long()
        moved = self.alternatives["alt_camera"][picks] - self.cameras[episode[other], target[other]]
        batch["camera_move"][other] += moved
        batch["context_moves"][other] += moved[:, None]
        return self.with_history(batch, episode, target)

    def with_history(
        self, batch: dict[str, Any], episode: np.ndarray, target: np.ndarray
    ) -> dict[str, Any]:
        """`batch` with, where `rollout_share` is set, its rolled rows and their history."""
        if not self.rollout_share:
            return batch
        rolled = (self.rng.random(len(target)) < self.rollout_share) & (
            target > self.rollout_frames
        )
        batch["rolled"] = torch.from_numpy(rolled)
        lags = range(self.rollout_frames, 0, -1) if rolled.any() else ()
        batch["history"] = [self.gather(episode[rolled], target[rolled] - lag) for lag in lags]
        return batch

    def evenly_spaced(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """`count` (episode, target) pairs spread evenly over the data: a fixed eval set."""
        episodes, steps = self.actions.shape
        flat = np.linspace(0, episodes * steps - 1, count).astype(np.int64)
        return flat // steps, flat % steps + 1

    def state_dict(self) -> dict[str, Any]:
        return self.rng.bit_generator.state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state


def close_calls(episodes: dict[str, np.ndarray], logicnet, count: int) -> np.ndarray:
    """Flat indices (episode * T + target - 1) of the `count` transitions where no event
    fires that `logicnet` finds likeliest to fire one: the close calls (a ball returned by
    a paddle's last row, a ghost passing by), found by no game-specific rule."""
    sampler = TransitionSampler(episodes, logicnet.config.context_frames)
    total = episodes["actions"].size
    episode, target = sampler.evenly_spaced(total)  # every transition, in flat order
    scores = np.empty(total, np.float32)
    for start in range(0, total, 512):
        batch = sampler.gather(episode[start : start + 512], target[start : start + 512])
        with torch.inference_mode():
            logits = logicnet_logits(logicnet, batch).cpu()
        fires = 1 - logits.float().softmax(dim=-1)[..., 0]  # (B, events): P(count > 0)
        quiet = batch["events"].sum(dim=1) == 0
        scores[start : start + 512] = torch.where(quiet, fires.amax(dim=1), -1.0).numpy()
    ranked = np.argsort(-scores, kind="stable")[:count]
    return ranked[scores[ranked] >= 0]


def logicnet_logits(logicnet, batch: dict[str, Any], device: str | torch.device | None = None):
    """`logicnet`'s logits for a gathered batch: its context frames (for an observer the
    last K - 1 and the target), action, the rules' draws, for a LogicNet that looks
    closer around the player the player's place (at the step's start), and for one that
    reads the map (`extra_channels`) the map's view (`canvas`, `known`); an `aligned`
    observer also the step's camera move (`camera_move`, B x 2 pixels)."""
    from maag.models.dit import align_context
    from maag.models.flow import device_of, stack_context, to_unit
    from maag.numerical import blank_hud

    device = device or device_of(logicnet)  # default: where the network is
    player = None
    if logicnet.config.focus:
        if not batch["player"].shape[-1]:
            raise MaagError(
                "this LogicNet looks around the player, but the data holds no player "
                "positions (written before they were stored): write it again with maag data"
            )
        player = batch["player"].to(device)
    frames = batch["context"]
    if logicnet.config.observes:  # the step's outcome is its last input frame
        frames = torch.cat([frames[:, 1:], batch["target"][:, None]], dim=1)
    frames = to_unit(frames)
    hud = logicnet.config.hud_height
    if logicnet.config.observes:  # the HUD shows what was decided: it reads the scene alone
        frames = blank_hud(frames, torch.ones(len(frames), dtype=torch.bool), hud)
    if logicnet.config.aligned:  # the outcome where the start's camera would show it
        moves = -torch.as_tensor(np.asarray(batch["camera_move"]))[:, None]
        frames[:, -1] = align_context(frames[:, -1], moves, hud)
    extra = None
    if logicnet.config.extra_channels:  # the map's view at the step's camera
        if "canvas" not in batch:
            raise MaagError("this LogicNet reads the spatial map: gather its batches with maps")
        extra = map_channels(batch["canvas"], batch["known"], logicnet.config.hud_height)
        extra = extra.to(device)
    return logicnet(
        stack_context(frames).to(device),
        batch["action"].to(device),
        extra=extra,
        chance=batch["chance"].to(device),
        player=player,
    )
