"""Traveler's rules and frame geometry (DESIGN.md) and its frame reader."""

import numpy as np

import maag
from maag.games import make_agent
from maag.games.traveler import CELL, EMPTY, PALETTE, PLAYER_SLOT, SPEC, read_frame


def walk(seed, steps, agent):
    game = maag.make("traveler", seed=seed)
    player = make_agent("traveler", agent, seed)
    step = game.reset()
    yield game, step
    for _ in range(steps):
        step = game.step(player.act(step))
        yield game, step


def test_score_is_explored_width_and_revisits_change_nothing():
    for agent in ("random", "wanderer"):
        seen: dict[int, tuple[int, int]] = {}
        lo = hi = 0
        for game, step in walk(seed=11, steps=5000, agent=agent):
            lo, hi = min(lo, game.x), max(hi, game.x)
            assert step.values["score"] == hi - lo
            revisit = game.x in seen
            assert (step.events == ()) == (revisit or not seen)
            seen.setdefault(game.x, game.buildings[game.x])
            assert game.buildings[game.x] == seen[game.x]


def test_camera_geometry_and_reader_agree_with_the_world():
    for game, step in walk(seed=2, steps=3000, agent="wanderer"):
        first = game.x - PLAYER_SLOT
        assert step.camera == (first * CELL, 0)
        reading = read_frame(step.frame)
        assert reading.player is not None and 32 <= reading.player[0] <= reading.player[0] + 5 <= 39
        expected = tuple(game.buildings.get(c, EMPTY) for c in range(first, first + 8))
        assert reading.cells == expected
        assert reading.values == step.values


def test_wanderer_revisits_in_both_directions():
    positions = [game.x for game, _ in walk(seed=4, steps=1000, agent="wanderer")]
    moves = np.diff(positions)
    assert (moves > 0).sum() > 200 and (moves < 0).sum() > 200
    visits = np.unique(positions, return_counts=True)[1]
    assert (visits > 2).mean() > 0.5  # most cells are seen again, and again


def test_reader_refuses_damaged_scenes():
    game = maag.make("traveler", seed=0)
    frame = game.reset().frame.copy()
    for _ in range(3):
        frame = game.step(2).frame.copy()
    assert read_frame(frame).readable
    half_building = frame.copy()
    half_building[30, 3:5] = (10, 200, 10)  # a stray colour in a building column
    assert None in read_frame(half_building).cells
    no_player = frame.copy()
    colour, _ = read_frame(frame).cells[PLAYER_SLOT]
    no_player[48:56, 33:39] = PALETTE[colour]  # the block painted over with its building
    assert read_frame(no_player).player is None
    wrong_digit = frame.copy()
    wrong_digit[SPEC.hud_height - 3, 3] = (255, 255, 255)  # an extra ink pixel in the HUD
    assert read_frame(wrong_digit).values is None
