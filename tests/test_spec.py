"""GameSpec arithmetic and the shared HUD font."""

import json

import numpy as np
import pytest

from maag.errors import MaagError
from maag.games import GAMES
from maag.games.common import hud_band, read_hud
from maag.spec import Effect, EventSpec, GameSpec, ValueSpec

SPEC = GameSpec(
    name="toy",
    frame_height=64,
    frame_width=64,
    hud_height=8,
    actions=("noop",),
    values=(ValueSpec("score", 0, 99, 0, 2), ValueSpec("lives", 0, 3, 3, 50)),
    events=(
        EventSpec("coin", (Effect("score", "add", 10),)),
        EventSpec("death", (Effect("lives", "add", -1),)),
        EventSpec("new_game", (Effect("score", "set", 0), Effect("lives", "set", 3))),
    ),
)


def test_effects_apply_in_order_and_clamp_to_range():
    values = SPEC.initial_values()
    assert SPEC.apply_events(values, ["coin", "coin"]) == {"score": 20, "lives": 3}
    assert SPEC.apply_events({"score": 95, "lives": 0}, ["coin", "death"]) == {
        "score": 99,
        "lives": 0,
    }
    assert SPEC.apply_events({"score": 50, "lives": 1}, ["death", "new_game"]) == values
    with pytest.raises(MaagError, match="no event"):
        SPEC.apply_events(values, ["teleport"])


def test_check_values_names_the_problem():
    SPEC.check_values({"score": 99, "lives": 0})
    with pytest.raises(MaagError, match=r"score=100 is outside 0\.\.99"):
        SPEC.check_values({"score": 100, "lives": 0})
    with pytest.raises(MaagError, match="values must be"):
        SPEC.check_values({"score": 1})


@pytest.mark.parametrize("spec", [SPEC] + [g.spec for g in GAMES.values()], ids=lambda s: s.name)
def test_hud_round_trips_every_value(spec):
    rng = np.random.default_rng(0)
    frame = np.zeros((spec.frame_height, spec.frame_width, 3), np.uint8)
    for v in spec.values:
        numbers = range(v.low, v.high + 1)
        if len(numbers) > 2000:  # every digit in every place, plus both ends
            numbers = [v.low, v.high, *rng.integers(v.low, v.high + 1, 2000)]
        for number in numbers:
            values = spec.initial_values() | {v.name: int(number)}
            frame[: spec.hud_height] = hud_band(spec, values)
            assert read_hud(spec, frame) == values


def test_an_event_the_rules_fire_on_their_own():
    spec = GAMES["pacman"].spec
    assert spec.resolve({"score": 70, "lives": 1}, ["pellet", "death"]) == (
        {"score": 0, "lives": 3},
        ("pellet", "death", "new_game"),
    )
    assert spec.resolve({"score": 70, "lives": 2}, ["death"]) == (
        {"score": 70, "lives": 1},
        ("death",),
    )
    assert GameSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    with pytest.raises(MaagError, match="fires when 'health' reaches 0, but there is no value"):
        GameSpec(**{**vars(SPEC), "events": (EventSpec("over", when=("health", 0)),)})
