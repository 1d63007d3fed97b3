"""Where a generator training step's time goes: drawing the batch, the loss, the update.

    python benchmarks/train_throughput.py [--recipe pacman_full_stage14] [--data data/pacman-val]
        [--batch-size 512] [--loader-workers 12] [--threads N] [--steps 40] [--profile]

Runs the recipe's loss on its network (fresh weights; on the GPU where there is one, in
the recipe's mixed precision) over `--data` alone, and prints the median milliseconds per
step of: waiting for the next batch (drawn by `--loader-workers` processes, or by this
one), making the network's inputs (augmentation, map channels, the rollouts' drawings),
the forward pass and loss, and the backward pass with the optimizer step; then samples/s
over the timed steps and the time one process takes to draw one batch. A GPU waits on
whichever CPU part is the largest. With --profile, then the operations that took the most
time in making the inputs of 3 more steps (torch.profiler).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from maag.data import Dataset
from maag.models import bf16_is_fast
from maag.models.flow import loss_for
from maag.train.generator import GeneratorRecipe, GeneratorTask
from maag.train.loop import batch_stream, find_close_calls
from maag.transitions import TransitionSampler, load_episodes

WARM_UP = 5  # steps before timing: the loader processes' start, the first kernels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="pacman_full_stage14")
    parser.add_argument("--data", default="data/pacman-val")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--loader-workers", type=int)
    parser.add_argument("--threads", type=int, help="torch threads of this process")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--profile", action="store_true", help="profile making the inputs")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {"data": args.data, "more_data": [], "batch_size": args.batch_size}
    overrides["loader_workers"] = args.loader_workers
    recipe = GeneratorRecipe.load(args.recipe).updated(overrides)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else lambda: None
    autocast = (
        torch.autocast(device, torch.bfloat16)
        if recipe.mixed_precision == "bf16" and bf16_is_fast(device)
        else contextlib.nullcontext()
    )

    episodes = load_episodes(recipe.data)
    task = GeneratorTask()
    model = task.build(recipe, Dataset(recipe.data).spec, episodes).to(device)
    maps = task.prepare(episodes, recipe)
    close = find_close_calls(episodes, recipe, maps, device) if recipe.close_call_share else None
    sampler = TransitionSampler(
        episodes, recipe.context_frames, recipe.seed, maps, recipe.event_share,
        recipe.event_window, close, recipe.close_call_share, recipe.alternative_share,
        recipe.close_call_window, recipe.rollout_share, recipe.rollout_frames,
    )  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr)
    noise = torch.Generator().manual_seed(recipe.seed)
    batches = batch_stream(sampler, recipe, (recipe.seed, 0, 0), task)
    parts: dict[str, list[float]] = {
        "wait for the batch": [], "inputs": [], "forward + loss": [], "backward + step": [],
    }  # fmt: skip
    for step in range(WARM_UP + args.steps):
        if step == WARM_UP:
            start = time.perf_counter()
        times = [time.perf_counter()]
        batch = next(batches)
        times.append(time.perf_counter())
        with autocast:
            inputs = task.inputs(model, batch, recipe, noise, device)
            sync()
            times.append(time.perf_counter())
            loss = loss_for(model)(
                model, **inputs, generator=noise, one_step_share=recipe.one_step_share
            )
        sync()
        times.append(time.perf_counter())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        loss.item()
        sync()
        times.append(time.perf_counter())
        if step >= WARM_UP:
            for name, began, ended in zip(parts, times, times[1:], strict=False):
                parts[name].append(ended - began)
    rate = args.steps * recipe.batch_size / (time.perf_counter() - start)
    draw = time.perf_counter()
    task.augment(sampler.sample(recipe.batch_size), recipe, sampler.rng)
    draw = time.perf_counter() - draw
    print(
        f"{args.recipe} on {device}, batch {recipe.batch_size}, "
        f"{recipe.loader_workers} loader processes, {torch.get_num_threads()} torch threads\n"
    )
    print("| part | median ms per step |")
    print("|---|---|")
    for name, seconds in parts.items():
        print(f"| {name} | {statistics.median(seconds) * 1e3:.0f} |")
    print(f"\n{rate:,.0f} samples/s; one process draws a batch in {draw * 1e3:.0f} ms")
    if args.profile:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as profile, autocast:
            for _ in range(3):
                task.inputs(model, next(batches), recipe, noise, device)
                sync()
        print(profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
