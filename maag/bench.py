"""`maag bench`: how consistent a generative game is, read off the frames it draws.

Every configuration (the engine as control row, then each model with its switches) is
played by the game's evaluation agent on the same seeds, disjoint from training seeds.
Each frame goes through the game's frame reader and the game's referee (its rules
followed on screen); the metric code below is the same for every game (DESIGN.md,
"Consistency metrics").
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from maag.data import ARRAYS, episode_seeds, generate_episode
from maag.errors import MaagError
from maag.generative import MODULE_PARTS, GenerativeGame
from maag.io import ensure_writable_dir, write_atomic
from maag.metrics import psnr, teacher_forced_psnr
from maag.spec import Game, GameDefinition, GameSpec

GIF_STEPS = 300  # rollouts.gif shows the first steps of episode 0
BOOTSTRAP_DRAWS = 10_000  # resamples of the episodes for a metric's 95% interval


@dataclass
class Contender:
    """One row of the table: a way to make the game for a seed, and what it is."""

    label: str  # engine, baseline, +numerical, +spatial, full
    source: str  # which checkpoint and switches
    make: Callable[[int], Game]


def contenders(
    definition: GameDefinition, model_dirs: list[str], configs: Sequence[str] = (),
    world: str | None = None,
) -> list[Contender]:  # fmt: skip
    """The engine control row, then one row per model folder and module setting (only
    the `configs` named, e.g. baseline, +numerical, full, where given). With `world` (a
    map file of the game's custom maps), the engine plays in it and every model whose
    spatial module is on starts its map from it."""
    from maag.generative import load, read_model_config

    if world is None:
        rows = [Contender("engine", "ground-truth engine (control)", definition.engine)]
    else:
        if definition.custom_map is None or definition.engine_in_map is None:
            raise MaagError(f"{definition.spec.name} has no custom maps; drop --map")
        custom = definition.custom_map(world)  # a damaged file fails here, in one line

        def engine(seed: int) -> Game:
            return definition.engine_in_map(seed, world)

        rows = [Contender("engine", f"ground-truth engine (control) in {world}", engine)]
    for folder in model_dirs:
        loaded = load(folder, game=definition.spec.name)  # fails early if bad
        available, observes = loaded.modules, loaded.observer is not None
        provenance = read_model_config(folder).get("provenance", {})
        step = provenance.get("generator", {}).get("step", "?")
        subsets = [
            s for n in range(1, len(available) + 1) for s in itertools.combinations(available, n)
        ]
        for modules in subsets or [()]:
            switches = {m: m in modules for m in ("numerical", "spatial")}
            label = {available: "full", (): "baseline"}.get(modules, f"+{'+'.join(modules)}")
            if configs and label not in configs:
                continue
            described = ", ".join(f"{m} {'on' if on else 'off'}" for m, on in switches.items())

            if observes and modules:
                described += ", its observer checking the events of each frame drawn"
            if world is not None and switches["spatial"]:
                described += f", its map pre-filled with {world}"

            def make(seed: int, folder: str = folder, switches: dict = switches) -> Game:
                game = load(folder, game=definition.spec.name, seed=seed, **switches)
                if world is not None and game.spatial:
                    game.use_custom_map(custom)
                return game

            rows.append(Contender(label, f"{folder} (generator step {step}), {described}", make))
    return rows


def explain_change(
    spec: GameSpec, before: dict | None, after: dict | None, happened: tuple[str, ...]
) -> tuple[str, ...]:
    """The value-changing events a change of the shown values stands for.

    What happened is preferred when it explains the change; else the fewest events that
    do; ("unexplained",) when none of up to three do; () when either side is illegible.
    """
    if before is None or after is None or before == after:
        return ()
    if happened and spec.apply_events(before, happened) == after:
        return happened
    effectful = [e.name for e in spec.events if e.effects]
    for count in (1, 2, 3):
        for events in itertools.combinations_with_replacement(effectful, count):
            if spec.apply_events(before, events) == after:
                return events
    return ("unexplained",)


@dataclass
class Trace:
    """Per-step records of one rollout (steps 1..T)."""

    numcon: list[bool] = field(default_factory=list)
    record_match: list[bool] = field(default_factory=list)  # only where the game keeps a record
    actacc: list[bool] = field(default_factory=list)
    npcacc: list[bool] = field(default_factory=list)  # only where the referee judges them
    readable: list[bool] = field(default_factory=list)
    true_events: list[tuple[str, ...]] = field(default_factory=list)
    told_events: list[tuple[str, ...]] = field(default_factory=list)  # the game's own (a record's)
    shown_events: list[tuple[str, ...]] = field(default_factory=list)
    revisits: list[tuple[int, bool]] = field(default_factory=list)  # (step, consistent)
    revisit_squared_error: float = 0.0
    revisit_pixels: int = 0
    step_ms: list[float] = field(default_factory=list)
    part_ms: dict[str, list[float]] = field(default_factory=dict)
    frames: list[np.ndarray] = field(default_factory=list)


def play_episode(
    definition: GameDefinition, game: Game, agent_name: str, steps: int, seed: int, index: int,
    keep_frames: bool = False, world: str | None = None,
) -> Trace:  # fmt: skip
    """Play one evaluation episode and judge every frame (by the rules of the map file
    `world`, where the game plays in one)."""
    from maag.games import make_agent

    spec, read = definition.spec, definition.read_frame
    engine_seed, agent_seed = episode_seeds(seed, index)
    agent = make_agent(spec.name, agent_name, agent_seed)
    referee = definition.referee() if world is None else definition.referee(world)
    trace = Trace()
    step = game.reset(engine_seed)
    reading = read(step.frame)
    judgement = referee.start(reading)
    last_seen: dict[Any, tuple[Any, np.ndarray | None]] = {}
    in_view: set = set()
    shown = reading.values
    for t in range(steps + 1):
        if t:
            action = agent.act(step)
            start = time.perf_counter()
            step = game.step(action)
            trace.step_ms.append((time.perf_counter() - start) * 1000)
            for part, ms in getattr(game, "timings", {}).items():
                trace.part_ms.setdefault(part, []).append(ms)
            reading = read(step.frame)
            judgement = referee.judge(action, reading)
            happened = tuple(e for e in judgement.events if spec.event(e).effects)
            trace.numcon.append(judgement.followable and reading.values == judgement.values)
            if step.values:
                trace.record_match.append(reading.values == step.values)
            trace.actacc.append(judgement.moved_as_ruled)
            if judgement.npc_as_ruled is not None:
                trace.npcacc.append(judgement.npc_as_ruled)
            trace.readable.append(reading.readable)
            trace.true_events.append(happened)
            trace.told_events.append(tuple(e for e in step.events if spec.event(e).effects))
            trace.shown_events.append(explain_change(spec, shown, reading.values, happened))
            shown = reading.values
        if keep_frames:
            trace.frames.append(step.frame)
        for place, content in judgement.visible.items():
            box = judgement.regions.get(place)
            pixels = step.frame[box].astype(np.float64) if box else None
            if place in last_seen and place not in in_view and t:  # a revisit
                before, old_pixels = last_seen[place]
                if before is not None:
                    same = content is not None and (
                        content == before or referee.may_change(place, before, content)
                    )
                    trace.revisits.append((t, same))
                    # a change the rules allow (a pellet eaten) is no pixel error
                    allowed_change = same and content != before
                    if pixels is not None and old_pixels is not None and not allowed_change:
                        trace.revisit_squared_error += float(((pixels - old_pixels) ** 2).sum())
                        trace.revisit_pixels += pixels.size
            last_seen[place] = (content, pixels)
        in_view = set(judgement.visible) | (set(judgement.hidden) & in_view)
    return trace


def _mean(values: list) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _event_f1(traces: list[Trace]) -> float | None:
    """F1 of the value changes shown against the events that happened; None (n/a) where
    neither ever happened: nothing to score."""
    tp = fp = fn = 0
    for trace in traces:
        for true, shown in zip(trace.true_events, trace.shown_events, strict=True):
            overlap = sum((Counter(true) & Counter(shown)).values())
            tp, fp, fn = tp + overlap, fp + len(shown) - overlap, fn + len(true) - overlap
    return None if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def _quarters(traces: list[Trace], name: str, steps: int) -> tuple[float | None, float | None]:
    """A per-step metric over the first and the last quarter of the rollouts."""
    q = max(1, steps // 4)
    if name == "spacon":
        first = [ok for tr in traces for t, ok in tr.revisits if t <= q]
        last = [ok for tr in traces for t, ok in tr.revisits if t > steps - q]
    else:
        first = [v for tr in traces for v in getattr(tr, name)[:q]]
        last = [v for tr in traces for v in getattr(tr, name)[-q:]]
    return _mean(first), _mean(last)


def _by_episode(traces: list[Trace], name: str) -> dict[str, Any]:
    """A per-step metric episode by episode, and its 95% percentile-bootstrap interval
    over episodes: one lasting failure (a lost sprite, a wrong digit) costs the rest of
    its episode, so a table of few episodes rests on few failures (a fixed seed keeps the
    interval repeatable)."""
    means = np.array([np.mean(getattr(t, name)) for t in traces if getattr(t, name)])
    if not len(means):
        return {f"{name}_by_episode": [], f"{name}_interval": None}
    draws = np.random.default_rng(0).choice(means, (BOOTSTRAP_DRAWS, len(means))).mean(axis=1)
    low, high = np.percentile(draws, [2.5, 97.5])
    return {f"{name}_by_episode": means.tolist(), f"{name}_interval": [low, high]}


def summarise(traces: list[Trace], steps: int) -> dict[str, Any]:
    """Every figure of one configuration."""
    squared = sum(t.revisit_squared_error for t in traces)
    pixels = sum(t.revisit_pixels for t in traces)
    parts = {p for t in traces for p in t.part_ms}
    step_ms = statistics.median(ms for t in traces for ms in t.step_ms)
    part_ms = {
        p: statistics.median(ms for t in traces for ms in t.part_ms.get(p, [])) for p in parts
    }
    modules_ms = sum(ms for p, ms in part_ms.items() if p in MODULE_PARTS)
    return {
        "numcon": _mean([v for t in traces for v in t.numcon]),
        "event_f1": _event_f1(traces),
        "digit_accuracy": _mean([v for t in traces for v in t.record_match]),
        "spacon": _mean([ok for t in traces for _, ok in t.revisits]),
        "revisits": sum(len(t.revisits) for t in traces),
        "revisit_psnr": psnr(squared / pixels) if pixels else None,
        "actacc": _mean([v for t in traces for v in t.actacc]),
        "npcacc": _mean([v for t in traces for v in t.npcacc]),
        "readable": _mean([v for t in traces for v in t.readable]),
        "drift": {
            m: _quarters(traces, m, steps) for m in ("numcon", "spacon", "actacc", "readable")
        },
        "ms_per_step": step_ms,
        "ms_per_part": part_ms,
        "modules_share": modules_ms / step_ms if step_ms else 0.0,
        **_by_episode(traces, "numcon"),
        **_by_episode(traces, "actacc"),
    }


def run_bench(
    game_name: str, model_dirs: list[str], episodes: int, steps: int, seed: int,
    agent: str | None = None, out: str | Path | None = None, command: str = "",
    progress: bool = True, configs: Sequence[str] = (), world: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Benchmark the engine and each model folder (every module setting, or the `configs`
    named), in the map file `world` where given (see `contenders`); write results to `out`
    when given."""
    from maag.games import get_game

    definition = get_game(game_name)
    if definition.referee is None:
        raise MaagError(f"{game_name} has no referee yet: it cannot be benchmarked")
    if episodes < 1 or steps < 1:
        raise MaagError("a benchmark needs at least one episode of at least one step")
    agent = agent or next(iter(definition.agents))
    rows = contenders(definition, model_dirs, configs, world)
    if out is not None:
        out = ensure_writable_dir(out)
    held_out = _held_out(game_name, agent, steps, seed, min(episodes, 4))
    results: dict[str, Any] = {
        "command": command,
        "game": game_name,
        "agent": agent,
        "episodes": episodes,
        "steps": steps,
        "seed": seed,
        "map": world,
        "rows": [],
    }
    curves, films = {}, []
    with tqdm(total=len(rows) * episodes, disable=not progress, unit="episode") as bar:
        for row in rows:
            traces = []
            for index in range(episodes):
                bar.set_description(row.label)
                game = row.make(episode_seeds(seed, index)[0])
                traces.append(
                    play_episode(definition, game, agent, steps, seed, index, index == 0, world)
                )
                bar.update(1)
            summary = {"label": row.label, "source": row.source, **summarise(traces, steps)}
            if isinstance(game, GenerativeGame):
                summary["fidelity"] = _fidelity(game, held_out)
            results["rows"].append(summary)
            curves[row.label] = _curves(traces, steps)
            films.append(np.stack(traces[0].frames))
    if out is not None:
        _write_outputs(Path(out), results, curves, films)
    return results


def _curves(traces: list[Trace], steps: int) -> dict[str, np.ndarray]:
    """Per rollout step, over episodes: NumCon, ActAcc, and (ok, count) of revisits."""
    revisit_ok, revisit_count = np.zeros(steps), np.zeros(steps)
    for trace in traces:
        for t, ok in trace.revisits:
            revisit_ok[t - 1] += ok
            revisit_count[t - 1] += 1
    return {
        "numcon": np.mean([t.numcon for t in traces], axis=0),
        "actacc": np.mean([t.actacc for t in traces], axis=0),
        "spacon": (revisit_ok, revisit_count),
    }


def _fidelity(game: GenerativeGame, episodes: dict[str, np.ndarray]) -> dict[str, float]:
    """Teacher-forced PSNR with the modules as switched: true digit tokens, true map views."""
    from maag.games import get_game
    from maag.transitions import MapViews

    maps = None
    if game.spatial:
        maps = MapViews(episodes, game.spec, get_game(game.spec.name).sprite_mask)
    tokens = game.tokens if game.numerical else None
    return teacher_forced_psnr(
        game.generator, episodes, game.sampler_steps, tokens=tokens, maps=maps
    )


def _held_out(game: str, agent: str, steps: int, seed: int, count: int) -> dict[str, np.ndarray]:
    """Engine episodes of the benchmark's own seeds, for teacher-forced fidelity."""
    episodes = [generate_episode(game, agent, steps, seed, i) for i in range(count)]
    return {key: np.stack([e[key] for e in episodes]) for key in ARRAYS}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _with_interval(row: dict[str, Any], name: str) -> str:
    """A metric with its interval over episodes, where the results hold one."""
    interval = row.get(f"{name}_interval")
    if not interval:
        return _fmt(row[name])
    return f"{_fmt(row[name])} ({_fmt(interval[0])}-{_fmt(interval[1])})"


def markdown_table(results: dict[str, Any]) -> str:
    """The side-by-side table of a benchmark's results."""
    head = (
        "| config | NumCon | event F1 | digit acc | SpaCon (revisits) | revisit PSNR | ActAcc "
        "| NPC acc | readable | TF PSNR (copy-last) | NumCon Q1→Q4 | SpaCon Q1→Q4 "
        "| ActAcc Q1→Q4 | ms/step | generator ms | modules share |\n|" + "---|" * 16
    )
    lines = [head]
    for r in results["rows"]:
        fidelity = r.get("fidelity")
        tf = f"{fidelity['psnr']:.1f} ({fidelity['copy_last_psnr']:.1f})" if fidelity else "n/a"
        drift = {m: " → ".join(_fmt(v, 2) for v in r["drift"][m]) for m in r["drift"]}
        lines.append(
            f"| {r['label']} | {_with_interval(r, 'numcon')} | {_fmt(r['event_f1'])} "
            f"| {_fmt(r['digit_accuracy'])} | {_fmt(r['spacon'])} ({r['revisits']}) "
            f"| {_fmt(r['revisit_psnr'], 1)} | {_with_interval(r, 'actacc')} "
            f"| {_fmt(r.get('npcacc'))} | {_fmt(r['readable'])} "
            f"| {tf} | {drift['numcon']} | {drift['spacon']} | {drift['actacc']} "
            f"| {_fmt(r['ms_per_step'], 2)} | {_fmt(r['ms_per_part'].get('generator'), 2)} "
            f"| {_fmt(r['modules_share'], 2)} |"
        )
    sources = "\n".join(f"- **{r['label']}**: {r['source']}" for r in results["rows"])
    note = (
        "In brackets: the 95% bootstrap interval over the episodes "
        "(one lasting failure costs the rest of its episode)."
    )
    return "\n".join(lines) + "\n\n" + sources + "\n\n" + note


def _write_outputs(out: Path, results: dict, curves: dict, films: list[np.ndarray]) -> None:
    import imageio.v3 as iio
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    text = json.dumps(results, indent=1, default=lambda v: None if v != v else v)
    write_atomic(out / "results.json", lambda tmp: tmp.write_text(text))
    table = markdown_table(results)
    write_atomic(
        out / "results.md",
        lambda tmp: tmp.write_text(
            f"# {results['game']} benchmark\n\n`{results['command']}`\n\n{table}\n"
        ),
    )
    figure, axes = plt.subplots(1, 3, figsize=(14, 3.5))
    window = np.ones(max(1, results["steps"] // 50))
    for label, curve in curves.items():
        ok, count = (np.convolve(c, window, "valid") for c in curve["spacon"])
        smoothed = {
            "NumCon": np.convolve(curve["numcon"], window / window.size, mode="valid"),
            "SpaCon": np.divide(ok, count, out=np.full_like(ok, np.nan), where=count > 0),
            "ActAcc": np.convolve(curve["actacc"], window / window.size, mode="valid"),
        }
        for ax, (metric, values) in zip(axes, smoothed.items(), strict=True):
            ax.plot(np.arange(len(values)) + window.size, values, label=label)
            ax.set(title=f"{metric} (running mean)", xlabel="rollout step", ylim=(-0.02, 1.02))
    axes[0].legend()
    figure.tight_layout()
    write_atomic(
        out / "metrics_by_step.png", lambda tmp: figure.savefig(tmp, format="png", dpi=100)
    )
    plt.close(figure)
    films = [f[:GIF_STEPS] for f in films]  # the first steps keep the file small
    gap = np.full((films[0].shape[0], films[0].shape[1], 2, 3), 255, np.uint8)
    side_by_side = np.concatenate([x for f in films for x in (f, gap)][:-1], axis=2)
    video = side_by_side.repeat(2, axis=1).repeat(2, axis=2)
    write_atomic(
        out / "rollouts.gif",
        lambda tmp: iio.imwrite(tmp, video, extension=".gif", duration=80, loop=0),
    )
