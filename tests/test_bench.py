"""The benchmark's metrics: perfect on the engine, and each corruption hits its own metric."""

import numpy as np
import pytest

import maag
from maag.bench import (
    Trace,
    contenders,
    explain_change,
    markdown_table,
    play_episode,
    run_bench,
    summarise,
)
from maag.cli import main
from maag.games import get_game
from maag.games.common import hud_band
from maag.games.traveler import CELL, PALETTE, PLAYER_SLOT, SPEC, TravelerEngine

TRAVELER = get_game("traveler")


class Corrupted(TravelerEngine):
    """The Traveler engine with one kind of damage drawn into its frames."""

    def __init__(self, seed, damage):
        super().__init__(seed)
        self.damage = damage
        self.t = 0

    def _observe(self, events):
        step = super()._observe(events)
        self.t += 1
        self.damage(self, step.frame)
        return step


def wrong_digit(engine, frame):
    if engine.t % 7 == 0:
        frame[: SPEC.hud_height] = hud_band(SPEC, {"score": (engine.values["score"] + 1) % 10})


def recolour_on_revisit(engine, frame):
    """Every cell that comes back into view has been repainted in another colour."""
    first = engine.x - PLAYER_SLOT
    seen = engine.__dict__.setdefault("seen", set())
    shown = set(range(first, first + 8))
    for cell in shown - engine.__dict__.get("shown", set()):
        if cell in seen and cell in engine.buildings:
            colour, height = engine.buildings[cell]
            engine.buildings[cell] = ((colour + 1) % len(PALETTE), height)
    seen |= shown
    engine.shown = shown
    frame[SPEC.hud_height :] = TravelerEngine._observe(engine, ()).frame[SPEC.hud_height :]


def player_one_cell_off(engine, frame):
    """Now and then the block stands one cell right, in front of that cell's building."""
    if engine.t % 5 == 0 and engine.x + 1 in engine.buildings:
        colour, _ = engine.buildings[engine.x]
        frame[48:56, 33:39] = PALETTE[colour]  # the player's own cell, uncovered
        frame[48:56, 33 + CELL : 39 + CELL] = 0  # the block, one cell right


def scores(make, seeds=(0, 1, 2), steps=300):
    traces = [
        play_episode(TRAVELER, make(seed), "wanderer", steps, seed=seed, index=0) for seed in seeds
    ]
    return summarise(traces, steps)


def test_engine_scores_one_on_every_consistency_metric():
    result = scores(lambda seed: maag.make("traveler", seed), seeds=(0, 1, 2, 3))
    for metric in ("numcon", "event_f1", "digit_accuracy", "spacon", "actacc", "readable"):
        assert result[metric] == 1.0, metric
    assert result["revisits"] > 100 and result["revisit_psnr"] == float("inf")


@pytest.mark.parametrize(
    "damage, hit",
    [(wrong_digit, "numcon"), (recolour_on_revisit, "spacon"), (player_one_cell_off, "actacc")],
)
def test_each_corruption_lowers_its_metric_and_no_other(damage, hit):
    result = scores(lambda seed: Corrupted(seed, damage))
    assert result[hit] < 0.95, hit
    for other in {"numcon", "spacon", "actacc"} - {hit}:
        assert result[other] == 1.0, other


def test_numcon_comes_episode_by_episode_with_a_bootstrap_interval():
    # three episodes consistent throughout, one that fails for good halfway
    traces = [Trace(numcon=[True] * 10, actacc=[True] * 10) for _ in range(3)]
    traces.append(Trace(numcon=[True] * 5 + [False] * 5, actacc=[True] * 10))
    for trace in traces:
        trace.step_ms = [1.0]
    result = summarise(traces, 10)
    assert result["numcon_by_episode"] == [1.0, 1.0, 1.0, 0.5]
    low, high = result["numcon_interval"]
    assert 0.5 <= low < result["numcon"] == 0.875 < high == 1.0
    assert result["actacc_interval"] == [1.0, 1.0]
    row = {"label": "full", "source": "test", **result}
    table = markdown_table({"rows": [row]})
    assert f"| full | 0.875 ({low:.3f}-1.000) |" in table
    assert summarise(traces, 10)["numcon_interval"] == [low, high]  # repeatable


def test_shown_value_changes_are_explained_by_events():
    pacman = get_game("pacman").spec
    assert explain_change(pacman, {"score": 0, "lives": 3}, {"score": 10, "lives": 3}, ()) == (
        "pellet",
    )
    both = ("ghost_eaten", "pellet")
    assert (
        explain_change(pacman, {"score": 0, "lives": 3}, {"score": 210, "lives": 3}, both) == both
    )
    assert explain_change(pacman, {"score": 0, "lives": 3}, {"score": 7, "lives": 3}, ()) == (
        "unexplained",
    )
    assert explain_change(pacman, None, {"score": 7, "lives": 3}, ("pellet",)) == ()


def test_bench_writes_its_outputs(tmp_path):
    results = run_bench("traveler", [], 2, 40, seed=5, out=tmp_path, command="test", progress=False)
    assert results["rows"][0]["label"] == "engine" and results["rows"][0]["numcon"] == 1.0
    for name in ("results.json", "results.md", "metrics_by_step.png", "rollouts.gif"):
        assert (tmp_path / name).stat().st_size > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bench", "--game", "chess"], "unknown game 'chess'"),
        (["bench", "--game", "traveler", "--models", "nowhere"], "no model folder at nowhere"),
        (["bench", "--game", "traveler", "--episodes", "0"], "--episodes: must be at least 1"),
    ],
)
def test_bench_mistakes_get_one_line(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_bench_refuses_a_model_of_another_game(tmp_path):
    from maag.generative import save_model_folder
    from maag.models.dit import FrameDiT

    pong = get_game("pong").spec
    frame = np.zeros((1, 64, 64, 3), np.uint8)
    net = FrameDiT(hidden_size=32, depth=1, num_heads=2)
    save_model_folder(tmp_path, net, pong, frame, np.zeros((1, 2), int), 1, {})
    with pytest.raises(maag.MaagError, match="is a pong model, not traveler"):
        run_bench("traveler", [str(tmp_path)], 1, 5, seed=0, progress=False)


def test_rows_are_named_by_the_modules_each_model_has(tmp_path):
    from maag.generative import save_model_folder
    from maag.models.dit import FrameDiT
    from maag.models.logicnet import LogicNet
    from maag.numerical import DigitTokenizer

    pong = get_game("pong")
    tokens = DigitTokenizer(pong.spec)
    frame, cameras = np.zeros((1, 64, 64, 3), np.uint8), np.zeros((1, 2), int)
    plain = FrameDiT(hidden_size=32, depth=1, num_heads=2)
    save_model_folder(tmp_path / "baseline", plain, pong.spec, frame, cameras, 1, {})
    numerical = FrameDiT(
        hidden_size=32, depth=1, num_heads=2, cond_vocab_size=tokens.vocab_size,
        num_cond_tokens=tokens.num_tokens,
    )  # fmt: skip
    logicnet = LogicNet(event_names=pong.spec.event_names, num_actions=3, width=8)
    save_model_folder(tmp_path / "full", numerical, pong.spec, frame, cameras, 1, {}, logicnet)
    folders = [str(tmp_path / "baseline"), str(tmp_path / "full")]
    assert [row.label for row in contenders(pong, folders)] == ["engine", "baseline", "full"]
    assert [row.label for row in contenders(pong, folders, ["full"])] == ["engine", "full"]
