"""Milliseconds per generated frame of a generative game on this machine.

    python benchmarks/generator_speed.py [--model models/traveler] [--frames 100]

Plays `--frames` steps (after a warm-up) at 1, 2 and 4 sampler steps and prints the
median ms per frame (end to end: context stacking, sampler, conversion to uint8).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import maag
from maag.generative import shipped_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: the shipped Traveler model)")
    parser.add_argument("--frames", type=int, default=100)
    args = parser.parse_args()
    folder = args.model or shipped_model("traveler")
    game = maag.load(folder)
    params = sum(p.numel() for p in game.generator.parameters())
    print(
        f"{folder}: {params / 1e6:.1f}M parameters, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, fp32, batch 1, median of {args.frames} frames\n"
    )
    print("| sampler steps | ms per frame | frames per second |")
    print("|---|---|---|")
    for steps in (1, 2, 4):
        game.sampler_steps = steps
        game.reset(0)
        times = []
        for i in range(args.frames + 10):
            start = time.perf_counter()
            game.step(i % len(game.spec.actions))
            times.append(time.perf_counter() - start)
        ms = statistics.median(times[10:]) * 1000
        print(f"| {steps} | {ms:.1f} | {1000 / ms:.0f} |")


if __name__ == "__main__":
    main()
