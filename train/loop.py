"""The training loop every network shares, on accelerate.

One code path for this CPU and for many GPUs on many machines: accelerate decides the
processes, devices and mixed precision. A `Task` says what is trained (its network, its
loss, its held-out evaluation); this loop does the rest: learning-rate warm-up, gradient
accumulation and clipping, EMA weights, a progress bar, metrics.jsonl (and TensorBoard
when installed), checkpoints every N steps written atomically, and `--resume`, which
continues exactly: a resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import torch
from tqdm import tqdm

from maag.errors import MaagError
from maag.io import ensure_writable_dir, write_atomic
from maag.models import bf16_is_fast
from maag.spec import GameSpec

from .checkpoint import CheckpointStore

RECIPES = Path(__file__).parent / "recipes"
R = TypeVar("R", bound="Recipe")


def learning_rate(recipe: Recipe, step: int) -> float:
    """The rate of step `step` (from 0): a linear warm-up, then lr or its cosine decay."""
    if step < recipe.warmup:
        return recipe.lr * (step + 1) / recipe.warmup
    if not recipe.decay_lr:
        return recipe.lr
    progress = min(1.0, (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup))
    return recipe.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (recipe.lr - recipe.min_lr)


@dataclass
class Recipe:
    """What every training run depends on; a network's recipe adds its own fields."""

    network: ClassVar[str] = ""
    data: str = ""
    more_data: list[str] = field(default_factory=list)  # folders whose episodes join data's
    val_data: str = ""
    batch_size: int = 32  # per process
    grad_accum: int = 1
    lr: float = 3e-4
    warmup: int = 200
    # with decay_lr the rate falls from lr after warmup to min_lr at `steps` along a cosine
    # (nanoGPT's schedule); without it, it stays at lr
    decay_lr: bool = False
    min_lr: float = 0.0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    steps: int = 10_000
    ema_decay: float = 0.999
    mixed_precision: str = "bf16"  # "no", "bf16" or "fp16" (accelerate)
    seed: int = 0
    log_every: int = 25
    eval_every: int = 500  # and at the last step; 0: at the last step only
    checkpoint_every: int = 250
    sample_every: int = 0  # and at the last step; 0: never
    keep_checkpoints: int = 2
    init_from: str = ""  # a run (latest EMA) or model folder whose weights start this one
    # share of each batch drawn from transitions where an event fires, the event chosen
    # evenly among those the data holds: rare events (a point in Pong, a death) get seen
    event_share: float = 0.0
    event_window: int = 1  # with it, the transitions after an event and an episode's start
    # share of the rest drawn from the close calls: the close_call_count transitions without
    # an event that the LogicNet of model folder close_call_model finds likeliest to have one
    close_call_share: float = 0.0
    close_call_model: str = ""
    close_call_count: int = 4096
    close_call_window: int = 1  # with it, the transitions after each close call too
    # with close_call_share: the close calls also hold the generator's own mistakes, the
    # hard_count transitions (of hard_candidates spread evenly over the data) that the
    # generator of close_call_model draws furthest from the truth, teacher-forced
    hard_count: int = 0
    hard_candidates: int = 65_536
    # share of the rest whose target is an alternative outcome the data holds (the step had
    # its events come out otherwise, see maag.data): for generators, taught to draw the
    # events they are told; a LogicNet would learn rules the game does not have
    alternative_share: float = 0.0
    # those rows told, at even odds, the alternative or the step's true outcome
    alternative_pairs: bool = False
    # share of each batch whose last rollout_frames context frames the generator draws
    # itself, one after another from the true frames before them (no gradient), so that it
    # learns to go on from its own drawings as in play, not only from the data's frames
    rollout_share: float = 0.0
    rollout_frames: int = 1
    # processes that draw batches ahead of the training step (forked; the spatial map's
    # histories are built first, over as many processes, and shared): a GPU outpaces the one
    # process that draws them otherwise; 0: the training process draws each batch itself.
    # A run resumed with loader processes draws other batches than an uninterrupted one.
    loader_workers: int = 0

    # fields a resumed run may change; every other one is fixed by the run's recipe.json
    RESUMABLE: ClassVar[tuple[str, ...]] = (
        "steps", "data", "val_data", "log_every", "eval_every", "checkpoint_every",
        "sample_every", "keep_checkpoints", "loader_workers",
    )  # fmt: skip

    @classmethod
    def load(cls: type[R], name_or_path: str) -> R:
        """A recipe by name (train/recipes/NAME.json) or path."""
        path = Path(name_or_path)
        if not path.exists():
            path = RECIPES / f"{name_or_path}.json"
        try:
            values = json.loads(path.read_text())
        except FileNotFoundError:
            known = ", ".join(p.stem for p in sorted(RECIPES.glob("*.json")))
            raise MaagError(f"no recipe {name_or_path!r} (known: {known})") from None
        except (OSError, ValueError) as exc:
            raise MaagError(f"recipe {path} cannot be read: {exc}") from None
        network = values.pop("network", cls.network)
        if network != cls.network:
            raise MaagError(f"recipe {path} trains a {network}, not a {cls.network}")
        return cls().updated(values, source=str(path))

    def updated(self: R, values: dict[str, Any], source: str = "overrides") -> R:
        names = {f.name for f in fields(self)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise MaagError(f"{source}: unknown recipe fields {unknown}")
        return type(self)(**(asdict(self) | {k: v for k, v in values.items() if v is not None}))

    def to_json(self) -> str:
        return json.dumps({"network": self.network, **asdict(self)}, indent=1)

    @classmethod
    def of_run(cls: type[R], run: str | Path) -> R:
        """The recipe a run was started with."""
        try:
            values = json.loads((Path(run) / "recipe.json").read_text())
        except (OSError, ValueError) as exc:
            raise MaagError(f"no training run in {run}: {exc}") from None
        network = values.pop("network", cls.network)
        if network != cls.network:
            raise MaagError(f"{run} is a {network} run, not a {cls.network} run")
        return cls().updated(values, source=f"{run}/recipe.json")

    @classmethod
    def resumed(cls: type[R], run: str | Path, overrides: dict[str, Any]) -> R:
        """The run's recipe, extended (more steps) or pointed at moved data."""
        saved = cls.of_run(run)
        given = {k: v for k, v in overrides.items() if v is not None}
        fixed = sorted(
            k for k, v in given.items() if k not in cls.RESUMABLE and v != getattr(saved, k)
        )
        if fixed:
            raise MaagError(
                f"a resumed run keeps its recipe; cannot change {fixed} (start a new run)"
            )
        return saved.updated(given)


class Task(Protocol):
    """What a network's training adds to the loop."""

    def build(self, recipe: Any, spec: GameSpec, episodes: dict | None = None) -> torch.nn.Module:
        """The network to train; `episodes`, where given, are its training episodes (what
        the network reads off them before training, e.g. a tile set)."""

    def augment(self, batch: dict, recipe: Any, rng: np.random.Generator) -> dict:
        """A drawn batch with the changes that need no network (made where it is drawn)."""

    def loss(
        self, model, batch: dict, recipe: Any, noise: torch.Generator, device
    ) -> torch.Tensor: ...

    def evaluate(self, ema, episodes: dict, recipe: Any) -> dict[str, float]: ...

    def prepare(self, episodes: dict, recipe: Any) -> Any:
        """Read what the task needs of the training episodes before the first step;
        returns the spatial map's views for the sampler to gather (None: no map)."""

    def sample(self, path: Path, ema, spec: GameSpec, episodes: dict, recipe: Any) -> None: ...


def train(
    task: Task,
    recipe: Recipe,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    compile: bool = False,
):
    """Train (or resume) run folder `out`; `compile`: torch.compile the trained network in
    place (its weights' names unchanged, so checkpoints are the same either way)."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from maag.data import Dataset
    from maag.transitions import TransitionSampler, load_episodes

    run = Path(out)
    store = CheckpointStore(run, keep=recipe.keep_checkpoints)
    checkpoint = store.latest()
    if resume and checkpoint is None:
        raise MaagError(f"nothing to resume: {run} holds no checkpoint")
    if not resume and checkpoint is not None:
        raise MaagError(f"{run} already holds checkpoints: pass --resume, or choose another --out")
    if not recipe.data:
        raise MaagError("no training data: pass --data DIR")
    if recipe.decay_lr and not 0 <= recipe.min_lr <= recipe.lr:
        raise MaagError(f"min_lr {recipe.min_lr} must lie between 0 and lr {recipe.lr}")
    for name in ("log_every", "checkpoint_every"):
        if getattr(recipe, name) < 1:
            raise MaagError(f"{name} must be 1 or more, got {getattr(recipe, name)}")
    for name in ("eval_every", "sample_every", "loader_workers"):
        if getattr(recipe, name) < 0:
            raise MaagError(f"{name} must be 0 or more, got {getattr(recipe, name)}")
    if recipe.hard_count and not recipe.close_call_share:
        raise MaagError("hard_count adds to the close calls: it needs close_call_share")
    if recipe.hard_count < 0 or recipe.hard_candidates < 1:
        raise MaagError(
            f"hard_count must be 0 or more and hard_candidates 1 or more, got "
            f"{recipe.hard_count} and {recipe.hard_candidates}"
        )

    precision = recipe.mixed_precision
    if precision == "bf16" and not bf16_is_fast("cuda" if torch.cuda.is_available() else "cpu"):
        print("bf16 asked for, but this CPU has no bf16 matrix instructions: training in float32")
        precision = "no"
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=precision,
        gradient_accumulation_steps=recipe.grad_accum,
    )
    main = accelerator.is_main_process
    set_seed(recipe.seed)  # the same initial weights on every process
    spec = Dataset(recipe.data).spec
    if resume:
        trained_on = GameSpec.from_dict(json.loads((run / "spec.json").read_text()))
        if trained_on != spec:
            raise MaagError(
                f"{recipe.data} holds {spec.name} data unlike the {trained_on.name} data "
                f"{run} was trained on"
            )
    episodes = load_episodes(recipe.data, more=recipe.more_data)
    val_episodes = load_episodes(recipe.val_data, game=spec.name) if recipe.val_data else None
    model = task.build(recipe, spec, episodes)
    if recipe.init_from and not resume:
        warm_start(model, recipe.init_from, spec, recipe.network)
    ema = copy.deepcopy(model).requires_grad_(False).to(accelerator.device)
    if compile:
        model.compile()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay
    )
    rank_seed = recipe.seed * 1000 + accelerator.process_index
    maps = task.prepare(episodes, recipe)
    sampler = TransitionSampler(
        episodes,
        model.config.context_frames,
        rank_seed,
        maps,
        recipe.event_share,
        recipe.event_window,
        find_close_calls(episodes, recipe, maps, accelerator.device)
        if recipe.close_call_share
        else None,
        recipe.close_call_share,
        recipe.alternative_share,
        recipe.close_call_window,
        recipe.rollout_share,
        recipe.rollout_frames,
        recipe.alternative_pairs,
    )
    noise = torch.Generator().manual_seed(rank_seed)
    model, optimizer = accelerator.prepare(model, optimizer)

    step = 0
    if resume:
        step, rng = store.load(checkpoint, accelerator, model, ema, optimizer)
        sampler.load_state_dict(rng["sampler"])
        noise.set_state(torch.tensor(rng["noise"], dtype=torch.uint8))
    elif main:
        ensure_writable_dir(run)
        spec_json = json.dumps(spec.to_dict(), indent=1)
        write_atomic(run / "spec.json", lambda tmp: tmp.write_text(spec_json))
        write_atomic(run / "recipe.json", lambda tmp: tmp.write_text(recipe.to_json()))
    accelerator.wait_for_everyone()
    logger = MetricsLog(run) if main else None
    if main:
        params = sum(p.numel() for p in ema.parameters())
        print(
            f"{spec.name} {recipe.network} ({params / 1e6:.2f}M params), "
            f"{accelerator.num_processes} process(es) on {accelerator.device}, "
            f"{precision}, {len(episodes['frames'])} episodes, from step {step}"
        )

    batches = batch_stream(sampler, recipe, (recipe.seed, accelerator.process_index, step), task)
    model.train()
    examples_per_step = recipe.batch_size * recipe.grad_accum * accelerator.num_processes
    bar = tqdm(total=recipe.steps, initial=step, disable=not (main and progress), unit="step")
    timer, timed_steps, running = time.perf_counter(), 0, []
    while step < recipe.steps:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(recipe, step)
        with accelerator.accumulate(model):
            batch = next(batches)
            with accelerator.autocast():
                loss = task.loss(model, batch, recipe, noise, accelerator.device)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            optimizer.step()
            optimizer.zero_grad()
        running.append(loss.item())
        if not accelerator.sync_gradients:
            continue
        step += 1
        timed_steps += 1
        decay = min(recipe.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():  # one fused update (timm's ModelEmaV3 does the same)
            trained = [p.detach().float() for p in accelerator.unwrap_model(model).parameters()]
            torch._foreach_lerp_(list(ema.parameters()), trained, 1 - decay)
        bar.update(1)
        last = step == recipe.steps
        if step % recipe.log_every == 0 or last:
            elapsed = time.perf_counter() - timer
            record = {
                "step": step,
                "loss": float(np.mean(running)),
                "lr": optimizer.param_groups[0]["lr"],
                "samples_per_s": timed_steps * examples_per_step / elapsed,
            }
            running, timer, timed_steps = [], time.perf_counter(), 0
            bar.set_postfix(loss=f"{record['loss']:.5f}", sps=f"{record['samples_per_s']:.0f}")
            if logger:
                logger.write(record)
        evaluate_now = last or (recipe.eval_every and step % recipe.eval_every == 0)
        if main and val_episodes is not None and evaluate_now:
            scores = task.evaluate(ema, val_episodes, recipe)
            logger.write({"step": step, **{f"val_{k}": v for k, v in scores.items()}})
            bar.write(f"step {step}: " + ", ".join(f"val {k} {v:.4g}" for k, v in scores.items()))
        if main and recipe.sample_every and (step % recipe.sample_every == 0 or last):
            path = run / "samples" / f"step-{step:08d}.gif"
            task.sample(path, ema, spec, val_episodes or episodes, recipe)
        if step % recipe.checkpoint_every == 0 or last:
            rng = {"sampler": sampler.state_dict(), "noise": noise.get_state().tolist()}
            store.save(accelerator, step, model, ema, optimizer, rng)
    bar.close()
    check_ranks_in_sync(accelerator, model)
    # An orderly end for several processes: the DDP wrapper and its pending work go while the
    # process group lives, and no process closes its connections while another still uses them.
    model, optimizer = accelerator.free_memory(model, optimizer)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if main:
        print(f"trained {run} to step {step}")
    return run


class _SampledBatches(torch.utils.data.IterableDataset):
    """Endless batches of a TransitionSampler, each changed by `augment(batch, rng)` (the
    sampler's generator); each loader process draws its own, seeded by `seed` and its
    index."""

    def __init__(self, sampler: Any, batch_size: int, seed: tuple[int, ...], augment):
        self.sampler, self.batch_size, self.seed, self.augment = sampler, batch_size, seed, augment

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        if worker is not None:
            torch.set_num_threads(1)  # many such processes share the machine's cores
            self.sampler.rng = np.random.default_rng([*self.seed, worker.id])
        while True:
            yield self.augment(self.sampler.sample(self.batch_size), self.sampler.rng)


def _as_drawn(batch: dict) -> dict:
    """A batch as the sampler drew it: nothing to collate."""
    return batch


def batch_stream(sampler: Any, recipe: Recipe, seed: tuple[int, ...], task: Task):
    """The training batches, augmented by `task`: drawn by the training process when they
    are asked for (so a checkpoint's sampler state resumes exactly), or by
    `recipe.loader_workers` processes ahead of the step, each seeded by `seed` (run seed,
    process index, first step)."""

    def augment(batch: dict, rng: np.random.Generator) -> dict:
        return task.augment(batch, recipe, rng)

    if sampler.maps is not None:  # over every core, before any loader process forks
        sampler.maps.build_all(max(recipe.loader_workers, os.cpu_count() or 1))
    if not recipe.loader_workers:
        while True:
            yield augment(sampler.sample(recipe.batch_size), sampler.rng)
    yield from torch.utils.data.DataLoader(
        _SampledBatches(sampler, recipe.batch_size, seed, augment),
        batch_size=None,  # the sampler draws whole batches
        collate_fn=_as_drawn,
        num_workers=recipe.loader_workers,
        multiprocessing_context="fork",  # the episodes and map histories are shared, not copied
        prefetch_factor=4,
    )


def find_close_calls(
    episodes: dict, recipe: Recipe, maps: Any = None, device: str | torch.device = "cpu"
) -> np.ndarray:
    """The close calls of `episodes` by the LogicNet of the recipe's close_call_model (run
    on `device`) and, with hard_count, the transitions its generator draws worst (`maps`:
    the data's map views, for a generator with the spatial module)."""
    from maag.generative import load
    from maag.metrics import worst_drawn
    from maag.transitions import close_calls

    game = load(recipe.close_call_model) if recipe.close_call_model else None
    if game is None or game.logicnet is None:
        raise MaagError(
            f"close_call_share needs close_call_model, a model folder with a LogicNet "
            f"(got {recipe.close_call_model!r})"
        )
    found = close_calls(episodes, game.logicnet.to(device), recipe.close_call_count)
    if not recipe.hard_count:
        return found
    hard = worst_drawn(
        game.generator, episodes, recipe.hard_count, recipe.hard_candidates,
        game.sampler.steps, game.tokens, maps if game.map_inputs else None,
    )  # fmt: skip
    return np.union1d(found, hard)


def warm_start(model: torch.nn.Module, source: str, spec: GameSpec, network: str) -> None:
    """Copy every matching weight into `model` from `source`: a run (its latest EMA
    checkpoint) or a shipped model folder (its `network` subfolder's weights). A network
    that reads tiles keeps the source's tile ids and gains the data's new tiles
    (`TileSet.adopt_tiles`)."""
    weights, trained_on = _warm_start_weights(Path(source), network)
    # one trained before the rules' random draws were told, before the game gained events
    # (appended to its list) or before an event restored the world (the map's views change,
    # not the network's inputs) starts one that is told them
    own_events, source_events = (
        [replace(event, restores_world=False) for event in game.events]
        for game in (spec, trained_on)
    )
    gained = own_events[: len(source_events)] == source_events
    if not gained or replace(trained_on, chance=spec.chance, events=spec.events) != spec:
        raise MaagError(f"init_from: {source} was trained on another game's data")
    own = model.state_dict()
    for key, value in list(weights.items()):
        if key in own and own[key].shape != value.shape:
            if not _grown(own[key], value):
                raise MaagError(f"init_from: {source} has another shape for {key}")
            # new input channels (a module's map view), new condition tokens (event counts)
            # start at zero: the same function at first
            grown = torch.zeros_like(own[key])
            grown[tuple(slice(0, n) for n in value.shape)] = value
            weights[key] = grown
    own_tiles = model.tile_array() if "tiles" in weights and "tiles" in own else None
    loaded = model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
    new_blocks = {key.split(".")[1] for key in loaded.missing_keys if key.startswith("blocks.")}
    if {key for key in loaded.unexpected_keys if key.startswith("blocks.")}:
        raise MaagError(f"init_from: {source} has more transformer blocks than this network")
    if new_blocks:  # adaLN-Zero: a block whose modulation is zero passes its input on
        print(f"init_from: {len(new_blocks)} block(s) new to {source} start as the identity")
    if own_tiles is not None and int(model.tile_count):  # the source's set, grown by the data's
        try:
            added = model.adopt_tiles(own_tiles)
        except ValueError as exc:
            raise MaagError(f"init_from: {source}'s tile set and the data's: {exc}") from None
        if added:
            print(f"init_from: {added} tile(s) new to {source} start as their nearest known one")


def _warm_start_weights(source: Path, network: str) -> tuple[dict[str, torch.Tensor], GameSpec]:
    """(weights, spec) of a run or a model folder, or MaagError naming what is missing."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if (source / "model.json").exists():  # a shipped model folder (float16 weights)
        from maag.generative import read_model_config

        path = source / network / "diffusion_pytorch_model.safetensors"
        spec = GameSpec.from_dict(read_model_config(source)["spec"])
    else:
        checkpoint = CheckpointStore(source).latest()
        if checkpoint is None:
            raise MaagError(f"init_from: {source} holds no checkpoint and no model.json")
        path = checkpoint / "ema.safetensors"
        spec = GameSpec.from_dict(json.loads((source / "spec.json").read_text()))
    try:
        return load_file(str(path)), spec
    except (OSError, SafetensorError) as exc:
        raise MaagError(f"init_from: {path} cannot be read: {exc}") from None


def _grown(new: torch.Tensor, old: torch.Tensor) -> bool:
    """Whether `new` is `old` grown along one dimension, all others equal."""
    if new.ndim != old.ndim:
        return False
    larger = [n > o for n, o in zip(new.shape, old.shape, strict=True)]
    same = [n == o for n, o in zip(new.shape, old.shape, strict=True)]
    return sum(larger) == 1 and sum(same) == new.ndim - 1


def check_ranks_in_sync(accelerator, model: torch.nn.Module) -> None:
    """Fail loudly if the processes' weights differ (they must, by construction, agree)."""
    if accelerator.num_processes == 1:
        return
    params = accelerator.unwrap_model(model).parameters()
    fingerprint = torch.stack([p.detach().double().sum() for p in params]).to(accelerator.device)
    gathered = accelerator.gather(fingerprint[None]).cpu()
    if not torch.equal(gathered, gathered[:1].expand_as(gathered)):
        raise RuntimeError("training processes ended with different weights")
    if accelerator.is_main_process:
        print(f"{accelerator.num_processes} processes ended with identical weights")


class MetricsLog:
    """metrics.jsonl in the run folder, and TensorBoard where it is installed."""

    def __init__(self, run: Path):
        self.path = run / "metrics.jsonl"
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(run / "tensorboard"))
        except ImportError:
            self.tensorboard = None

    def write(self, record: dict[str, float]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tensorboard:
            for key, value in record.items():
                if key != "step" and math.isfinite(value):
                    self.tensorboard.add_scalar(key, value, record["step"])
