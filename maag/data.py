"""Trajectory data: episodes of a ground-truth game, stored as safetensors shards.

A dataset folder holds shards (`shard-00012.safetensors`, each a stack of whole episodes)
and a manifest (`manifest.json`, or `manifest-K-of-N.json` per machine) with the game's
spec, the seeds, the counts and a SHA-256 per shard. Reading checks size and checksum
before parsing a shard, so a truncated or tampered file is named, never half-used.

Arrays of a shard with E episodes of T steps:
  frames  uint8 (E, T+1, H, W, 3)  frame 0 is the reset frame
  actions int64 (E, T)             actions[t] led from frame t to frame t+1
  values  int32 (E, T+1, V)        in spec.values order
  events  uint8 (E, T+1, K)        how often each spec event fired on that step
  camera  int32 (E, T+1, 2)        world pixel (x, y) of the view
  chance  uint8 (E, T+1, C)        the rules' random draws (spec.chance) that led to frame
                                   t (0 at t = 0); shards of games without draws written
                                   before draws existed lack it and read as (E, T+1, 0)
  player  int32 (E, T+1, P)        the player's world pixel (x, y) where the camera follows
                                   one (spec.follow: P = 2), else P = 0; shards written
                                   before positions were stored lack it and read as P = 0

and the alternative outcomes the engine offers (`Engine.alternative`; none for most games),
N of them in all:
  alt_step    int64 (N, 2)         (episode in the shard, frame t) each is an alternative to
  alt_frames  uint8 (N, H, W, 3)   frame t had the step's events come out otherwise
  alt_values  int32 (N, V)
  alt_events  uint8 (N, K)
  alt_camera  int32 (N, 2)
Shards written before alternatives existed lack the alt_* arrays and read as holding none.

Episodes played by a model folder (`model`) hold its drawn frames, the record's camera
and player, and for values and events what the game's referee reads in each drawn frame:
what the rules say the frames show, which an observer learns to read.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save_file
from tqdm import tqdm

from maag.errors import MaagError
from maag.io import atomic_path, ensure_writable_dir, sha256_bytes, write_atomic
from maag.spec import GameSpec, Step

FORMAT = "maag-trajectories/1"
ARRAYS = ("frames", "actions", "values", "events", "camera", "chance", "player")
ALTERNATIVES = ("alt_frames", "alt_values", "alt_events", "alt_camera")
SHARD_TARGET_BYTES = 64 << 20


def episode_seeds(seed: int, index: int) -> tuple[int, int]:
    """(engine seed, agent seed) of episode `index` of a run seeded with `seed`."""
    state = np.random.SeedSequence([seed, index]).generate_state(2)
    return int(state[0]), int(state[1])


def generate_episode(
    game: str, agent: str, steps: int, seed: int, index: int, world: str | None = None,
    model: str | None = None,
) -> dict:  # fmt: skip
    """Play one episode of `game` with a scripted agent, in the custom world file `world`
    where one is given, on the engine or, with `model`, on that model folder (values and
    events as the referee reads them); arrays as in the module docstring (alt_step holding
    only the frame index t)."""
    from maag.games import get_game, make_agent

    definition = get_game(game)
    spec = definition.spec
    engine_seed, agent_seed = episode_seeds(seed, index)
    referee = None
    if model is not None:
        engine = _played(model, game, engine_seed, world)
        referee = definition.referee() if world is None else definition.referee(world)
    elif world is None:
        engine = definition.engine(engine_seed)
    else:
        engine = definition.engine_in_map(engine_seed, world)
    scripted = make_agent(game, agent, agent_seed)

    frames = np.empty((steps + 1, spec.frame_height, spec.frame_width, 3), dtype=np.uint8)
    actions = np.empty(steps, dtype=np.int64)
    values = np.empty((steps + 1, len(spec.values)), dtype=np.int32)
    events = np.zeros((steps + 1, len(spec.events)), dtype=np.uint8)
    camera = np.empty((steps + 1, 2), dtype=np.int32)
    chance = np.zeros((steps + 1, len(spec.chance)), dtype=np.uint8)
    player = np.zeros((steps + 1, 2 if spec.follow else 0), dtype=np.int32)
    alternatives: dict[str, list] = {key: [] for key in ("alt_step", *ALTERNATIVES)}
    step = engine.reset(engine_seed)
    if referee is not None:
        step = _as_read(step, referee.start(definition.read_frame(step.frame)))
    for t in range(steps + 1):
        frames[t], values[t], events[t], camera[t] = _arrays(spec, step)
        chance[t] = step.chance or 0
        if spec.follow:
            player[t] = step.player
        if t < steps:
            actions[t] = scripted.act(step)
            other = engine.alternative(int(actions[t])) if referee is None else None
            if other is not None:
                alternatives["alt_step"].append(t + 1)
                for key, array in zip(ALTERNATIVES, _arrays(spec, other), strict=True):
                    alternatives[key].append(array)
            step = engine.step(int(actions[t]))
            if referee is not None:
                reading = definition.read_frame(step.frame)
                step = _as_read(step, referee.judge(int(actions[t]), reading))
    none = no_alternatives(spec)
    return {
        "frames": frames,
        "actions": actions,
        "values": values,
        "events": events,
        "camera": camera,
        "chance": chance,
        "player": player,
        "alt_step": np.array(alternatives.pop("alt_step"), dtype=np.int64),
        **{key: np.stack(rows) if rows else none[key] for key, rows in alternatives.items()},
    }


def _played(model: str, game: str, seed: int, world: str | None) -> Any:
    """Model folder `model` as a game to play data on (its map pre-filled with `world`)."""
    from maag.games import get_game
    from maag.generative import load

    played = load(model, game=game, seed=seed)
    if not played.available:
        raise MaagError(f"{model} keeps no record (a baseline): it cannot play data episodes")
    if world is not None:
        played.use_custom_map(get_game(game).custom_map(world))
    return played


def _as_read(step: Step, judgement: Any) -> Step:
    """`step` with the values and events the referee read in its frame."""
    return dataclasses.replace(step, values=dict(judgement.values), events=judgement.events)


def alternative_shapes(spec: GameSpec, count: int) -> dict[str, tuple[int, ...]]:
    """The shapes of a shard's alt_* arrays holding `count` alternatives."""
    return {
        "alt_step": (count, 2),
        "alt_frames": (count, spec.frame_height, spec.frame_width, 3),
        "alt_values": (count, len(spec.values)),
        "alt_events": (count, len(spec.events)),
        "alt_camera": (count, 2),
    }


def no_alternatives(spec: GameSpec) -> dict[str, np.ndarray]:
    """The alt_* arrays of a shard without alternatives."""
    dtypes = {"alt_step": np.int64, "alt_frames": np.uint8, "alt_values": np.int32}
    dtypes |= {"alt_events": np.uint8, "alt_camera": np.int32}
    return {k: np.zeros(shape, dtypes[k]) for k, shape in alternative_shapes(spec, 0).items()}


def _arrays(spec: GameSpec, step: Step) -> tuple[np.ndarray, ...]:
    """A step's frame, values, event counts and camera as the shards store them."""
    counts = np.zeros(len(spec.events), dtype=np.uint8)
    for name in step.events:
        counts[spec.event_names.index(name)] += 1
    values = np.array([step.values[name] for name in spec.value_names], dtype=np.int32)
    return step.frame, values, counts, np.array(step.camera, dtype=np.int32)


@dataclass(frozen=True)
class _ShardJob:
    out: str
    index: int
    game: str
    agent: str
    steps: int
    seed: int
    episodes: tuple[int, int]  # [start, stop)
    world: str | None  # a custom world file, or None for the game's own
    model: str | None  # a model folder playing the episodes, or None for the engine


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.safetensors"


def _write_shard(job: _ShardJob) -> dict[str, Any]:
    episodes = [
        generate_episode(job.game, job.agent, job.steps, job.seed, i, job.world, job.model)
        for i in range(*job.episodes)
    ]
    arrays = {key: np.stack([e[key] for e in episodes]) for key in ARRAYS}
    arrays["alt_step"] = np.concatenate(
        [np.stack([np.full_like(e["alt_step"], i), e["alt_step"]], axis=1)
         for i, e in enumerate(episodes)]
    )  # fmt: skip
    for key in ALTERNATIVES:
        arrays[key] = np.concatenate([e[key] for e in episodes])
    target = Path(job.out) / shard_name(job.index)
    with atomic_path(target) as tmp:
        save_file(arrays, str(tmp), metadata={"format": FORMAT, "game": job.game})
        data = tmp.read_bytes()
    return {
        "file": target.name,
        "episodes": list(job.episodes),
        "seeds": [list(episode_seeds(job.seed, i)) for i in range(*job.episodes)],
        "bytes": len(data),
        "sha256": sha256_bytes(data),
    }


def manifest_name(shard_index: int, num_shards: int) -> str:
    if num_shards == 1:
        return "manifest.json"
    return f"manifest-{shard_index:05d}-of-{num_shards:05d}.json"


def write_dataset(
    game: str,
    agent: str,
    episodes: int,
    steps: int,
    out: str | Path,
    seed: int = 0,
    workers: int = 1,
    shard_index: int = 0,
    num_shards: int = 1,
    episodes_per_shard: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    world: str | Path | None = None,
    model: str | Path | None = None,
) -> Path:
    """Generate this machine's part (`shard_index` of `num_shards`) of a dataset into `out`,
    played in the custom world file `world` (e.g. a Pac-Man maze) where one is given, on
    the engine or on model folder `model` (values and events as the game's referee reads
    the frames it draws).

    Returns the manifest path. Episode seeds depend only on `seed` and the episode
    index, so the same dataset comes out however the work is split.
    """
    from maag.games import get_game, make_agent

    definition = get_game(game)
    spec = definition.spec
    make_agent(game, agent, 0)  # name check before any work
    world_sha256 = None
    if world is not None:
        if definition.engine_in_map is None:
            raise MaagError(f"the {game} engine plays its own world only; drop --map")
        world = str(Path(world).resolve())
        definition.engine_in_map(0, world)  # a damaged file fails here, in one line
        world_sha256 = sha256_bytes(Path(world).read_bytes())
    if model is not None:
        if definition.referee is None:
            raise MaagError(f"{game} has no referee to read a model's frames")
        model = str(Path(model).resolve())
        _played(model, game, 0, None if world is None else str(world))  # fails here if bad
    for name, number, least in (
        ("episodes", episodes, 1),
        ("steps", steps, 1),
        ("workers", workers, 1),
    ):
        if number < least:
            raise MaagError(f"--{name} must be at least {least}, got {number}")
    if not 0 <= shard_index < num_shards:
        raise MaagError(f"--shard-index must be in 0..{num_shards - 1}, got {shard_index}")
    out = ensure_writable_dir(out)
    manifest_path = out / manifest_name(shard_index, num_shards)
    if manifest_path.exists() and not overwrite:
        raise MaagError(f"{out} already holds a dataset (pass --overwrite to replace it)")

    frame_bytes = spec.frame_height * spec.frame_width * 3
    per_shard = episodes_per_shard or max(1, SHARD_TARGET_BYTES // ((steps + 1) * frame_bytes))
    starts = range(0, episodes, per_shard)
    jobs = [
        _ShardJob(
            str(out),
            j,
            game,
            agent,
            steps,
            seed,
            (s, min(s + per_shard, episodes)),
            world,
            None if model is None else str(model),
        )
        for j, s in enumerate(starts)
        if j % num_shards == shard_index
    ]
    records = []
    total = sum(job.episodes[1] - job.episodes[0] for job in jobs)
    with tqdm(total=total, unit="episode", disable=not progress, desc=f"{game} data") as bar:
        if workers == 1:
            results = map(_write_shard, jobs)
            pool = None
        else:
            pool = multiprocessing.get_context("spawn").Pool(workers)
            results = pool.imap(_write_shard, jobs)
        try:
            for record in results:
                records.append(record)
                bar.update(record["episodes"][1] - record["episodes"][0])
        finally:
            if pool is not None:
                pool.terminate()
    manifest = {
        "format": FORMAT,
        "game": game,
        "spec": spec.to_dict(),
        "agent": agent,
        "seed": seed,
        "steps": steps,
        "episodes": episodes,
        "map_sha256": world_sha256,
        "model": model,
        "episodes_per_shard": per_shard,
        "shard_index": shard_index,
        "num_shards": num_shards,
        "shards": records,
    }
    write_atomic(manifest_path, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1)))
    return manifest_path


class Dataset:
    """A verified view of a dataset folder (one or several machines' manifests)."""

    def __init__(self, path: str | Path, game: str | None = None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise MaagError(f"no dataset folder at {self.path}")
        manifests = sorted(self.path.glob("manifest*.json"))
        if not manifests:
            raise MaagError(f"{self.path} holds no manifest.json: not a maag dataset")
        parts = [_read_manifest(m) for m in manifests]
        first = parts[0]
        for part, path_ in zip(parts, manifests, strict=True):
            for key in (
                "game",
                "spec",
                "steps",
                "seed",
                "episodes",
                "agent",
                "map_sha256",
                "model",
            ):
                if part.get(key) != first.get(key):
                    raise MaagError(f"{path_.name} disagrees with {manifests[0].name} on {key}")
        self.manifest = first
        self.spec = GameSpec.from_dict(first["spec"])
        if game is not None and first["game"] != game:
            raise MaagError(f"dataset {self.path} is {first['game']} data, expected {game}")
        self.steps: int = first["steps"]
        self.shards: list[dict[str, Any]] = sorted(
            (s for p in parts for s in p["shards"]), key=lambda s: s["episodes"][0]
        )
        self.num_episodes = sum(s["episodes"][1] - s["episodes"][0] for s in self.shards)

    def load_shard(self, i: int) -> dict[str, np.ndarray]:
        """Shard `i`'s arrays after checking its size, checksum and shapes."""
        record = self.shards[i]
        path = self.path / record["file"]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MaagError(f"shard {path} is missing") from None
        if len(data) != record["bytes"]:
            raise MaagError(
                f"shard {path} is truncated or altered: "
                f"{len(data)} bytes, manifest says {record['bytes']}"
            )
        if sha256_bytes(data) != record["sha256"]:
            raise MaagError(f"shard {path} is corrupted: checksum does not match the manifest")
        try:
            arrays = load_safetensors(data)
        except SafetensorError as exc:
            raise MaagError(f"shard {path} cannot be parsed: {exc}") from None
        self._check_shapes(path, arrays, record["episodes"][1] - record["episodes"][0])
        return arrays

    def _check_shapes(self, path: Path, arrays: dict[str, np.ndarray], count: int) -> None:
        s, t = self.spec, self.steps
        expected = {
            "frames": (count, t + 1, s.frame_height, s.frame_width, 3),
            "actions": (count, t),
            "values": (count, t + 1, len(s.values)),
            "events": (count, t + 1, len(s.events)),
            "camera": (count, t + 1, 2),
            "chance": (count, t + 1, len(s.chance)),
        }
        if "chance" not in arrays and not s.chance:  # written before draws existed
            arrays["chance"] = np.zeros(expected["chance"], dtype=np.uint8)
        if "player" not in arrays:  # written before player positions were stored
            arrays["player"] = np.zeros((count, t + 1, 0), dtype=np.int32)
        stored = arrays["player"].shape[-1]  # 0: none stored
        expected["player"] = (count, t + 1, 2 if s.follow and stored else 0)
        if "alt_step" in arrays:
            expected |= alternative_shapes(s, len(arrays["alt_step"]))
        for key, shape in expected.items():
            if key not in arrays or arrays[key].shape != shape:
                got = arrays[key].shape if key in arrays else "nothing"
                raise MaagError(f"shard {path} has {key} of shape {got}, expected {shape}")
        if "alt_step" in arrays and len(arrays["alt_step"]):
            episode, frame = arrays["alt_step"].T
            if episode.min() < 0 or episode.max() >= count or frame.min() < 1 or frame.max() > t:
                raise MaagError(f"shard {path} has alternatives to frames it does not hold")

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(len(self.shards)):
            yield self.load_shard(i)

    def verify(self) -> None:
        """Check every shard (size, checksum, shapes) and that no episode is missing."""
        self.check_complete()
        for _ in self:
            pass

    def load_all(self, threads: int = 8) -> list[dict[str, np.ndarray]]:
        """Every shard's arrays, in order, checked as `verify` checks them; read `threads` at
        a time (reading, hashing and parsing a shard mostly run outside Python's lock)."""
        self.check_complete()
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(self.load_shard, range(len(self.shards))))

    def check_complete(self) -> None:
        """MaagError unless the shards hold every episode of the manifest, each once."""
        covered = sorted(tuple(s["episodes"]) for s in self.shards)
        expected_start = 0
        for start, stop in covered:
            if start != expected_start:
                raise MaagError(
                    f"dataset {self.path} lacks episodes {expected_start}..{start - 1} "
                    "(a machine's manifest is missing?)"
                )
            expected_start = stop
        if expected_start != self.manifest["episodes"]:
            raise MaagError(
                f"dataset {self.path} holds {expected_start} "
                f"of {self.manifest['episodes']} episodes"
            )


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MaagError(f"manifest {path} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise MaagError(f"{path} is not a maag trajectory manifest ({FORMAT})")
    return manifest
