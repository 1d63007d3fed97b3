"""Data-generation throughput per worker process: engine + scripted agent + array writes.

    python benchmarks/data_throughput.py [--steps 5000] [--repeats 5]

Prints a Markdown table of median frames/s per game (one process, the game's default
agent, as `maag data` runs it) and of the bare engine with the random agent.
"""

from __future__ import annotations

import argparse
import statistics
import time

from maag.data import generate_episode
from maag.games import GAMES


def frames_per_second(game: str, agent: str, steps: int, repeats: int) -> float:
    rates = []
    for index in range(repeats):
        start = time.perf_counter()
        generate_episode(game, agent, steps, seed=12345, index=index)
        rates.append((steps + 1) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"median of {args.repeats} episodes x {args.steps} steps, one process\n")
    print("| game | agent | frames/s | random agent frames/s |")
    print("|---|---|---|---|")
    for name, game in GAMES.items():
        agent = next(iter(game.agents))
        scripted = frames_per_second(name, agent, args.steps, args.repeats)
        random = frames_per_second(name, "random", args.steps, args.repeats)
        print(f"| {name} | {agent} | {scripted:,.0f} | {random:,.0f} |")


if __name__ == "__main__":
    main()
