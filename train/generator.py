"""`maag train generator`: teacher-forced training of the FrameDiT on trajectory shards.

One code path for this CPU and for many GPUs on many machines: accelerate decides the
processes, devices and mixed precision. Checkpoints are written atomically every N steps
and `--resume` continues exactly (same weights as an uninterrupted run).
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from maag.errors import MaagError
from maag.io import ensure_writable_dir, write_atomic
from maag.spec import GameSpec

from .checkpoint import CheckpointStore

RECIPES = Path(__file__).parent / "recipes"


@dataclass
class GeneratorRecipe:
    """Everything a generator training run depends on; saved as run/recipe.json."""

    data: str = ""
    val_data: str = ""
    preset: str = "S"
    patch_size: int = 8
    context_frames: int = 4
    motion_skip: bool = True  # weigh base copies shifted by one scroll step (see models/dit.py)
    batch_size: int = 32  # per process
    grad_accum: int = 1
    lr: float = 3e-4
    warmup: int = 200
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    steps: int = 10_000
    ema_decay: float = 0.999
    max_corruption: float = 0.2  # context noise augmentation, std in [-1, 1] units
    clean_share: float = 0.3  # share of examples trained with an uncorrupted context
    mixed_precision: str = "bf16"  # "no", "bf16" or "fp16" (accelerate)
    seed: int = 0
    log_every: int = 25
    eval_every: int = 500
    checkpoint_every: int = 250
    sample_every: int = 1000
    keep_checkpoints: int = 2
    sampler_steps: int = 1  # default for play and evaluation

    @classmethod
    def load(cls, name_or_path: str) -> GeneratorRecipe:
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
        return cls().updated(values, source=str(path))

    def updated(self, values: dict[str, Any], source: str = "overrides") -> GeneratorRecipe:
        names = {f.name: f.type for f in fields(self)}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise MaagError(f"{source}: unknown recipe fields {unknown}")
        merged = asdict(self) | {k: v for k, v in values.items() if v is not None}
        return GeneratorRecipe(**merged)


RESUMABLE_CHANGES = (
    "steps",
    "data",
    "val_data",
    "log_every",
    "eval_every",
    "checkpoint_every",
    "sample_every",
    "keep_checkpoints",
)


def resume_recipe(run: str | Path, overrides: dict[str, Any]) -> GeneratorRecipe:
    """The recipe a run was started with, extended (more steps) or with moved data."""
    try:
        saved = GeneratorRecipe().updated(json.loads((Path(run) / "recipe.json").read_text()))
    except (OSError, ValueError) as exc:
        raise MaagError(f"nothing to resume in {run}: {exc}") from None
    given = {k: v for k, v in overrides.items() if v is not None}
    fixed = sorted(
        k for k, v in given.items() if k not in RESUMABLE_CHANGES and v != getattr(saved, k)
    )
    if fixed:
        raise MaagError(f"a resumed run keeps its recipe; cannot change {fixed} (start a new run)")
    return saved.updated(given)


def build_generator(recipe: GeneratorRecipe, spec: GameSpec):
    """A fresh FrameDiT sized by the recipe's preset for `spec`'s frames and actions."""
    from maag.models.dit import PRESETS, FrameDiT

    if recipe.preset not in PRESETS:
        raise MaagError(f"unknown preset {recipe.preset!r} (choose from {', '.join(PRESETS)})")
    if spec.frame_height != spec.frame_width or spec.frame_height % recipe.patch_size:
        raise MaagError(
            f"{spec.name} frames are {spec.frame_height}x{spec.frame_width}: the generator "
            f"needs square frames divisible by patch size {recipe.patch_size}"
        )
    sx, sy = spec.scroll
    offsets = [(dx, dy) for dx, dy in ((sx, 0), (-sx, 0), (0, sy), (0, -sy)) if dx or dy]
    return FrameDiT(
        frame_size=spec.frame_height,
        patch_size=recipe.patch_size,
        context_frames=recipe.context_frames,
        num_actions=len(spec.actions),
        hud_height=spec.hud_height,
        shift_offsets=tuple(offsets) if recipe.motion_skip else (),
        **PRESETS[recipe.preset],
    )


def corrupt(context: torch.Tensor, recipe: GeneratorRecipe, generator: torch.Generator):
    """Noise augmentation of the context (GameNGen/DIAMOND): returns (context, level)."""
    batch = context.shape[0]
    level = torch.rand(batch, generator=generator) * recipe.max_corruption
    level = torch.where(torch.rand(batch, generator=generator) < recipe.clean_share, 0.0, level)
    noise = torch.randn(context.shape, generator=generator)
    return context + level.view(-1, *[1] * (context.ndim - 1)) * noise, level


def train_generator(recipe: GeneratorRecipe, out: str, resume: bool = False, progress: bool = True):
    """Train (or resume) a generator run in folder `out`."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from maag.data import Dataset
    from maag.metrics import teacher_forced_psnr
    from maag.models.flow import stack_context, to_unit, training_loss
    from maag.transitions import TransitionSampler, load_episodes

    run = Path(out)
    store = CheckpointStore(run, keep=recipe.keep_checkpoints)
    if resume:
        checkpoint = store.latest()
        if checkpoint is None:
            raise MaagError(f"nothing to resume: {run} holds no checkpoint")
    else:
        checkpoint = None
        if store.latest() is not None:
            raise MaagError(
                f"{run} already holds checkpoints: pass --resume, or choose another --out"
            )
    if not recipe.data:
        raise MaagError("no training data: pass --data DIR")

    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=recipe.mixed_precision,
        gradient_accumulation_steps=recipe.grad_accum,
    )
    main = accelerator.is_main_process
    set_seed(recipe.seed)  # same initial weights on every process
    spec = Dataset(recipe.data).spec
    if checkpoint is not None:
        trained_on = GameSpec.from_dict(json.loads((run / "spec.json").read_text()))
        if trained_on != spec:
            raise MaagError(
                f"{recipe.data} holds {spec.name} data unlike the {trained_on.name} data "
                f"{run} was trained on"
            )
    episodes = load_episodes(recipe.data)
    val_episodes = load_episodes(recipe.val_data, game=spec.name) if recipe.val_data else None
    model = build_generator(recipe, spec)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay
    )
    rank_seed = recipe.seed * 1000 + accelerator.process_index
    sampler = TransitionSampler(episodes, recipe.context_frames, seed=rank_seed)
    noise = torch.Generator().manual_seed(rank_seed)
    model, optimizer = accelerator.prepare(model, optimizer)

    step = 0
    if checkpoint is not None:
        step, rng = store.load(checkpoint, accelerator, model, ema, optimizer)
        sampler.load_state_dict(rng["sampler"])
        noise.set_state(torch.tensor(rng["noise"], dtype=torch.uint8))
    elif main:
        ensure_writable_dir(run)
        config, spec_dict = asdict(recipe), spec.to_dict()
        write_atomic(run / "spec.json", lambda tmp: tmp.write_text(json.dumps(spec_dict, indent=1)))
        write_atomic(run / "recipe.json", lambda tmp: tmp.write_text(json.dumps(config, indent=1)))
    accelerator.wait_for_everyone()
    logger = MetricsLog(run) if main else None
    if main:
        params = sum(p.numel() for p in ema.parameters())
        print(
            f"{spec.name} generator {recipe.preset} ({params / 1e6:.1f}M params), "
            f"{accelerator.num_processes} process(es) on {accelerator.device}, "
            f"{recipe.mixed_precision}, {len(episodes['frames'])} episodes, from step {step}"
        )

    model.train()
    examples_per_step = recipe.batch_size * recipe.grad_accum * accelerator.num_processes
    bar = tqdm(total=recipe.steps, initial=step, disable=not (main and progress), unit="step")
    timer, timed_steps, running = time.perf_counter(), 0, []
    while step < recipe.steps:
        for group in optimizer.param_groups:
            group["lr"] = recipe.lr * min(1.0, (step + 1) / max(1, recipe.warmup))
        with accelerator.accumulate(model):
            batch = sampler.sample(recipe.batch_size)
            context, level = corrupt(to_unit(batch["context"]), recipe, noise)
            device = accelerator.device
            with accelerator.autocast():
                loss = training_loss(
                    model,
                    target=to_unit(batch["target"]).to(device),
                    base=context[:, -1].to(device),
                    context=stack_context(context).to(device),
                    action=batch["action"].to(device),
                    corruption=level.to(device),
                    generator=noise,
                )
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
        with torch.no_grad():
            for e, p in zip(
                ema.parameters(), accelerator.unwrap_model(model).parameters(), strict=True
            ):
                e.lerp_(p.detach().float(), 1 - decay)
        bar.update(1)
        if step % recipe.log_every == 0 or step == recipe.steps:
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
        if (
            main
            and val_episodes is not None
            and (step % recipe.eval_every == 0 or step == recipe.steps)
        ):
            scores = teacher_forced_psnr(ema, val_episodes, recipe.sampler_steps, count=256)
            logger.write({"step": step, **{f"val_{k}": v for k, v in scores.items()}})
            bar.write(
                f"step {step}: val PSNR {scores['psnr']:.2f} dB "
                f"(copy-last {scores['copy_last_psnr']:.2f})"
            )
        if (
            main
            and recipe.sample_every
            and (step % recipe.sample_every == 0 or step == recipe.steps)
        ):
            write_sample_gif(
                run / "samples" / f"step-{step:08d}.gif",
                ema,
                spec,
                val_episodes or episodes,
                recipe,
            )
        if step % recipe.checkpoint_every == 0 or step == recipe.steps:
            rng = {"sampler": sampler.state_dict(), "noise": noise.get_state().tolist()}
            store.save(accelerator, step, model, ema, optimizer, rng)
    bar.close()
    check_ranks_in_sync(accelerator, model)
    accelerator.end_training()
    if main:
        print(f"trained {run} to step {step}")
    return run


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


def write_sample_gif(
    path: Path, generator, spec, episodes, recipe: GeneratorRecipe, steps: int = 64
):
    """A rollout beside the ground truth, driven by a recorded episode's actions."""
    import imageio.v3 as iio

    from maag.generative import GenerativeGame

    game = GenerativeGame(generator, spec, episodes["frames"][:1, 0], recipe.sampler_steps)
    truth = episodes["frames"][0]
    frames = [np.concatenate([game.reset(0).frame, truth[0]], axis=1)]
    for t in range(min(steps, len(truth) - 1)):
        generated = game.step(int(episodes["actions"][0, t])).frame
        frames.append(np.concatenate([generated, truth[t + 1]], axis=1))
    video = np.stack(frames).repeat(4, axis=1).repeat(4, axis=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: iio.imwrite(tmp, video, extension=".gif", duration=80, loop=0))
