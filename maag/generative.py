"""The generative game: a trained generator behind the same reset/step protocol as engines.

A model folder plays on its own:

    models/traveler/
      model.json                 game spec, context length, sampler steps, provenance
      generator/                 FrameDiT: config.json + diffusion_pytorch_model.safetensors
      start_frames.safetensors   engine reset frames to start episodes from, their cameras
                                 and, where the camera follows the player (GameSpec.follow),
                                 the player's start pixel and the world's bounds per frame
      README.md                  the model card
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

from maag.errors import MaagError
from maag.io import write_atomic
from maag.palette import Palette
from maag.spec import CustomMap, Game, GameSpec, Step

if TYPE_CHECKING:
    from maag.spatial import SpatialMap

MODEL_FORMAT = "maag-model/1"
MODULE_PARTS = ("logicnet", "record", "spatial", "observer")  # `timings` parts the modules take
SESSION_FORMAT = "maag-session/1"


class GenerativeGame(Game):
    """Every frame drawn by the generator from the last K frames and the action.

    Modules (each on where the model has it, unless switched off):
    - numerical: LogicNet decides the step's events, the record applies their effects
      (and fires the events the rules fire on their own, `EventSpec.when`) and the
      generator is conditioned on the record's digit tokens (and on the count of each
      event this step, where it was trained with event tokens); `Step.values` and
      `Step.events` are the record's.
    - spatial: the map's view of the next camera window becomes the generator's base
      and extra channels; the drawn frame is written back (sprites kept out). Where the
      view reveals a place the map knows nothing of, the frame is drawn with
      `reveal_sampler_steps` (when larger): new content is where few steps blur most.
    The record (and so `Step.camera`) runs whenever a module is on; the baseline holds
    none: `Step.values` is empty and `Step.camera` None. `timings` holds the last step's
    milliseconds per part.

    Where an `observer` reads the frame drawn otherwise than LogicNet decided (on the
    `observer_events`, or all), the frame is first drawn anew up to `resamples` times
    with the sampler's noise drawn on, told the same events; then drawn again (`redraws`)
    with the same noise, told what the observer read; where they still differ, the record
    follows the frame and its HUD lags a step.

    Where a `palette` is given (the colours the game draws its HUD and its view with),
    every drawn pixel is snapped to the nearest colour of its band before anything reads
    it: a pixel-art game's frames stay in its colours instead of drifting off them.

    Where the camera follows the player (GameSpec.follow), each start frame comes with the
    player's start (`start_players`, world pixels (x, y)) and the world's bounds
    (`start_bounds`, left, top, right, bottom); without them the record tracks no camera
    and the spatial module is not available.
    """

    def __init__(
        self,
        generator: torch.nn.Module,
        spec: GameSpec,
        start_frames: np.ndarray,
        sampler_steps: int = 1,
        seed: int = 0,
        logicnet: torch.nn.Module | None = None,
        numerical: bool | None = None,
        start_cameras: np.ndarray | None = None,
        spatial: bool | None = None,
        sprite_mask: Callable[[np.ndarray], np.ndarray] | None = None,
        reveal_sampler_steps: int = 0,
        start_players: np.ndarray | None = None,
        start_bounds: np.ndarray | None = None,
        palette: Palette | None = None,
        observer: torch.nn.Module | None = None,
        observer_events: Sequence[str] | None = None,
        resamples: int = 0,
    ):
        from maag.models.flow import sampler_for
        from maag.numerical import DigitTokenizer

        self.spec = spec
        self.generator = generator.eval()
        self.context_frames = generator.config.context_frames
        num_tokens = generator.config.num_cond_tokens
        with_events = num_tokens > DigitTokenizer(spec).num_tokens  # trained with event tokens
        self.tokens = DigitTokenizer(spec, with_events) if num_tokens else None
        if self.tokens and self.tokens.num_tokens != generator.config.num_cond_tokens:
            raise MaagError(f"the generator's digit tokens do not match the {spec.name} values")
        if observer is not None and logicnet is None:
            raise MaagError("an observer checks what LogicNet decided: the model has no LogicNet")
        for network, role in ((logicnet, "LogicNet"), (observer, "the observer")):
            if network is None:
                continue
            if tuple(network.config.event_names) != spec.event_names:
                raise MaagError(
                    f"{role} reads events {list(network.config.event_names)}, "
                    f"but {spec.name} has {list(spec.event_names)}"
                )
            if network.config.observes != (network is observer):
                raise MaagError(
                    "the observer decides events ahead: it was not trained to observe"
                    if network is observer
                    else "LogicNet reads frames already drawn: it was trained to observe"
                )
            if network.config.context_frames > self.context_frames:
                raise MaagError(f"{role} needs more context frames than the generator keeps")
            network.eval()
        if logicnet is not None and logicnet.config.extra_channels:
            raise MaagError("LogicNet reads the map's view at a camera it has yet to decide")
        self.logicnet, self.observer = logicnet, observer
        check_observer_events(spec, observer_events)
        # per event: whether the observer's reading of it overrules LogicNet's (all: None)
        self.observed = [observer_events is None or n in observer_events for n in spec.event_names]
        self.map_inputs = generator.config.extra_channels == 4
        self.start_players = self.start_bounds = None
        if spec.follow is not None and (start_players is not None or start_bounds is not None):
            if start_players is None or start_bounds is None:
                raise MaagError("start players and start bounds come together")
            self.start_players = np.asarray(start_players)
            self.start_bounds = np.asarray(start_bounds)
            for what, array, width in (("players", start_players, 2), ("bounds", start_bounds, 4)):
                if np.shape(array) != (len(start_frames), width):
                    raise MaagError(
                        f"start {what} have shape {np.shape(array)}, "
                        f"not ({len(start_frames)}, {width})"
                    )
        tracks_camera = bool(spec.moves) or self.start_players is not None
        if logicnet is not None and logicnet.config.focus and self.start_players is None:
            raise MaagError("this LogicNet looks around the player: the model needs start players")
        has = {
            "numerical": logicnet is not None and self.tokens is not None,
            "spatial": logicnet is not None and self.map_inputs and tracks_camera,
        }
        wanted = {"numerical": numerical, "spatial": spatial}
        for name, on in wanted.items():
            if on and not has[name]:
                if name == "spatial" and spec.follow is not None and not tracks_camera:
                    raise MaagError(
                        f"the spatial module needs the player's start and the world's bounds "
                        f"of each start frame, as {spec.name}'s camera follows the player: "
                        "this model has none (export it again)"
                    )
                raise MaagError(f"this model has no {name} module")
        # a module asked off here is left out altogether; one left at None can be switched
        self.available = tuple(m for m in has if has[m] and wanted[m] is not False)
        if observer and observer.config.extra_channels and "spatial" not in self.available:
            raise MaagError("the observer reads the spatial map: it is not there or left out")
        self.numerical = "numerical" in self.available
        self.spatial = "spatial" in self.available
        self.sprite_mask = sprite_mask
        self.start_frames = start_frames
        self.start_cameras = (
            np.zeros((len(start_frames), 2), int) if start_cameras is None else start_cameras
        )
        self.sampler = sampler_for(self.generator, sampler_steps)
        self.reveal_sampler_steps = reveal_sampler_steps
        self.seed = seed
        self.noise: torch.Generator | None = None
        self.timings: dict[str, float] = {}  # milliseconds per part of the last step
        self.last_sampler_steps = 0  # sampler steps the last frame took
        self.custom_map: CustomMap | None = None
        if palette is not None and not palette.fits(spec.hud_height, spec.view_size):
            raise MaagError(f"the palette does not fit {spec.name}'s HUD and view")
        self.palette = palette
        # where the observer reads otherwise than LogicNet decided: frames drawn anew with
        # other noise, told the same events, then frames drawn again told what it read
        self.resamples, self.redraws = resamples, 1
        self.resampled = self.redrawn = 0  # frames drawn anew / again since reset

    def use_custom_map(self, custom: CustomMap) -> None:
        """Start every reset from a user's world: the map pre-filled with it and, where it
        brings its own start (a Pac-Man maze), that start's frame, camera and player."""
        if "spatial" not in self.available:
            raise MaagError("a custom map needs the spatial module")
        start = custom.start
        if start is not None and start.frame.shape != self.start_frames.shape[1:]:
            raise MaagError(f"the custom map's start frame has shape {start.frame.shape}")
        self.custom_map = custom

    def switch(self, module: str, on: bool) -> None:
        """Switch an available module on or off, also mid-episode: the record and the map
        are kept up to date for every available module; the switch decides whether they
        condition the generator (and whether `Step.values` shows the record)."""
        if module not in ("numerical", "spatial"):
            raise MaagError(f"no module {module!r}: numerical or spatial")
        if on and module not in self.available:
            raise MaagError(
                f"this game has no {module} module (the model lacks it or it was left out)"
            )
        setattr(self, module, bool(on))

    @property
    def modules(self) -> tuple[str, ...]:
        """The consistency modules switched on."""
        return tuple(m for m in ("numerical", "spatial") if getattr(self, m))

    @property
    def sampler_steps(self) -> int:
        return self.sampler.steps

    @sampler_steps.setter
    def sampler_steps(self, steps: int) -> None:
        if steps < 1:
            raise MaagError(f"sampler steps must be at least 1, got {steps}")
        self.sampler.steps = steps

    def reset(self, seed: int | None = None) -> Step:
        from maag.numerical import Record
        from maag.spatial import SpatialMap

        seed = self.seed if seed is None else seed
        self.noise = torch.Generator().manual_seed(seed)
        index = np.random.default_rng(seed).integers(len(self.start_frames))
        start, camera = self.start_frames[index], tuple(int(c) for c in self.start_cameras[index])
        follow = {}
        if self.start_players is not None:
            follow = {
                "player": tuple(int(c) for c in self.start_players[index]),
                "bounds": tuple(int(c) for c in self.start_bounds[index]),
            }
        if self.custom_map is not None and self.custom_map.start is not None:
            own = self.custom_map.start
            start, camera = own.frame, own.camera
            follow = {"player": own.player, "bounds": own.bounds} if follow else {}
        self.context = deque([start] * self.context_frames, maxlen=self.context_frames)
        self.context_cameras = deque([camera] * self.context_frames, maxlen=self.context_frames)
        self.record = Record(self.spec, camera=camera, **follow) if self.available else None
        self.map = SpatialMap() if "spatial" in self.available else None
        self.t = self.resampled = self.redrawn = 0
        self._write_map(start)
        if self.map is not None and self.custom_map is not None:
            custom = self.custom_map
            self.map.prefill(custom.image, custom.origin, custom.mask)
        return self._step(start.copy(), ())

    def step(self, action: int) -> Step:
        if self.noise is None:
            raise MaagError("call reset() before step()")
        action = self.spec.check_action(action)
        self.timings = {}
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny tensors: waking a thread pool per op costs more
        try:
            return self._advance(action, threads)
        finally:
            torch.set_num_threads(threads)

    def _advance(self, action: int, threads: int) -> Step:
        """One step; the generator runs on `threads` threads, everything else on one."""
        from maag.models.flow import to_unit

        clock = time.perf_counter()
        context = to_unit(torch.from_numpy(np.stack(self.context)))[None]
        actions = torch.tensor([action])
        # the rules' random draws this step, told to both networks as the action is
        draws = [int(torch.randint(n, (1,), generator=self.noise)) for n in self.spec.chance]
        chance = torch.tensor([draws]) if draws else None
        clock = self._lap("inputs", clock)
        start, noise_state = copy.deepcopy(self.record), self.noise.get_state()
        told = self._decide(context, actions, chance) if self.record is not None else None
        decided = told
        attempts = self.resamples + self.redraws + 1
        unrestored = None  # the map as the step began, where its events restored the world
        for attempt in range(attempts):
            if attempt:
                self.record = copy.deepcopy(start)
            if attempt > self.resamples:  # the same noise: the new events are all that differs
                self.noise.set_state(noise_state)
            noise_state = self.noise.get_state()
            events = self._apply(told, action)
            unrestored = self._restore_world(events, unrestored)
            pixels = self._draw(context, actions, chance, events, start, threads)
            if self.observer is None or self.record is None:
                break
            clock = time.perf_counter()
            seen = self._observe(pixels, actions, chance, start, decided)
            self._lap("observer", clock)
            if seen == told:
                break
            if attempt < self.resamples:  # drawn anew with other noise, told the same
                self.resampled += 1
                continue
            told = seen
            if attempt == attempts - 1:  # the record follows the frame; its HUD lags a step
                self.record = copy.deepcopy(start)
                events = self._apply(told, action)
                unrestored = self._restore_world(events, unrestored)
            else:
                self.redrawn += 1
        self.context.append(pixels)
        if self._camera is not None:
            self.context_cameras.append(self._camera)
        self.t += 1
        if self.map is not None:
            clock = time.perf_counter()
            self._write_map(pixels)
            self._lap("spatial", clock)
        return self._step(pixels, events, tuple(draws))

    def _decide(
        self, context: torch.Tensor, actions: torch.Tensor, chance: torch.Tensor | None
    ) -> list[int]:
        """LogicNet's counts of the step's events (spec order, the rules' own ones left out)."""
        from maag.models.flow import stack_context

        clock = time.perf_counter()
        recent = context[:, -self.logicnet.config.context_frames :]
        player = None
        if self.logicnet.config.focus:  # where the record has him
            player = torch.from_numpy(np.subtract([self.record.player], [self.record.camera]))
        counts = self.logicnet.predict(stack_context(recent), actions, chance=chance, player=player)
        self._lap("logicnet", clock)
        return self._decided(counts[0].tolist())

    def _decided(self, counts: list[int]) -> list[int]:
        """`counts` with the events the rules fire on their own (`EventSpec.when`) at 0."""
        return [0 if event.when else n for event, n in zip(self.spec.events, counts, strict=True)]

    def _apply(self, counts: list[int] | None, action: int) -> tuple[str, ...]:
        """The record takes the step's event `counts` (and fires the rules' own events);
        returns the step's events. Nothing without a record (the baseline)."""
        if self.record is None:
            return ()
        clock = time.perf_counter()
        names = self.spec.event_names
        events = tuple(n for n, c in zip(names, counts, strict=True) for _ in range(c))
        events = self.record.apply(events, action)
        self._lap("record", clock)
        return events

    def _restore_world(
        self, events: tuple[str, ...], unrestored: SpatialMap | None
    ) -> SpatialMap | None:
        """With the map: first back as the step began where an earlier drawing of the step
        restored it (`unrestored`), then restored to every place's first look where
        `events` restore the world (the pellets back: the frame is drawn from that view).
        Returns the map as it was before this restore, None where there was none."""
        if self.map is None:
            return None
        if unrestored is not None:
            self.map = unrestored
        if not any(self.spec.event(name).restores_world for name in events):
            return None
        before = copy.deepcopy(self.map)
        self.map.restore()
        return before

    def _draw(
        self, context: torch.Tensor, actions: torch.Tensor, chance: torch.Tensor | None,
        events: tuple[str, ...], start: Any, threads: int,
    ) -> np.ndarray:  # fmt: skip
        """The next frame drawn, told the record's values and `events` (and, with the
        spatial module, the map's view at the record's camera; `start` is the record as
        the step began)."""
        from maag.models.flow import stack_context, to_uint8
        from maag.numerical import blank_hud
        from maag.spatial import generator_inputs

        clock = time.perf_counter()
        hud = self.spec.hud_height
        base, extra, steps = context[:, -1], None, self.sampler.steps
        if self.map_inputs:
            size = (self.spec.frame_height - hud, self.spec.frame_width)
            moves, sprites, player = np.zeros((1, 2), int), None, None
            tile = self.generator.config.player_tile
            if self.spatial:
                canvas, known, _ = self.map.retrieve(self.record.camera, size)
                moves[0] = np.subtract(self.record.camera, start.camera)
                if tile and start.player is not None:  # the player where the record moved it
                    was = np.subtract(start.player, start.camera)
                    player = np.array(
                        [[*was, *np.subtract(self.record.player, self.record.camera)]]
                    )
                if self.sprite_mask is not None:
                    sprites = self.sprite_mask(self.context[-1])[None]
                hidden = sprites[0, hud:] if sprites is not None else False
                if (~known & ~hidden).any():
                    steps = max(steps, self.reveal_sampler_steps)
            else:
                canvas, known = np.zeros((*size, 3), np.uint8), np.zeros(size, bool)
            base, extra = generator_inputs(
                base, canvas[None], known[None], hud, moves, sprites, player, tile
            )
            clock = self._lap("spatial" if self.spatial else "inputs", clock)
        cond_ids = None
        if self.tokens:
            if self.numerical:
                counts = [events.count(name) for name in self.tokens.event_names]
                ids = self.tokens.encode(self.record.values, counts)
            else:
                ids = self.tokens.null()
            cond_ids = torch.tensor([ids])
            if self.numerical:
                every = torch.ones(1, dtype=torch.bool)
                base, context = blank_hud(base, every, hud), blank_hud(context, every, hud)
        moves = None  # how far the camera moves from each context frame, where the record knows
        if self._camera is not None:
            moves = torch.from_numpy(np.subtract(self._camera, list(self.context_cameras)))[None]
        torch.set_num_threads(threads)
        frame = self.sampler.sample(
            self.generator, base=base, context=stack_context(context), action=actions,
            generator=self.noise, extra=extra, cond_ids=cond_ids, steps=steps, chance=chance,
            context_moves=moves,
        )  # fmt: skip
        torch.set_num_threads(1)
        pixels = np.ascontiguousarray(to_uint8(frame[0]).numpy())  # (H, W, 3) in C order
        if self.palette is not None:
            pixels = self.palette.snap(pixels, hud)
        self._lap("generator", clock)
        self.last_sampler_steps = steps
        return pixels

    def _observe(
        self, pixels: np.ndarray, actions: torch.Tensor, chance: torch.Tensor | None,
        record: Any, decided: list[int],
    ) -> list[int]:  # fmt: skip
        """The counts of the events (spec order, the rules' own ones left out) the observer
        reads in the frame just drawn, after the context frames before it, for the events
        it observes, and LogicNet's `decided` counts for the others; `record` is the record
        as the step started (where the player stood)."""
        from maag.transitions import logicnet_logits

        before = list(self.context)[len(self.context) - self.observer.config.context_frames :]
        batch = {
            "context": torch.from_numpy(np.stack(before))[None],
            "target": torch.from_numpy(pixels)[None],
            "action": actions,
            "chance": chance if chance is not None else torch.zeros(1, 0, dtype=torch.long),
            "player": torch.from_numpy(np.subtract([record.player], [record.camera]))
            if record.player is not None
            else torch.zeros(1, 0, dtype=torch.long),
            "camera_move": np.subtract([self.record.camera], [record.camera]),
        }
        if self.observer.config.extra_channels:  # the map's view where the step went
            size = (self.spec.frame_height - self.spec.hud_height, self.spec.frame_width)
            canvas, known, _ = self.map.retrieve(self.record.camera, size)
            batch |= {"canvas": canvas[None], "known": known[None]}
        with torch.inference_mode():
            read = logicnet_logits(self.observer, batch).argmax(dim=-1)[0].tolist()
        seen = [r if o else d for r, o, d in zip(read, self.observed, decided, strict=True)]
        return self._decided(seen)

    def save_session(self, path: str | Path) -> None:
        """Write everything the next steps depend on to `path` (atomically): the record,
        the map, the context frames and the random state; arrays in safetensors."""
        if self.noise is None:
            raise MaagError("nothing to save: call reset() first")
        arrays = {
            "context": np.ascontiguousarray(np.stack(self.context)),  # safetensors: C order
            "context_cameras": np.array(self.context_cameras, np.int64).reshape(-1, 2),
            "noise_state": self.noise.get_state().numpy(),
            **{f"map.{k}": v for k, v in (self.map.state_dict() if self.map else {}).items()},
        }
        meta = {
            "format": SESSION_FORMAT,
            "game": self.spec.name,
            "t": self.t,
            "modules": list(self.available),
            "values": self.record.values if self.record else None,
            "camera": self.record.camera if self.record else None,
            **{k: getattr(self.record, k) for k in ("player", "home", "bounds") if self.record},
        }
        write_atomic(path, lambda tmp: save_file(arrays, str(tmp), {"session": json.dumps(meta)}))

    def load_session(self, path: str | Path) -> Step:
        """Continue a saved session: the next steps are those the saved game would take."""
        from maag.numerical import Record
        from maag.spatial import SpatialMap

        try:
            with safe_open(str(path), "np") as f:
                meta = json.loads(f.metadata()["session"])
                arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except (OSError, KeyError, TypeError, ValueError, SafetensorError) as exc:
            raise MaagError(f"{path} is not a readable maag session: {exc}") from None
        if meta.get("format") != SESSION_FORMAT:
            raise MaagError(f"{path} is not a maag session file")
        if meta["game"] != self.spec.name:
            raise MaagError(f"{path} is a {meta['game']} session, not {self.spec.name}")
        if tuple(meta["modules"]) != self.available:
            raise MaagError(
                f"{path} was saved with modules {meta['modules']}, not {list(self.available)}"
            )
        context = arrays["context"]
        if context.shape != (self.context_frames, *self.start_frames.shape[1:]):
            raise MaagError(f"{path} holds context frames of shape {context.shape}")
        self.context = deque(list(context), maxlen=self.context_frames)
        self.noise = torch.Generator()
        self.noise.set_state(torch.from_numpy(arrays["noise_state"]))
        self.t = meta["t"]
        self.record = None
        if meta["values"] is not None:
            self.record = Record(
                self.spec, meta["values"],
                **{k: _point(meta.get(k)) for k in ("camera", "player", "bounds", "home")},
            )  # fmt: skip
        cameras = arrays.get("context_cameras")
        if cameras is None:  # saved before sessions kept them: the frames seen from here
            cameras = np.array([self._camera or (0, 0)] * self.context_frames)
        if cameras.shape != (self.context_frames, 2):
            raise MaagError(f"{path} holds context cameras of shape {cameras.shape}")
        self.context_cameras = deque(map(tuple, cameras.tolist()), maxlen=self.context_frames)
        map_state = {k[4:]: v for k, v in arrays.items() if k.startswith("map.")}
        self.map = SpatialMap.from_state(map_state) if "spatial" in self.available else None
        return self._step(context[-1].copy(), ())

    @property
    def _camera(self) -> tuple[int, int] | None:
        """The record's camera (the next frame's, while a step draws it); None without."""
        return self.record.camera if self.record is not None else None

    def _write_map(self, frame: np.ndarray) -> None:
        if self.map is None:
            return
        hud = self.spec.hud_height
        keep = self.sprite_mask(frame)[hud:] if self.sprite_mask else None
        self.map.write(frame[hud:], self.record.camera, self.t, keep)

    def _step(
        self, frame: np.ndarray, events: tuple[str, ...], chance: tuple[int, ...] = ()
    ) -> Step:
        values = dict(self.record.values) if self.numerical else {}
        record = self.record
        camera = record.camera if record is not None else None
        player, bounds = (record.player, record.bounds) if record is not None else (None, None)
        events = events if self.numerical else ()
        return Step(frame, values, events, camera, player, bounds, chance)

    def _lap(self, part: str, since: float) -> float:
        """Add the milliseconds since `since` to `part`'s timing; returns now."""
        now = time.perf_counter()
        self.timings[part] = self.timings.get(part, 0.0) + (now - since) * 1000
        return now


def _point(value: Any) -> tuple[int, ...] | None:
    """A saved point or box (a JSON list) as a tuple; None stays None."""
    return None if value is None else tuple(int(c) for c in value)


def shipped_model(game: str) -> Path:
    """The model folder shipped for `game` in maag.models, or MaagError if there is none."""
    import maag.models

    folder = Path(maag.models.__file__).parent / game
    if not (folder / "model.json").exists():
        raise MaagError(
            f"no generative model is shipped for {game} yet: play the engine with --engine"
        )
    return folder


def save_model_folder(
    out: str | Path,
    generator: Any,
    spec: GameSpec,
    start_frames: np.ndarray,
    start_cameras: np.ndarray,
    sampler_steps: int,
    provenance: dict[str, Any],
    logicnet: Any = None,
    reveal_sampler_steps: int = 0,
    start_players: np.ndarray | None = None,
    start_bounds: np.ndarray | None = None,
    palette: Palette | None = None,
    observer: Any = None,
    observer_events: Sequence[str] | None = None,
    resamples: int = 0,
) -> Path:
    """Write a playable model folder (weights as safetensors, config as JSON).

    `start_players` (N, 2) and `start_bounds` (N, 4), where given, are the player's start
    and the world's bounds (world pixels) at each start frame, for a camera that follows
    the player (GameSpec.follow). `resamples`: frames drawn anew with other noise, told
    the same events, where the observer reads otherwise than LogicNet decided.

    The folder is built beside `out` and swapped in whole, so a failed export never
    leaves a half-written model; an existing model card (README.md) is kept.
    """
    check_observer_settings(spec, observer, observer_events, resamples)
    out = Path(out)
    staging, retired = out.with_name(f".{out.name}.new"), out.with_name(f".{out.name}.old")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    generator.save_pretrained(staging / "generator", safe_serialization=True)
    for part, network in (("logicnet", logicnet), ("observer", observer)):
        if network is not None:
            network.save_pretrained(staging / part, safe_serialization=True)
    starts = {
        "frames": np.ascontiguousarray(start_frames),
        "cameras": np.ascontiguousarray(start_cameras, dtype=np.int32),
    }
    for key, array in (("players", start_players), ("bounds", start_bounds)):
        if array is not None:
            starts[key] = np.ascontiguousarray(array, dtype=np.int32)
    save_file(starts, str(staging / "start_frames.safetensors"))
    config = {
        "format": MODEL_FORMAT,
        "game": spec.name,
        "spec": spec.to_dict(),
        "sampler_steps": sampler_steps,
        "reveal_sampler_steps": reveal_sampler_steps,
        "provenance": provenance,
    }
    if palette is not None:
        config["palette"] = palette.to_dict()
    if observer is not None and observer_events is not None:
        config["observer_events"] = list(observer_events)
    if resamples:
        config["resamples"] = int(resamples)
    (staging / "model.json").write_text(json.dumps(config, indent=1))
    if (out / "README.md").exists():
        shutil.copy2(out / "README.md", staging / "README.md")
    shutil.rmtree(retired, ignore_errors=True)
    if out.exists():
        out.rename(retired)
    staging.rename(out)
    shutil.rmtree(retired, ignore_errors=True)
    return out


def check_observer_events(spec: GameSpec, events: Sequence[str] | None) -> None:
    """MaagError unless `events` (None: all) are events of `spec`."""
    unknown = set(events or ()) - set(spec.event_names)
    if unknown:
        raise MaagError(f"observer events {sorted(unknown)} are not {spec.name} events")


def check_observer_settings(
    spec: GameSpec, observer: Any, observer_events: Sequence[str] | None, resamples: int
) -> None:
    """MaagError unless the observer's settings fit `spec` and an `observer` is there."""
    check_observer_events(spec, observer_events)
    if observer_events is not None and observer is None:
        raise MaagError("observer events name what an observer reads: the model has no observer")
    if resamples and observer is None:
        raise MaagError("frames are drawn anew where the observer reads otherwise: no observer")


def read_model_config(path: str | Path) -> dict[str, Any]:
    """A model folder's model.json, or MaagError naming what is wrong."""
    path = Path(path)
    if not path.is_dir():
        raise MaagError(f"no model folder at {path}")
    try:
        config = json.loads((path / "model.json").read_text())
    except FileNotFoundError:
        raise MaagError(f"{path} holds no model.json: not a maag model folder") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MaagError(f"{path / 'model.json'} cannot be read: {exc}") from None
    if not isinstance(config, dict) or config.get("format") != MODEL_FORMAT:
        raise MaagError(f"{path / 'model.json'} is not a maag model config ({MODEL_FORMAT})")
    return config


def config_class(folder: Path) -> str:
    """The `_class_name` of a network folder's config.json ("" where it cannot be read:
    loading the network then says what is wrong)."""
    try:
        return str(json.loads((folder / "config.json").read_text()).get("_class_name", ""))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return ""


def load_network(cls: Any, folder: Path, what: str) -> Any:
    """A diffusers-style network from safetensors + config.json, or MaagError."""
    try:
        return cls.from_pretrained(folder, use_safetensors=True, torch_dtype=torch.float32)
    except (OSError, ValueError, RuntimeError, TypeError, SafetensorError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MaagError(f"{what} in {folder.parent} cannot be loaded: {first_line}") from None


def load(
    path: str | Path,
    game: str | None = None,
    sampler_steps: int | None = None,
    seed: int = 0,
    numerical: bool | None = None,
    spatial: bool | None = None,
    reveal_sampler_steps: int | None = None,
) -> GenerativeGame:
    """The generative game in model folder `path` (checked to be of `game` when given).

    A module switch left at None is on (and can be switched live) where the folder has the
    module; False leaves the module out (nothing of it runs); sampler settings
    left at None are the folder's (model.json).
    """
    from maag.models.flow import generator_class
    from maag.models.logicnet import LogicNet

    path = Path(path)
    config = read_model_config(path)
    spec = GameSpec.from_dict(config["spec"])
    if game is not None and spec.name != game:
        raise MaagError(f"model {path} is a {spec.name} model, not {game}")
    generator = load_network(
        generator_class(config_class(path / "generator")), path / "generator", "generator weights"
    )
    logicnet = observer = None
    if (path / "logicnet").is_dir() and (numerical, spatial) != (False, False):
        logicnet = load_network(LogicNet, path / "logicnet", "LogicNet weights")
        if (path / "observer").is_dir():
            observer = load_network(LogicNet, path / "observer", "observer weights")
            if observer.config.extra_channels and spatial is False:
                observer = None  # it reads the map, which is left out
    try:
        starts = load_file(str(path / "start_frames.safetensors"))
        start_frames, start_cameras = starts["frames"], starts["cameras"]
        start_players, start_bounds = starts.get("players"), starts.get("bounds")
    except (OSError, KeyError, SafetensorError) as exc:
        raise MaagError(f"start frames in {path} cannot be loaded: {exc}") from None
    expected = (spec.frame_height, spec.frame_width, 3)
    if start_frames.ndim != 4 or start_frames.shape[1:] != expected or not len(start_frames):
        raise MaagError(
            f"start frames in {path} have shape {start_frames.shape}, not (N, *{expected})"
        )
    if start_cameras.shape != (len(start_frames), 2):
        raise MaagError(f"start cameras in {path} have shape {start_cameras.shape}")
    steps = sampler_steps or config.get("sampler_steps", 1)
    reveal_steps = (
        config.get("reveal_sampler_steps", 0)
        if reveal_sampler_steps is None
        else reveal_sampler_steps
    )
    palette = config.get("palette")
    if palette is not None:
        try:
            palette = Palette.from_dict(palette)
        except MaagError as exc:
            raise MaagError(f"{path / 'model.json'}: {exc}") from None
    from maag.games import GAMES

    definition = GAMES.get(spec.name)
    return GenerativeGame(
        generator, spec, start_frames, steps, seed, logicnet, numerical, start_cameras,
        spatial, definition.sprite_mask if definition else None, reveal_steps,
        start_players, start_bounds, palette, observer, config.get("observer_events"),
        config.get("resamples", 0) if observer is not None else 0,
    )  # fmt: skip
