"""The ground-truth Pong: scoring rules, serve, opponent, determinism, frame reader."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from maag.errors import MaagError
from maag.games import pong
from maag.games.common import RandomAgent

SPEC = pong.SPEC
NOOP, UP, DOWN = (SPEC.actions.index(a) for a in ("noop", "up", "down"))


def _state(engine: pong.PongEngine) -> tuple[int, ...]:
    return engine.ball_x, engine.ball_y, engine.vx, engine.vy, engine.left, engine.right


def _rollout(agent_cls, seed: int, steps: int):
    """Yield (state before, step, state after) for `steps` steps of `agent_cls` playing."""
    engine = pong.PongEngine(seed)
    agent = agent_cls(SPEC, seed + 100)
    step = engine.reset()
    for _ in range(steps):
        before = _state(engine)
        step = engine.step(agent.act(step))
        yield before, step, _state(engine), engine


def _assert_served(engine: pong.PongEngine, row: int, vx: int, vy: int) -> None:
    """Served from the centre on the row the ball left on (within the serve rows), in the
    same direction and vertical speed, the horizontal speed switched between 1 and 2."""
    low, high = pong.SERVE_Y - pong.SERVE_SPREAD, pong.SERVE_Y + pong.SERVE_SPREAD
    assert (engine.ball_x, engine.ball_y) == (pong.SERVE_X, min(max(row, low), high))
    assert engine.vx == (3 - abs(vx)) * (1 if vx > 0 else -1)
    assert engine.vy == vy


@pytest.mark.parametrize("agent_cls", [pong.Tracker, RandomAgent])
def test_point_scored_exactly_when_ball_leaves_field(agent_cls):
    values = SPEC.initial_values()
    points = 0
    for before, step, after, engine in _rollout(agent_cls, seed=1, steps=3000):
        x, y, vx, vy = before[:4]
        left, right = after[4:]
        ny = y + vy
        if not pong.BALL_MIN_Y <= ny <= pong.BALL_MAX_Y:
            ny, vy = min(max(ny, pong.BALL_MIN_Y), pong.BALL_MAX_Y), -vy
        nx = x + vx
        if nx <= pong.BALL_MIN_X or nx >= pong.BALL_MAX_X:
            on_left = nx <= pong.BALL_MIN_X
            paddle = left if on_left else right
            hit = paddle - 2 < ny < paddle + pong.PADDLE_HEIGHT  # rows overlap
            if hit:
                assert step.events == ()
                assert after[:3] == (pong.BALL_MIN_X if on_left else pong.BALL_MAX_X, ny, -vx)
            else:
                assert step.events == (("point_right",) if on_left else ("point_left",))
                _assert_served(engine, ny, vx, vy)
                points += 1
        else:
            assert step.events == ()
            assert after[:4] == (nx, ny, vx, vy)
        values = SPEC.apply_events(values, step.events)
        assert step.values == values
        SPEC.check_values(step.values)
        assert pong.BALL_MIN_X <= engine.ball_x <= pong.BALL_MAX_X
        assert pong.BALL_MIN_Y <= engine.ball_y <= pong.BALL_MAX_Y
        assert step.camera == (0, 0)
    assert points >= 10


def test_serve_after_point_and_on_reset():
    engine = pong.PongEngine(4)
    step = engine.reset()
    assert step.events == ()
    assert step.values == {"left": 0, "right": 0}
    assert _state(engine) == (
        pong.SERVE_X,
        pong.SERVE_Y,
        *pong.FIRST_SERVE,
        *[pong.PADDLE_CENTRE] * 2,
    )
    served = 0
    for _ in range(2000):
        step = engine.step(NOOP)
        if step.events:
            assert pong.read_frame(step.frame).ball == (engine.ball_x, engine.ball_y)
            served += 1
    assert served >= 5


def test_nothing_in_pong_is_random():
    """Engines with different seeds (or none), fed the same actions, show the same game."""
    actions = np.random.default_rng(0).integers(len(SPEC.actions), size=1500)
    engines = [pong.PongEngine(), pong.PongEngine(1), pong.PongEngine(2)]
    first = [engine.reset(seed) for engine, seed in zip(engines, (None, 5, 9), strict=True)]
    for step in [first] + [[engine.step(int(a)) for engine in engines] for a in actions]:
        assert all(np.array_equal(step[0].frame, other.frame) for other in step[1:])
        assert all(step[0].values == other.values for other in step[1:])
        assert all(step[0].events == other.events for other in step[1:])


def test_opponent_is_beatable_and_scores_too():
    totals = {"point_left": 0, "point_right": 0}
    for _, step, _, _ in _rollout(pong.Tracker, seed=2, steps=3000):
        for event in step.events:
            totals[event] += 1
    assert totals["point_right"] >= 1  # the player beat the opponent
    assert totals["point_left"] >= 1  # and the opponent beat the player


def test_paddle_speeds():
    engine = pong.PongEngine(0)
    engine.reset()
    top = engine.right
    engine.step(UP)
    assert engine.right == top - pong.PLAYER_SPEED
    engine.step(DOWN)
    engine.step(DOWN)
    assert engine.right == top + pong.PLAYER_SPEED
    for _ in range(40):
        engine.step(UP)
    assert engine.right == pong.PADDLE_MIN
    for _ in range(40):
        engine.step(DOWN)
    assert engine.right == pong.PADDLE_MAX
    for before, _, after, _ in _rollout(RandomAgent, seed=3, steps=500):
        assert abs(after[4] - before[4]) <= pong.OPPONENT_SPEED
        assert pong.PADDLE_MIN <= after[4] <= pong.PADDLE_MAX


def test_actions_are_validated():
    engine = pong.PongEngine()
    with pytest.raises(MaagError, match="reset"):
        engine.step(NOOP)
    engine.reset()
    for bad in (-1, 3, 1.0, True, "up"):
        with pytest.raises(MaagError):
            engine.step(bad)
    engine.step(np.int64(UP))


def test_scores_saturate_at_99():
    engine = pong.PongEngine(6)
    agent = pong.Tracker(SPEC, 6)
    step = engine.reset()
    engine.values = {"left": 99, "right": 98}
    seen = set()
    for _ in range(3000):
        step = engine.step(agent.act(step))
        seen.update(step.events)
        SPEC.check_values(step.values)
        if {"point_left", "point_right"} <= seen:
            break
    assert step.values == {"left": 99, "right": 99}
    assert pong.read_frame(step.frame).values == step.values


def test_reader_exact_on_engine_frames():
    frames = 0
    for seed, agent_cls in ((0, RandomAgent), (1, pong.Tracker), (2, RandomAgent)):
        for _, step, _, engine in _rollout(agent_cls, seed=seed, steps=800):
            reading = pong.read_frame(step.frame)
            assert reading.readable
            assert reading.values == step.values
            assert reading.left_paddle == engine.left
            assert reading.right_paddle == engine.right
            assert reading.ball == (engine.ball_x, engine.ball_y)
            frames += 1
    assert frames >= 2000


def test_sprite_mask_is_the_ball_and_both_paddles():
    for _, step, _, engine in _rollout(pong.Tracker, seed=4, steps=50):
        mask = pong.sprite_mask(step.frame)
        assert not mask[: pong.FIELD_TOP].any()  # never the HUD
        field = step.frame[pong.FIELD_TOP :]
        assert np.array_equal(mask[pong.FIELD_TOP :], (field != pong.BACKGROUND).any(axis=-1))
        assert mask[engine.ball_y, engine.ball_x] and mask.sum() == pong.BALL**2 + 2 * (
            pong.PADDLE_HEIGHT * pong.PADDLE_WIDTH
        )


def test_reader_refuses_noise_and_damage():
    rng = np.random.default_rng(0)
    for _ in range(20):
        noise = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        reading = pong.read_frame(noise)
        assert not reading.readable
        assert reading.left_paddle is None and reading.right_paddle is None
        assert reading.ball is None
    frame = pong.PongEngine(0).reset().frame
    assert pong.read_frame(frame).readable

    def damaged(y, x, colour):
        f = frame.copy()
        f[y, x] = colour
        return pong.read_frame(f)

    engine = pong.PongEngine(0)
    engine.reset()
    bx, by, left, right = engine.ball_x, engine.ball_y, engine.left, engine.right
    assert damaged(by, bx, pong.BACKGROUND).ball is None  # 3-pixel ball
    assert damaged(by + 2, bx, pong.BALL_COLOUR).ball is None  # 5-pixel ball
    assert damaged(20, 40, pong.LEFT_PADDLE).ball is None  # stray pixel in the field
    assert damaged(20, 40, (128, 0, 128)).ball is None  # colour of nothing
    assert damaged(left, 2, pong.BACKGROUND).left_paddle is None  # ragged paddle
    assert damaged(left + 10, 3, pong.LEFT_PADDLE).left_paddle is None  # too tall
    assert damaged(50, 0, pong.LEFT_PADDLE).left_paddle is None  # left of the paddle
    assert damaged(right, 61, pong.BACKGROUND).right_paddle is None
    assert damaged(10, 63, pong.RIGHT_PADDLE).right_paddle is None
    assert damaged(right, 60, pong.LEFT_PADDLE).right_paddle is None  # wrong colour
    assert damaged(3, 30, pong.BALL_COLOUR).values is None  # HUD blot
    kept = damaged(20, 40, pong.LEFT_PADDLE)  # damage in one part leaves the others read
    assert (kept.left_paddle, kept.right_paddle, kept.values) == (
        left,
        right,
        {"left": 0, "right": 0},
    )
    with pytest.raises(MaagError):
        pong.read_frame(frame[:32])


def test_colours_are_distinct():
    from maag.games.common import COLOUR_TOLERANCE, HUD_BACKGROUND, HUD_INK

    colours = [pong.BACKGROUND, pong.LEFT_PADDLE, pong.RIGHT_PADDLE, pong.BALL_COLOUR]
    for i, a in enumerate(colours):
        for b in [*colours[i + 1 :], HUD_BACKGROUND, HUD_INK]:
            assert max(abs(p - q) for p, q in zip(a, b, strict=True)) > 2 * COLOUR_TOLERANCE


def test_pong_reads_the_same_upside_down():
    """The claim behind `mirrored_actions`: an engine set to a game's mirror image (field
    flipped top to bottom) and fed the mirrored actions shows that game's frames upside
    down, scores and events alike, through returns, misses and serves."""
    top, bottom = pong.FIELD_TOP, pong.FIELD_BOTTOM
    mirrored = pong.GAME.mirrored_actions
    for seed in range(3):
        agent, engine = RandomAgent(SPEC, seed), pong.PongEngine()
        step = engine.reset()
        for _ in range(5 + seed):
            step = engine.step(agent.act(step))
        twin = copy.deepcopy(engine)
        twin.ball_y, twin.vy = top + bottom - pong.BALL - engine.ball_y, -engine.vy
        for side in ("left", "right"):
            setattr(twin, side, top + bottom - pong.PADDLE_HEIGHT - getattr(engine, side))
        events = []
        for _ in range(800):
            action = agent.act(step)
            step, upside_down = engine.step(action), twin.step(mirrored[action])
            assert np.array_equal(upside_down.frame[:top], step.frame[:top])
            assert np.array_equal(upside_down.frame[top:], step.frame[top:][::-1])
            assert upside_down.events == step.events and upside_down.values == step.values
            events += step.events
        assert len(events) >= 5  # points were scored (and balls served) along the way


def test_game_definition():
    assert pong.GAME.spec is SPEC
    assert set(pong.GAME.agents) == {"tracker", "random"}
    assert isinstance(pong.GAME.engine(0), pong.PongEngine)
    assert SPEC.value("left").hud_x < SPEC.value("right").hud_x


def test_alternative_flips_a_return_or_a_miss_where_the_ball_meets_a_face():
    """Where the ball reaches a paddle face, `alternative` is the step with the other
    outcome (the point or none; the ball served or returned from the row it met the face
    on), both paddles where the rules put them; None elsewhere. The engine itself does
    not move."""
    engine, agent = pong.PongEngine(0), pong.Tracker(SPEC, 1)
    step, outcomes = engine.reset(), {}
    for _ in range(4000):
        action = agent.act(step)
        twin = copy.deepcopy(engine)
        other = engine.alternative(action)
        row = min(max(engine.ball_y + engine.vy, pong.BALL_MIN_Y), pong.BALL_MAX_Y)
        on_left, reaching = (
            engine.vx < 0,
            not pong.BALL_MIN_X < engine.ball_x + engine.vx < pong.BALL_MAX_X,
        )
        step = engine.step(action)
        assert np.array_equal(step.frame, twin.step(action).frame)
        assert (other is not None) == reaching
        if other is None:
            continue
        true, alt = pong.read_frame(step.frame), pong.read_frame(other.frame)
        returned = step.events == ()
        outcomes[on_left, returned] = outcomes.get((on_left, returned), 0) + 1
        point = ("point_right",) if on_left else ("point_left",)
        assert {step.events, other.events} == {(), point}
        side = point[0].removeprefix("point_")
        assert other.values[side] - step.values[side] == (1 if returned else -1)
        assert (alt.left_paddle, alt.right_paddle) == (true.left_paddle, true.right_paddle)
        back, served = (true, alt) if returned else (alt, true)
        assert back.ball == ((pong.BALL_MIN_X if on_left else pong.BALL_MAX_X), row)
        assert served.ball[0] == pong.SERVE_X
        assert served.ball[1] == min(
            max(row, pong.SERVE_Y - pong.SERVE_SPREAD), pong.SERVE_Y + pong.SERVE_SPREAD
        )
    assert len(outcomes) == 4 and min(outcomes.values()) > 3, outcomes
