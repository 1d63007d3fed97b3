"""End-to-end play speed of a generative game, beside the physical limit of this machine.

    python benchmarks/play_speed.py [--model models/traveler] [--steps 200] [--threads 2]

For each module setting (off, +numerical, +spatial, full) and sampler step count, the
game's evaluation agent plays `--steps` steps (after a warm-up) and the table gives the
median milliseconds of a whole `game.step` (inputs, LogicNet, record, map, generator,
conversion to uint8), frames per second, the modules' share of the step, and the limit:
the FLOPs of the networks that step ran (counted with torch's FlopCounterMode) at the
fp32 matmul rate measured here. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

import maag
from maag.games import get_game, make_agent
from maag.generative import MODULE_PARTS, GenerativeGame, shipped_model


def matmul_gflops(size: int = 1024, seconds: float = 2.0) -> float:
    """Median fp32 GFLOP/s of (size x size) @ (size x size) products on this machine."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    rates = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 5:
        start = time.perf_counter()
        a @ b
        rates.append(2 * size**3 / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def count_flops(run) -> float:
    """FLOPs torch counts while `run()` runs."""
    counter = FlopCounterMode(display=False)
    with counter:
        run()
    return float(counter.get_total_flops())


def network_flops(game: GenerativeGame) -> tuple[float, float]:
    """FLOPs of one generator forward and of one LogicNet forward (0 without LogicNet)."""
    game.reset(0)
    step_flops = count_flops(lambda: game.step(0))
    logicnet_flops = 0.0
    if game.logicnet is not None:
        frames = game.logicnet.config.context_frames
        size = game.spec.frame_height, game.spec.frame_width
        context, action = torch.zeros(1, 3 * frames, *size), torch.zeros(1, dtype=torch.long)
        chance = torch.zeros(1, len(game.spec.chance), dtype=torch.long)
        player = torch.zeros(1, 2, dtype=torch.long) if game.logicnet.config.focus else None
        logicnet_flops = count_flops(
            lambda: game.logicnet.predict(context, action, chance=chance, player=player)
        )
    return (step_flops - logicnet_flops) / game.last_sampler_steps, logicnet_flops


def measure(game: GenerativeGame, agent_name: str, steps: int, seed: int = 0) -> dict:
    """Medians over `steps` agent-driven steps (after 10 warm-up steps)."""
    agent = make_agent(game.spec.name, agent_name, seed)
    step = game.reset(seed)
    total, modules, forwards = [], [], []
    for i in range(steps + 10):
        action = agent.act(step)
        start = time.perf_counter()
        step = game.step(action)
        elapsed = (time.perf_counter() - start) * 1000
        if i >= 10:
            total.append(elapsed)
            modules.append(sum(game.timings.get(p, 0.0) for p in MODULE_PARTS))
            forwards.append(game.last_sampler_steps)
    return {
        "ms": statistics.median(total),
        "module_ms": statistics.median(modules),
        "forwards": statistics.mean(forwards),
        "median_forwards": statistics.median(forwards),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: the shipped Traveler model)")
    parser.add_argument("--steps", type=int, default=200, help="measured steps per row")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--sampler-steps", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = args.model or shipped_model("traveler")
    game = maag.load(folder)
    default_steps, reveal, available = game.sampler_steps, game.reveal_sampler_steps, game.available
    agent = next(iter(get_game(game.spec.name).agents))
    rate = matmul_gflops()
    generator_flops, logicnet_flops = network_flops(game)
    params = sum(p.numel() for p in game.generator.parameters())
    print(
        f"{folder}: generator {params / 1e6:.1f}M parameters, {generator_flops / 1e9:.2f} GFLOP "
        f"per forward; LogicNet {logicnet_flops / 1e6:.1f} MFLOP; fp32 matmul {rate:.0f} GFLOP/s "
        f"on this machine; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"batch 1, {agent} agent, median of {args.steps} steps\n"
    )
    print(
        "| modules | sampler steps | ms per step | frames per second | modules share "
        "| limit ms (FLOPs / matmul rate) | limit fps |"
    )
    print("|---|---|---|---|---|---|---|")
    settings = [
        (m, s, 0) for m in ("off", "numerical", "spatial", "full") for s in args.sampler_steps
    ]
    if reveal:
        settings.append(("full", default_steps, reveal))
    for modules, steps, reveal_steps in settings:
        if modules not in ("off", "full", *available):
            continue
        switches = {name: modules in (name, "full") and name in available for name in available}
        game = maag.load(folder, sampler_steps=steps, reveal_sampler_steps=reveal_steps, **switches)
        result = measure(game, agent, args.steps)
        flops = result["median_forwards"] * generator_flops + logicnet_flops * bool(game.available)
        limit_ms = flops / rate / 1e6
        label = f"{steps}" + (
            f" ({reveal_steps} on new ground; mean {result['forwards']:.2f})"
            if reveal_steps
            else ""
        )
        default = (
            " (default)"
            if (modules, steps, reveal_steps) == ("full", default_steps, reveal)
            else ""
        )
        print(
            f"| {modules}{default} | {label} | {result['ms']:.1f} | {1000 / result['ms']:.0f} "
            f"| {result['module_ms'] / result['ms']:.3f} | {limit_ms:.1f} | {1000 / limit_ms:.0f} |"
        )


if __name__ == "__main__":
    main()
