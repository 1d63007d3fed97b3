"""Pong's and Pac-Man's referees: the benchmark's metrics are perfect on the engines, and
each kind of damage drawn into the frames lowers its own metric and no other (as
tests/test_bench.py checks for Traveler)."""

import numpy as np
import pytest

import maag
from maag.bench import play_episode, summarise
from maag.games import get_game, pacman, pong
from maag.games.common import hud_band
from maag.games.pacman import PACMAN, TILE, VIEW_COLS, VIEW_ROWS, PacmanEngine, PacmanReferee
from maag.games.pacman.engine import _PACMAN_TILE
from maag.games.pong import PongEngine, PongReferee

PONG, PACMAN_GAME = get_game("pong"), get_game("pacman")
METRICS = ("numcon", "event_f1", "digit_accuracy", "actacc", "readable")


def scores(definition, make, agent, seeds=(0, 1, 2), steps=300):
    traces = [
        play_episode(definition, make(seed), agent, steps, seed=seed, index=0) for seed in seeds
    ]
    return summarise(traces, steps), traces


def damaged(engine_class):
    """The engine with one kind of damage drawn into its frames after each step."""

    class Damaged(engine_class):
        def __init__(self, seed, damage):
            super().__init__(seed)
            self.damage = damage
            self.frames = 0

        def _observe(self, events):
            step = super()._observe(events)
            self.frames += 1
            self.damage(self, step)
            return step

    return Damaged


# -- Pong ---------------------------------------------------------------------------------


def pong_wrong_digit(engine, step):
    if engine.frames % 7 == 0:
        shown = dict(step.values, right=(step.values["right"] + 1) % 10)
        step.frame[: pong.SPEC.hud_height] = hud_band(pong.SPEC, shown)


def pong_paddle_off(engine, step):
    """Now and then the player's paddle is drawn 4 px lower (higher at the bottom wall)."""
    if engine.frames % 5 == 0:
        top = engine.right
        moved = top + 4 if top + 4 <= pong.PADDLE_MAX else top - 4
        cols = slice(pong.RIGHT_X, pong.RIGHT_X + pong.PADDLE_WIDTH)
        step.frame[top : top + pong.PADDLE_HEIGHT, cols] = pong.BACKGROUND
        step.frame[moved : moved + pong.PADDLE_HEIGHT, cols] = pong.RIGHT_PADDLE


@pytest.mark.parametrize("agent", ["tracker", "random"])
def test_pong_engine_scores_one(agent):
    result, traces = scores(PONG, lambda seed: maag.make("pong", seed), agent, seeds=(0, 1, 2, 3))
    for metric in METRICS:
        assert result[metric] == 1.0, metric
    assert result["spacon"] is None and result["revisits"] == 0  # nothing to revisit
    assert result["npcacc"] is None  # the ball is judged through `followable`
    assert sum(len(events) for t in traces for events in t.true_events) >= 5  # points scored


@pytest.mark.parametrize("damage, hit", [(pong_wrong_digit, "numcon"), (pong_paddle_off, "actacc")])
def test_pong_damage_lowers_its_metric_and_no_other(damage, hit):
    result, _ = scores(PONG, lambda seed: damaged(PongEngine)(seed, damage), "tracker")
    assert result[hit] < 0.95, hit
    for other in {"numcon", "actacc"} - {hit}:
        assert result[other] == 1.0, other


def pong_points_judged(balls: list) -> list[tuple[str, ...]]:
    """The events a fresh referee judges for readings of `balls` ((x, y) or None: not
    read, and the left paddle with it), the left paddle at the bottom wall otherwise."""
    referee, values = PongReferee(), pong.SPEC.initial_values()
    readings = [
        pong.PongReading(values, None if ball is None else pong.PADDLE_MAX, 31, ball)
        for ball in balls
    ]
    referee.start(readings[0])
    return [referee.judge(0, reading).events for reading in readings[1:]]


def test_pong_referee_scores_a_ball_served_anew_where_it_could_not_see_it_leave():
    served = (pong.SERVE_X, pong.SERVE_Y)
    # the step it reached the face unreadable (ball and paddle): the serve decides
    assert pong_points_judged([(8, 30), (6, 30), None, served]) == [(), (), ("point_right",)]
    # drawn back at the face, then served: a point all the same, once
    assert pong_points_judged([(8, 30), (6, 30), (4, 30), served, (32, 36), (33, 37)]) == [
        (),
        (),
        ("point_right",),
        (),
        (),
    ]
    assert pong_points_judged([(50, 30), (52, 30), None, None, served]) == [
        (),
        (),
        (),
        ("point_left",),
    ]
    # lost in mid-field, or found again where its speed can carry it: no point
    assert pong_points_judged([(20, 30), (18, 30), None, None, served]) == [(), (), (), ()]
    assert pong_points_judged([(8, 30), (6, 30), None, (6, 31)]) == [(), (), ()]
    # lost for long enough to have flown there: no point
    assert pong_points_judged([(8, 30), (6, 30)] + [None] * 14 + [served]) == [()] * 16


def pong_no_ball(engine, step):
    """From step 20 on the ball is gone from the screen (the field drawn over it)."""
    if engine.frames >= 20:
        x, y = engine.ball_x, engine.ball_y
        step.frame[y : y + pong.BALL, x : x + pong.BALL] = pong.BACKGROUND


def test_a_pong_game_that_loses_its_ball_is_not_consistent():
    # the score shown stays 0 : 0 and no point is ever seen: with the ball gone, that is no
    # consistency, and an event F1 over no events at all is n/a, not 1
    result, _ = scores(PONG, lambda seed: damaged(PongEngine)(seed, pong_no_ball), "tracker")
    assert result["numcon"] == pytest.approx(18 / 300)  # frames 1-19: the reset and 18 steps
    assert result["actacc"] == 1.0
    blank = [play_episode(PONG, damaged(PongEngine)(0, pong_no_ball), "tracker", 5, 0, 0)]
    assert summarise(blank, 5)["event_f1"] is None  # no point can be scored in 5 steps


def test_pong_referee_judges_points_from_the_screen():
    referee = PongReferee()
    engine = PongEngine(3)
    step = engine.reset()
    referee.start(pong.read_frame(step.frame))
    points, rng = 0, np.random.default_rng(0)
    for _ in range(1500):
        action = int(rng.integers(3))
        step = engine.step(action)
        judgement = referee.judge(action, pong.read_frame(step.frame))
        assert judgement.events == step.events and judgement.values == step.values
        assert judgement.visible == {} and judgement.regions == {}
        points += len(step.events)
    assert points > 5
    assert pong.GAME.referee is PongReferee


# -- Pac-Man ------------------------------------------------------------------------------


def pacman_wrong_digit(engine, step):
    if engine.frames % 7 == 0:
        shown = dict(step.values, score=(step.values["score"] + 10) % 100000)
        step.frame[: pacman.SPEC.hud_height] = hud_band(pacman.SPEC, shown)


def _view(step):
    return step.camera[0] // TILE, step.camera[1] // TILE


def pacman_wall_recoloured_on_revisit(engine, step):
    """A wall tile that comes back into view is drawn as floor in the frame it comes back."""
    cc, cr = _view(step)
    shown = {(cc + c, cr + r) for r in range(VIEW_ROWS) for c in range(VIEW_COLS)}
    seen = engine.__dict__.setdefault("seen", set())
    for c, r in (shown & seen) - engine.__dict__.get("shown", set()):
        if r < engine.maze.rows and c < engine.maze.cols and engine.maze.walls[r, c]:
            y, x = pacman.SPEC.hud_height + (r - cr) * TILE, (c - cc) * TILE
            step.frame[y : y + TILE, x : x + TILE] = 0  # floor
    seen |= shown
    engine.shown = shown


def pacman_drawn_one_tile_off(engine, step):
    """Now and then Pac-Man is drawn on the next tile (right, or left at the view's edge);
    his own tile shows what lies under him."""
    if engine.frames % 5:
        return
    cc, cr = _view(step)
    c, r = engine.pacman
    off = c + 1 if c + 1 - cc < VIEW_COLS else c - 1
    y = pacman.SPEC.hud_height + (r - cr) * TILE
    x, x_off = (c - cc) * TILE, (off - cc) * TILE
    step.frame[y : y + TILE, x : x + TILE] = engine._world[
        r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE
    ]
    step.frame[y : y + TILE, x_off : x_off + TILE] = _PACMAN_TILE


def pacman_ghost_erased(engine, step):
    """Now and then a ghost in view, four tiles or more from Pac-Man, is left out of the
    frame: his tile shows what lies under him."""
    if engine.frames % 4:
        return
    cc, cr = _view(step)
    for c, r in engine.ghosts:
        far = abs(c - engine.pacman[0]) + abs(r - engine.pacman[1]) >= 4
        if far and 0 <= c - cc < VIEW_COLS and 0 <= r - cr < VIEW_ROWS:
            y, x = pacman.SPEC.hud_height + (r - cr) * TILE, (c - cc) * TILE
            world = engine._world[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
            step.frame[y : y + TILE, x : x + TILE] = world
            return


@pytest.mark.parametrize("agent", ["seeker", "random"])
def test_pacman_engine_scores_one(agent):
    result, traces = scores(
        PACMAN_GAME, lambda seed: maag.make("pacman", seed), agent, seeds=(0, 1, 2, 3), steps=400
    )
    for metric in (*METRICS, "spacon", "npcacc"):
        assert result[metric] == 1.0, metric
    assert result["revisits"] > 1000 and result["revisit_psnr"] == float("inf")
    happened = {e for t in traces for events in t.true_events for e in events}
    assert {"pellet", "death"} <= happened
    # the engine's own account of each step's value-changing events is what the referee read
    assert [t.told_events for t in traces] == [t.true_events for t in traces]


def test_pacman_referee_follows_every_event_and_the_clamped_camera():
    """Events (also those without effect, fired together), values, Pac-Man's tile and the
    camera agree with the engine's, on the classic maze, the custom example (larger than
    the view both ways) and a maze smaller than the view."""
    small = "#########\n#P..o..G#\n#.##.##.#\n#...G...#\n#########\n"
    seen: dict[str, set] = {}
    for maze in (None, str(pacman.CUSTOM_EXAMPLE), small):
        for seed in (0, 1):
            engine = PacmanEngine(seed, maze=maze)
            referee = PacmanReferee(maze)
            step = engine.reset()
            assert referee.start(pacman.read_frame(step.frame)).moved_as_ruled
            agent = pacman.Seeker(pacman.SPEC, seed)
            for _ in range(600):
                action = agent.act(step)
                step = engine.step(action)
                judgement = referee.judge(action, pacman.read_frame(step.frame))
                assert judgement.events == step.events
                assert judgement.values == step.values and judgement.moved_as_ruled
                assert judgement.npc_as_ruled
                assert referee.pacman == engine.pacman
                assert (referee.camera[0] * TILE, referee.camera[1] * TILE) == step.camera
                seen.setdefault("events", set()).add(step.events)
                seen.setdefault("cameras", set()).add(step.camera)
    together = {events for events in seen["events"] if len(set(events) - {"blocked"}) > 1}
    assert ("pellet", "level_cleared") in together and ("death", "new_game") in together
    assert any("ghost_eaten" in events for events in seen["events"])
    assert len(seen["cameras"]) > 100


def test_pacman_visible_regions_and_hidden_tiles():
    engine = PacmanEngine(5)
    referee = PacmanReferee()
    step = engine.reset()
    judgement = referee.start(pacman.read_frame(step.frame))
    agent = pacman.Seeker(pacman.SPEC, 5)
    for _ in range(200):
        action = agent.act(step)
        step = engine.step(action)
        judgement = referee.judge(action, pacman.read_frame(step.frame))
    cc, cr = _view(step)
    assert engine.pacman in judgement.hidden and engine.pacman not in judgement.visible
    assert len(judgement.visible) + len(judgement.hidden) == VIEW_COLS * VIEW_ROWS
    for (c, r), content in judgement.visible.items():
        rows, cols = judgement.regions[(c, r)]
        world = engine._world[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
        assert np.array_equal(step.frame[rows, cols], world)
        expected = pacman.WALL if engine.maze.walls[r, c] else engine.items[r, c]
        assert content == expected
        assert 0 <= c - cc < VIEW_COLS and 0 <= r - cr < VIEW_ROWS


def test_pacman_may_change_only_as_the_rules_allow():
    referee = PacmanReferee()
    engine = PacmanEngine(0)
    step = engine.reset()
    referee.start(pacman.read_frame(step.frame))
    start = engine.pacman
    left = pacman.SPEC.actions.index("left")
    step = engine.step(left)  # he eats the pellet left of the start
    referee.judge(left, pacman.read_frame(step.frame))
    eaten, beside = engine.pacman, (start[0] + 3, start[1])
    assert eaten != start and engine.maze.items[eaten[1], eaten[0]] == pacman.PELLET
    assert referee.may_change(eaten, pacman.PELLET, pacman.EMPTY)
    assert not referee.may_change(beside, pacman.PELLET, pacman.EMPTY)  # never stood there
    assert not referee.may_change(eaten, pacman.EMPTY, pacman.PELLET)  # no refill yet
    for before, after in [(pacman.WALL, pacman.EMPTY), (pacman.EMPTY, pacman.WALL)]:
        assert not referee.may_change(eaten, before, after)
    assert not referee.may_change(beside, pacman.PELLET, pacman.POWER)
    referee._refills.append(referee.t)  # as after "level_cleared" or "new_game"
    assert referee.may_change(eaten, pacman.EMPTY, pacman.PELLET)
    assert not referee.may_change(eaten, pacman.EMPTY, pacman.POWER)  # not what lay there


@pytest.mark.parametrize(
    "damage, hit",
    [
        (pacman_wrong_digit, "numcon"),
        (pacman_wall_recoloured_on_revisit, "spacon"),
        (pacman_drawn_one_tile_off, "actacc"),
        (pacman_ghost_erased, "npcacc"),
    ],
)
def test_pacman_damage_lowers_its_metric_and_no_other(damage, hit):
    result, _ = scores(
        PACMAN_GAME, lambda seed: damaged(PacmanEngine)(seed, damage), "seeker", steps=300
    )
    assert result[hit] < 0.95, hit
    for other in {"numcon", "spacon", "actacc", "npcacc"} - {hit}:
        assert result[other] == 1.0, other


def test_pacman_sprite_mask_is_the_sprites_tiles():
    engine = PacmanEngine(11)
    step = engine.reset()
    agent = pacman.Seeker(pacman.SPEC, 11)
    for _ in range(120):
        step = engine.step(agent.act(step))
        tiles = np.array(pacman.read_frame(step.frame).tiles)
        sprites = (tiles == PACMAN) | (tiles == pacman.GHOST)
        expected = np.zeros((64, 64), bool)
        expected[8:] = sprites.repeat(TILE, 0).repeat(TILE, 1)
        assert np.array_equal(pacman.sprite_mask(step.frame), expected)
    assert PACMAN_GAME.sprite_mask is pacman.sprite_mask
    assert PACMAN_GAME.referee is PacmanReferee


def test_referees_survive_frames_they_cannot_read():
    rng = np.random.default_rng(0)
    for definition, agent in ((PONG, "tracker"), (PACMAN_GAME, "seeker")):
        engine, referee = definition.engine(0), definition.referee()
        step = engine.reset()
        referee.start(definition.read_frame(step.frame))
        player = definition.agents[agent](definition.spec, 0)
        for t in range(150):
            action = player.act(step)
            step = engine.step(action)
            frame = step.frame
            if t % 3 == 0:
                frame = rng.integers(0, 256, frame.shape, dtype=np.uint8)
            judgement = referee.judge(action, definition.read_frame(frame))
            assert judgement.values.keys() == step.values.keys()
            if t % 3 == 0:
                assert not judgement.moved_as_ruled and not judgement.npc_as_ruled


def test_pacman_referee_follows_a_game_that_went_astray():
    """A generated game may put Pac-Man elsewhere and carry on from there: after a few
    frames the referee judges from where the screen shows him."""
    engine, referee = PacmanEngine(2), PacmanReferee()
    step = engine.reset()
    referee.start(pacman.read_frame(step.frame))
    agent = pacman.Seeker(pacman.SPEC, 2)
    moved = []
    for t in range(120):
        if t == 40:  # the game puts him on another floor tile, far away, with no event
            engine.pacman = (1, 5)
        action = agent.act(step)
        step = engine.step(action)
        moved.append(referee.judge(action, pacman.read_frame(step.frame)).moved_as_ruled)
    assert referee.pacman == engine.pacman
    assert not all(moved[40:45]) and all(moved[50:])
