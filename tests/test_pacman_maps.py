"""Pac-Man map customisation: a maze file pre-fills the spatial map exactly as the engine
draws that maze; a damaged file is refused in one clear line."""

import numpy as np
import pytest

from maag.errors import MaagError
from maag.games import get_game, pacman
from maag.games.pacman import CUSTOM_EXAMPLE, TILE, PacmanEngine, load_maze
from maag.spatial import SpatialMap

GAME = get_game("pacman")
SMALL = "#########\n#P..o..G#\n#.##.##.#\n#...G...#\n#########\n"


def test_the_custom_example_is_a_valid_maze_of_its_own():
    maze, classic = load_maze(CUSTOM_EXAMPLE), pacman.classic_maze()
    assert maze.cols > pacman.VIEW_COLS and maze.rows > pacman.VIEW_ROWS  # the camera clamps
    assert (maze.cols, maze.rows) != (classic.cols, classic.rows)
    assert (maze.items == pacman.POWER).sum() >= 2 and (maze.items == pacman.PELLET).sum() > 100


@pytest.mark.parametrize("maze", [str(CUSTOM_EXAMPLE), "small", "classic"])
def test_prefill_is_the_engines_own_drawing_of_the_maze(maze, tmp_path):
    if maze == "small":  # smaller than the view: padded with wall, as the engine shows it
        maze = tmp_path / "small.txt"
        maze.write_text(SMALL)
    elif maze == "classic":
        maze = pacman.CLASSIC_MAZE
    custom = GAME.custom_map(str(maze))
    image, origin, mask = custom.image, custom.origin, custom.mask
    assert image.dtype == np.uint8 and image.ndim == 3 and mask.all() and origin == (0, 0)
    spatial = SpatialMap()
    spatial.prefill(image, origin, mask)
    engine = PacmanEngine(3, maze=maze)
    step = engine.reset()
    assert np.array_equal(custom.start.frame, step.frame)  # the maze's own start
    assert (custom.start.camera, custom.start.player) == (step.camera, step.player)
    assert custom.start.bounds == step.bounds
    agent = pacman.Seeker(pacman.SPEC, 3)
    hud, size = pacman.SPEC.hud_height, (pacman.VIEW_ROWS * TILE, pacman.VIEW_COLS * TILE)
    compared = 0
    for _ in range(250):
        canvas, known, _ = spatial.retrieve(step.camera, size)
        assert known.all()
        tiles = np.array(pacman.read_frame(step.frame).tiles)
        cc, cr = step.camera[0] // TILE, step.camera[1] // TILE
        for r, c in np.argwhere((tiles != pacman.PACMAN) & (tiles != pacman.GHOST)):
            wr, wc = cr + r, cc + c
            inside = wr < engine.maze.rows and wc < engine.maze.cols
            if inside and engine.items[wr, wc] != engine.maze.items[wr, wc]:
                continue  # eaten since the level began
            rows, cols = slice(r * TILE, (r + 1) * TILE), slice(c * TILE, (c + 1) * TILE)
            assert np.array_equal(canvas[rows, cols], step.frame[hud:][rows, cols])
            compared += 1
        step = engine.step(agent.act(step))
    assert compared > 250 * 150


@pytest.mark.parametrize(
    "text, message",
    [
        ("#####\n#P.G#\n#G.#\n#####\n", "rectangular"),
        ("#####\n#P.x#\n#GG.#\n#####\n", "unknown character"),
        ("#####\n#P.GG\n#####\n", "border"),
    ],
)
def test_a_damaged_maze_file_is_refused(text, message, tmp_path):
    path = tmp_path / "broken.txt"
    path.write_text(text)
    with pytest.raises(MaagError, match=message) as info:
        GAME.custom_map(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(MaagError, match="cannot read"):
        GAME.custom_map(str(tmp_path / "missing.txt"))
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(MaagError, match="cannot read"):
        GAME.custom_map(str(tmp_path / "image.png"))
