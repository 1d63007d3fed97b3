"""Protocol invariants every registered ground-truth game must hold."""

import itertools

import numpy as np
import pytest

import maag
from maag.games import GAMES, get_game, make_agent
from maag.spec import GameSpec

GAME_NAMES = sorted(GAMES)


def rollout(name, seed, steps, agent="random"):
    game = maag.make(name, seed=seed)
    player = make_agent(name, agent, seed)
    step = game.reset()
    out = [step]
    for _ in range(steps):
        step = game.step(player.act(step))
        out.append(step)
    return out


@pytest.mark.parametrize("name", GAME_NAMES)
def test_spec_round_trips_through_dict(name):
    spec = get_game(name).spec
    assert GameSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("name", GAME_NAMES)
def test_frames_values_events_follow_the_spec(name):
    spec = get_game(name).spec
    steps = rollout(name, seed=3, steps=1500)
    assert steps[0].events == ()
    assert steps[0].values == spec.initial_values()
    for prev, step in itertools.pairwise(steps):
        assert step.frame.shape == (spec.frame_height, spec.frame_width, 3)
        assert step.frame.dtype == np.uint8
        assert set(step.events) <= set(spec.event_names)
        spec.check_values(step.values)
        # the engine's values are exactly the spec's effects of the events it reports
        assert step.values == spec.apply_events(prev.values, step.events)


@pytest.mark.parametrize("name", GAME_NAMES)
def test_same_seed_same_game_other_seed_other_game(name):
    a, b, c = (rollout(name, seed, 300) for seed in (5, 5, 6))
    assert all(
        np.array_equal(x.frame, y.frame) and x.values == y.values for x, y in zip(a, b, strict=True)
    )
    assert any(not np.array_equal(x.frame, z.frame) for x, z in zip(a, c, strict=True))


@pytest.mark.parametrize("name", GAME_NAMES)
def test_reset_with_seed_replays_the_episode(name):
    game = maag.make(name, seed=1)
    first = [game.reset(seed=9).frame] + [game.step(i % 2).frame for i in range(50)]
    again = [game.reset(seed=9).frame] + [game.step(i % 2).frame for i in range(50)]
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))


@pytest.mark.parametrize("name", GAME_NAMES)
def test_reader_reads_every_engine_frame(name):
    read = get_game(name).read_frame
    agents = list(get_game(name).agents)
    for seed in range(2):
        for agent in agents:
            for step in rollout(name, seed, 600, agent):
                reading = read(step.frame)
                assert reading.readable
                assert reading.values == step.values


@pytest.mark.parametrize("name", GAME_NAMES)
def test_reader_refuses_noise(name):
    spec = get_game(name).spec
    read = get_game(name).read_frame
    rng = np.random.default_rng(0)
    for _ in range(50):
        noise = rng.integers(0, 256, (spec.frame_height, spec.frame_width, 3), dtype=np.uint8)
        reading = read(noise)
        assert not reading.readable
        assert reading.values is None
    assert not read(np.zeros((spec.frame_height, spec.frame_width, 3), np.uint8)).readable


@pytest.mark.parametrize("name", GAME_NAMES)
def test_bad_actions_are_refused(name):
    game = maag.make(name)
    with pytest.raises(maag.MaagError, match="reset"):
        game.step(0)
    game.reset()
    for bad in (-1, len(game.spec.actions), 1.5, "left", True):
        with pytest.raises(maag.MaagError):
            game.step(bad)


def test_unknown_names_are_refused():
    with pytest.raises(maag.MaagError, match="unknown game"):
        maag.make("tetris")
    with pytest.raises(maag.MaagError, match="unknown agent"):
        make_agent("traveler", "sprinter", 0)


def test_near_any_colour_finds_what_classify_pixels_finds():
    """The table look-up the sprite masks use marks exactly the pixels that classify_pixels
    gives a colour, near the colours' tolerance edges as well as far from them."""
    from maag.games.common import COLOUR_TOLERANCE, classify_pixels, near_any_colour

    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (9, 3), dtype=np.uint8)
    offsets = rng.integers(-COLOUR_TOLERANCE - 3, COLOUR_TOLERANCE + 4, (4000, 3))
    near = np.clip(colours[rng.integers(0, 9, 4000)] + offsets, 0, 255).astype(np.uint8)
    anywhere = rng.integers(0, 256, (4000, 3), dtype=np.uint8)
    for pixels in (near.reshape(40, 100, 3), anywhere):
        found = near_any_colour(pixels, colours)
        assert np.array_equal(found, classify_pixels(pixels, colours) >= 0)
    assert 0.2 < near_any_colour(near, colours).mean() < 0.9  # both sides of the edge
    with pytest.raises(ValueError, match="up to 64 colours"):
        near_any_colour(near, np.zeros((65, 3), np.uint8))
