"""Pac-Man's rules (DESIGN.md and games/pacman/), its maze files and its frame reader."""

import copy
import dataclasses

import numpy as np
import pytest

from maag.errors import MaagError
from maag.games import pacman
from maag.games.common import RandomAgent
from maag.games.pacman import (
    EMPTY,
    GHOST,
    PACMAN,
    PELLET,
    POWER,
    SPEC,
    TILE,
    VIEW_COLS,
    VIEW_ROWS,
    WALL,
    PacmanEngine,
    load_maze,
    read_frame,
)

NOOP, UP, DOWN, LEFT, RIGHT = (
    SPEC.actions.index(a) for a in ("noop", "up", "down", "left", "right")
)


def corridor(cells: str) -> str:
    """A one-row maze: `cells` between walls."""
    wall = "#" * (len(cells) + 2)
    return f"{wall}\n#{cells}#\n{wall}\n"


def expected_reading(game: PacmanEngine):
    """What the reader must see, from the engine's own state."""
    cc, cr = game.camera_tile()
    maze = game.maze
    tiles = np.full((VIEW_ROWS, VIEW_COLS), WALL)
    for vr in range(VIEW_ROWS):
        for vc in range(VIEW_COLS):
            c, r = cc + vc, cr + vr
            if r < maze.rows and c < maze.cols and not maze.walls[r, c]:
                tiles[vr, vc] = game.items[r, c]
    sprites = {}
    for i, (c, r) in enumerate(game.ghosts):
        kind = "frightened" if game.frightened[i] else f"ghost_{i}"
        sprites[(c - cc, r - cr)] = kind
    player = (game.pacman[0] - cc, game.pacman[1] - cr)
    sprites[player] = "pacman"
    ghosts = []
    for (vc, vr), kind in sorted(sprites.items(), key=lambda s: (s[0][1], s[0][0])):
        if 0 <= vc < VIEW_COLS and 0 <= vr < VIEW_ROWS:
            tiles[vr, vc] = PACMAN if kind == "pacman" else GHOST
            if kind != "pacman":
                ghosts.append((kind, (vc, vr)))
    return player, tuple(map(tuple, tiles.tolist())), tuple(ghosts)


def assert_reads_exactly(game, step):
    reading = read_frame(step.frame)
    player, tiles, ghosts = expected_reading(game)
    assert reading.readable
    assert reading.values == step.values
    assert reading.player == player
    assert reading.tiles == tiles
    assert reading.ghosts == ghosts


def play(game, actions):
    return [game.step(a) for a in actions]


def test_walls_block_and_noop_stays():
    game = PacmanEngine(seed=0)
    step = game.reset()
    start = game.pacman
    assert game.maze.walls[start[1] - 1, start[0]]  # the classic start has a wall above
    step = game.step(UP)
    assert step.events == ("blocked",) and game.pacman == start
    assert step.values == SPEC.initial_values()
    step = game.step(NOOP)
    assert step.events == () and game.pacman == start
    step = game.step(LEFT)
    assert game.pacman == (start[0] - 1, start[1]) and step.events == ("pellet",)


def test_each_pellet_scores_once():
    game = PacmanEngine(maze=corridor("P....." + " " * 15 + "." + " " * 15 + "GG"))
    game.reset()
    scores = [s.values["score"] for s in play(game, [RIGHT] * 5 + [LEFT] * 5 + [RIGHT] * 5)]
    assert scores == [10, 20, 30, 40, 50] + [50] * 10
    assert game.items[1, 2:7].tolist() == [EMPTY] * 5


def test_power_pellet_frightens_and_a_frightened_ghost_is_worth_200():
    game = PacmanEngine(seed=4, maze=corridor("Po" + "." * 10 + "GG"))
    game.reset()
    game.step(NOOP)  # the power pellet at an even step: the fright's own count, not t's
    ghosts = list(game.ghosts)
    step = game.step(RIGHT)
    assert step.events == ("power_pellet",) and step.values["score"] == 50
    assert game.frightened == [True, True]
    assert {kind for kind, _ in read_frame(step.frame).ghosts} == {"frightened"}
    assert game.ghosts == ghosts  # frightened ghosts keep still at the power pellet's step
    for _ in range(12):
        ghosts, score = list(game.ghosts), step.values["score"]
        step = game.step(RIGHT)
        if "ghost_eaten" in step.events:
            break
        # counted from the power pellet's step (fright FRIGHT_STEPS then, one less after each)
        assert (game.ghosts == ghosts) == (game.fright % 2 != pacman.FRIGHT_STEPS % 2)
    else:
        pytest.fail("no ghost eaten")
    eaten_count = step.events.count("ghost_eaten")  # both ghosts may share the tile
    assert set(step.events) <= {"pellet", "ghost_eaten"} and eaten_count in (1, 2)
    assert step.values["score"] - score == 200 * eaten_count + 10 * ("pellet" in step.events)
    eaten = [i for i in range(2) if not game.frightened[i]]
    assert eaten and all(game.ghosts[i] == game.maze.ghosts[i] for i in eaten)
    assert "death" not in step.events


def test_fright_wears_off():
    game = PacmanEngine(seed=0, maze=corridor("Po" + " " * 60 + ".GG"))
    game.reset()
    game.step(RIGHT)
    for _ in range(pacman.FRIGHT_STEPS - 1):
        assert game.frightened == [True, True]
        game.step(NOOP)
    assert game.frightened == [False, False]


def test_touching_a_ghost_costs_a_life_and_resets_positions():
    game = PacmanEngine(maze=corridor("P...GG"))
    game.reset()
    step = game.step(RIGHT)  # to col 2; the chaser steps to col 4
    assert step.events == ("pellet",)
    step = game.step(RIGHT)  # to col 3, the chaser steps onto him
    assert step.events == ("pellet", "death")
    assert step.values == {"score": 20, "lives": 2}
    assert game.pacman == game.maze.pacman and game.ghosts == list(game.maze.ghosts)
    assert game.items[1, 2] == game.items[1, 3] == EMPTY  # eaten pellets stay eaten
    # walking into a ghost (a swap of tiles) kills too
    game = PacmanEngine(maze=corridor("PG.G"))
    game.reset()
    assert game.step(RIGHT).events == ("death",)
    # and so does a ghost walking onto Pac-Man standing still
    game = PacmanEngine(maze=corridor("PG.G"))
    game.reset()
    assert game.step(NOOP).events == ("death",)


def test_losing_the_last_life_starts_a_new_game():
    game = PacmanEngine(maze=corridor("P...GG"))
    game.reset()
    history = play(game, [RIGHT, RIGHT] * 3)
    assert [s.events for s in history] == [
        ("pellet",),
        ("pellet", "death"),
        (),
        ("death",),
        (),
        ("death", "new_game"),
    ]
    assert [s.values["lives"] for s in history] == [3, 2, 2, 1, 1, 3]
    assert history[-1].values == {"score": 0, "lives": 3}
    assert np.array_equal(game.items, game.maze.items)  # all pellets back
    assert read_frame(history[-1].frame).values == {"score": 0, "lives": 3}


def test_clearing_the_pellets_refills_them():
    game = PacmanEngine(maze=corridor("P.." + " " * 30 + "GG"))
    game.reset()
    steps = play(game, [RIGHT, RIGHT])
    assert steps[-1].events == ("pellet", "level_cleared")
    assert steps[-1].values == {"score": 20, "lives": 3}
    assert np.array_equal(game.items, game.maze.items)
    assert read_frame(steps[-1].frame).tiles[1][2] == PELLET  # the refilled pellet is drawn
    assert [s.events for s in play(game, [LEFT, LEFT, RIGHT, RIGHT])] == [
        ("pellet",),  # eaten again
        (),
        (),
        ("pellet", "level_cleared"),  # also the one that came back under Pac-Man
    ]


def test_camera_follows_pacman_and_stays_in_the_maze():
    game = PacmanEngine(seed=2)
    step = game.reset()
    agent = pacman.Seeker(SPEC, 2)
    cameras = set()
    for _ in range(1500):
        step = game.step(agent.act(step))
        x, y = step.camera
        assert x % TILE == 0 and y % TILE == 0
        assert 0 <= x <= (game.maze.cols - VIEW_COLS) * TILE
        assert 0 <= y <= (game.maze.rows - VIEW_ROWS) * TILE
        c, r = game.pacman
        if VIEW_COLS // 2 <= c <= game.maze.cols - VIEW_COLS // 2:
            assert c - x // TILE == VIEW_COLS // 2
        if VIEW_ROWS // 2 <= r <= game.maze.rows - VIEW_ROWS // 2:
            assert r - y // TILE == VIEW_ROWS // 2
        cameras.add(step.camera)
    assert len(cameras) > 50


def test_seeker_explores_the_whole_maze():
    game = PacmanEngine(seed=7)
    step = game.reset()
    agent = pacman.Seeker(SPEC, 7)
    visited = set()
    events = {}
    for _ in range(3000):
        step = game.step(agent.act(step))
        visited.add(game.pacman)
        for e in step.events:
            events[e] = events.get(e, 0) + 1
    floor = int((~game.maze.walls).sum())
    assert len(visited) >= 0.9 * floor
    assert events.get("pellet", 0) > 600 and events.get("level_cleared", 0) >= 1


def test_seeker_plays_a_small_custom_maze():
    text = "\n".join(
        ["#########", "#P..o..G#", "#.##.##.#", "#...G...#", "#########"]
    )  # smaller than the view: padded with wall
    game = PacmanEngine(seed=1, maze=text)
    step = game.reset()
    agent = pacman.Seeker(SPEC, 1)
    visited = set()
    for _ in range(400):
        step = game.step(agent.act(step))
        visited.add(game.pacman)
        assert step.camera == (0, 0)
        assert_reads_exactly(game, step)
    assert len(visited) == int((~game.maze.walls).sum())


def test_seeker_plays_from_the_view_alone_when_a_step_tells_no_camera():
    # a generative model without a record (the baseline) tells no camera
    game = PacmanEngine(seed=7)
    step = game.reset()
    agent = pacman.Seeker(SPEC, 7)
    pellets = 0
    for _ in range(300):
        step = game.step(agent.act(dataclasses.replace(step, camera=None)))
        pellets += step.events.count("pellet")
    assert pellets > 50  # it still goes for the pellets it sees


def run(seed, agent_seed, steps, agent="seeker"):
    game = PacmanEngine(seed=seed)
    step = game.reset()
    player = pacman.Seeker(SPEC, agent_seed) if agent == "seeker" else RandomAgent(SPEC, agent_seed)
    out = [step]
    for _ in range(steps):
        step = game.step(player.act(step))
        out.append(step)
    return out


def test_determinism():
    for agent in ("seeker", "random"):
        a, b = run(3, 3, 400, agent), run(3, 3, 400, agent)
        assert all(
            np.array_equal(x.frame, y.frame) and x.values == y.values and x.events == y.events
            for x, y in zip(a, b, strict=True)
        )
    # other engine seed, same actions: the random ghost walks otherwise
    actions = [int(a) for a in np.random.default_rng(0).integers(5, size=300)]
    frames = []
    for seed in (1, 2):
        game = PacmanEngine(seed=seed)
        game.reset()
        frames.append([s.frame for s in play(game, actions)])
    assert any(not np.array_equal(x, y) for x, y in zip(*frames, strict=True))


def test_reset_reseeds_or_continues():
    game = PacmanEngine(seed=5)
    game.reset()
    first = [s.frame for s in play(game, [LEFT] * 40)]
    game.reset(seed=5)
    again = [s.frame for s in play(game, [LEFT] * 40)]
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert game.reset().values == SPEC.initial_values()


def test_reader_is_exact_on_engine_frames():
    game = PacmanEngine(seed=11)
    step = game.reset()
    seeker, rand = pacman.Seeker(SPEC, 11), RandomAgent(SPEC, 11)
    kinds = set()
    for i in range(2000):
        step = game.step((seeker if i % 400 < 300 else rand).act(step))
        assert_reads_exactly(game, step)
        kinds.update(k for k, _ in read_frame(step.frame).ghosts)
    assert kinds == {"ghost_0", "ghost_1", "frightened"}


def test_reader_refuses_garbage():
    rng = np.random.default_rng(0)
    for _ in range(20):
        noise = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        reading = read_frame(noise)
        assert not reading.readable and reading.values is None and reading.player is None
    frame = PacmanEngine(seed=0).reset().frame.copy()
    assert read_frame(frame).readable
    frame[30, 30] = (120, 120, 120)  # one stray pixel
    reading = read_frame(frame)
    assert not reading.readable and reading.tiles[(30 - 8) // 4][30 // 4] is None
    assert reading.ghosts is None and reading.player is None
    no_player = PacmanEngine(seed=0).reset().frame.copy()
    c, r = read_frame(no_player).player
    no_player[8 + r * 4 : 12 + r * 4, c * 4 : c * 4 + 4] = 0  # Pac-Man painted over
    assert read_frame(no_player).player is None
    with pytest.raises(MaagError):
        read_frame(np.zeros((64, 32, 3), dtype=np.uint8))


def test_classic_maze():
    maze = pacman.classic_maze()
    assert (maze.cols, maze.rows) == (28, 31)
    assert (maze.items == POWER).sum() == 4 and (maze.items == PELLET).sum() > 200


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("#####\n#P.G#\n#G.#\n#####", "rectangular"),
        ("#####\n#P.GG\n#####", "border"),
        ("#####\n#P.x#\n#GG.#\n#####", "unknown character"),
        ("#####\n#..G#\n#G..#\n#####", "exactly one 'P'"),
        ("#####\n#P.G#\n#...#\n#####", "exactly two 'G'"),
        ("#####\n#P G#\n#G  #\n#####", "no pellet"),
        ("######\n#P.#G#\n#G.###\n######", "cannot be reached"),
        ("##\n##", "at least 3"),
    ],
)
def test_bad_mazes_are_refused_in_one_line(text, message):
    with pytest.raises(MaagError, match=message) as info:
        load_maze(text + "\n")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "path", sorted(pacman.CLASSIC_MAZE.parent.glob("*.txt")), ids=lambda path: path.stem
)
def test_shipped_mazes_load_and_read(path):
    game = PacmanEngine(seed=0, maze=path)
    reading = read_frame(game.reset().frame)
    assert reading.readable and reading.values == {"score": 0, "lives": 3}
    assert (game.maze.items != EMPTY).sum() > 100  # a maze to play, not a corridor


def test_maze_files(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text(corridor("P.o GG"))
    game = PacmanEngine(maze=path)
    assert game.maze.cols == 8 and game.maze.rows == 3
    assert PacmanEngine(maze=str(path)).maze.cols == 8
    with pytest.raises(MaagError, match="cannot read"):
        load_maze(tmp_path / "missing.txt")


def test_actions_are_checked():
    game = PacmanEngine()
    with pytest.raises(MaagError, match="reset"):
        game.step(NOOP)
    game.reset()
    for bad in (5, -1, 1.0, True):
        with pytest.raises(MaagError):
            game.step(bad)


class Draws:
    """An engine rng that hands out `draws` in order (one integer per ghost per step)."""

    def __init__(self, draws):
        self.draws = list(draws)

    def integers(self, n: int) -> int:
        draw = self.draws.pop(0)
        assert 0 <= draw < n
        return draw


def test_the_wandering_ghost_takes_the_way_its_chance_draw_names():
    # ghost 1 (the second 'G') at a crossing, no way behind it yet: up, left, down, right
    maze = "#########\n####.####\n#G..G...#\n####.####\n####P####\n#########\n"
    taken = []
    for k in range(pacman.WAYS_DRAW):
        game = PacmanEngine(maze=maze)
        assert game.reset().chance == ()
        game.rng = Draws([k, k])
        assert game.step(NOOP).chance == (k, k)
        taken.append(game.ghosts[1])
    # the draws split evenly over the four ways, in DIRS order
    assert taken == [(4, 1)] * 3 + [(3, 2)] * 3 + [(4, 3)] * 3 + [(5, 2)] * 3


def test_a_step_holds_no_randomness_but_its_chance_draws():
    game = PacmanEngine(seed=3)
    game.reset()
    actions = [int(a) for a in np.random.default_rng(1).integers(5, size=300)]
    steps = play(game, actions)
    assert all(len(s.chance) == 2 and max(s.chance) < pacman.WAYS_DRAW for s in steps)
    assert len({s.chance for s in steps}) > 50
    # another engine seed told the same draws plays the same episode
    replay = PacmanEngine(seed=99)
    replay.reset()
    for action, step in zip(actions, steps, strict=True):
        replay.rng = Draws(step.chance)
        again = replay.step(action)
        assert np.array_equal(again.frame, step.frame) and again.events == step.events


def test_alternative_flips_a_frightened_ghost_eaten_or_kept_from_pacman():
    """Wherever a frightened ghost is within a move of Pac-Man, `alternative` is the step
    with its eating flipped (200 points more or less), Pac-Man, lives and pellets as the
    rules put them, the ghost not passed through Pac-Man; the engine itself does not move."""
    game = PacmanEngine(seed=0)
    agent = pacman.Seeker(SPEC, 0)
    step, flips = game.reset(0), {}
    for _ in range(1500):
        action = agent.act(step)
        before, twin = game.pacman, copy.deepcopy(game)
        other = game.alternative(action)
        step = game.step(action)
        assert np.array_equal(step.frame, twin.step(action).frame)
        if other is None:
            continue
        eaten, alt_eaten = step.events.count("ghost_eaten"), other.events.count("ghost_eaten")
        flips[eaten, alt_eaten] = flips.get((eaten, alt_eaten), 0) + 1
        assert abs(eaten - alt_eaten) == 1 and "death" not in step.events + other.events
        assert other.values["score"] - step.values["score"] == 200 * (alt_eaten - eaten)
        assert other.values["lives"] == step.values["lives"] and other.chance == step.chance
        true, alt = read_frame(step.frame), read_frame(other.frame)
        assert alt.readable and alt.player == true.player
        if alt_eaten < eaten:  # the ghost kept from Pac-Man: not on his tile, nor his last
            ghost_tiles = {tile for _, tile in alt.ghosts}
            assert true.player not in ghost_tiles
            cc, cr = game.camera_tile()
            assert (before[0] - cc, before[1] - cr) not in ghost_tiles or before == game.pacman
    assert flips.get((1, 0), 0) >= 3 and flips.get((0, 1), 0) >= 1, flips


def test_a_step_told_its_draws_is_the_step_those_draws_give():
    engine = PacmanEngine(seed=3)
    engine.reset()
    for _ in range(40):
        engine.step(4)
    twin = copy.deepcopy(engine)
    seeded = engine.step(1)
    told = twin.step(1, seeded.chance)
    assert told.chance == seeded.chance and told.events == seeded.events
    assert np.array_equal(told.frame, seeded.frame) and twin.ghosts == engine.ghosts
    for bad in ((12, 0), (0,), (-1, 3)):
        with pytest.raises(MaagError, match="is not a draw of"):
            copy.deepcopy(engine).step(0, bad)
