"""Pac-Man's spec, mazes, engine and frame reader (the rules: the package docstring)."""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from maag.errors import MaagError
from maag.spec import (
    CustomMap,
    Effect,
    EventSpec,
    Follow,
    GameSpec,
    Reading,
    Step,
    ValueSpec,
)

from ..common import COLOUR_TOLERANCE, Engine, hud_band, near_any_colour, read_hud

TILE = 4
VIEW_COLS, VIEW_ROWS = 16, 14
VIEW_PACMAN = (8, 7)  # the view tile (col, row) Pac-Man keeps when the maze allows

SPEC = GameSpec(
    name="pacman",
    frame_height=64,
    frame_width=64,
    hud_height=8,
    actions=("noop", "up", "down", "left", "right"),
    values=(
        ValueSpec("score", low=0, high=99999, initial=0, hud_x=2),
        ValueSpec("lives", low=0, high=3, initial=3, hud_x=59),
    ),
    events=(
        EventSpec("pellet", (Effect("score", "add", 10),)),
        EventSpec("power_pellet", (Effect("score", "add", 50),)),
        EventSpec("ghost_eaten", (Effect("score", "add", 200),)),
        EventSpec("death", (Effect("lives", "add", -1),), to_start=True),
        EventSpec("level_cleared", restores_world=True),  # the pellets come back; nobody moves
        EventSpec(  # the last life lost: the rules start a new game in the same step
            "new_game",
            (Effect("score", "set", 0), Effect("lives", "set", 3)),
            to_start=True,
            when=("lives", 0),
            restores_world=True,
        ),
        EventSpec("blocked"),
    ),
    scroll=(TILE, TILE),
    # Pac-Man moves a tile per action; the view keeps his tile at VIEW_PACMAN, clamped at
    # the maze's border (Step.player: his tile's top-left pixel; Step.bounds: the maze)
    follow=Follow(
        moves=((0, 0), (0, -TILE), (0, TILE), (-TILE, 0), (TILE, 0)),
        anchor=(VIEW_PACMAN[0] * TILE, VIEW_PACMAN[1] * TILE),
    ),
    chance=(12, 12),  # per ghost, the random way it takes (WAYS_DRAW: 1 to 4 ways evenly)
)
WAYS_DRAW = 12
DIRS = ((0, -1), (-1, 0), (0, 1), (1, 0))  # (dcol, drow): up, left, down, right
MOVES = {"noop": None, "up": 0, "left": 1, "down": 2, "right": 3}
ACTION_MOVES = tuple(MOVES[a] for a in SPEC.actions)
NO_DIR = -1

FRIGHT_STEPS = 30
CLASSIC_MAZE = Path(__file__).parent.parent / "mazes" / "classic.txt"
CUSTOM_EXAMPLE = Path(__file__).parent.parent / "mazes" / "custom_example.txt"  # for custom_map

# Tile codes of a reading (and of the maze items, EMPTY / PELLET / POWER).
EMPTY, WALL, PELLET, POWER, PACMAN, GHOST = range(6)
TILE_NAMES = ("empty", "wall", "pellet", "power_pellet", "pacman", "ghost")
GHOST_KINDS = ("ghost_0", "ghost_1", "frightened")

FLOOR_COLOUR = (0, 0, 0)
WALL_COLOUR = (40, 40, 230)
PELLET_COLOUR = (250, 160, 110)
PACMAN_COLOUR = (255, 230, 0)
GHOST_COLOURS = ((230, 0, 0), (255, 120, 230))  # chaser red, wanderer pink
FRIGHTENED_COLOUR = (0, 210, 210)

_SHAPES = {
    "full": ("XXXX", "XXXX", "XXXX", "XXXX"),
    "dot": ("....", ".XX.", ".XX.", "...."),
    "round": (".XX.", "XXXX", "XXXX", ".XX."),
    "ghost": (".XX.", "XXXX", "XXXX", "X..X"),
}


def _tile(shape: str, colour: tuple[int, int, int]) -> np.ndarray:
    mask = np.array([[c == "X" for c in row] for row in _SHAPES[shape]])
    tile = np.empty((TILE, TILE, 3), dtype=np.uint8)
    tile[:] = FLOOR_COLOUR
    tile[mask] = colour
    return tile


# Templates by reading label; the first four are also indexed by item code (EMPTY..POWER).
_TEMPLATES = np.stack(
    [
        _tile("full", FLOOR_COLOUR),  # empty floor
        _tile("full", WALL_COLOUR),
        _tile("dot", PELLET_COLOUR),
        _tile("round", PELLET_COLOUR),  # power pellet
        _tile("round", PACMAN_COLOUR),
        _tile("ghost", GHOST_COLOURS[0]),
        _tile("ghost", GHOST_COLOURS[1]),
        _tile("ghost", FRIGHTENED_COLOUR),
    ]
)
_PACMAN_LABEL, _FIRST_GHOST_LABEL = 4, 5
_LABEL_CODES = np.array([EMPTY, WALL, PELLET, POWER, PACMAN, GHOST, GHOST, GHOST])
_PACMAN_TILE = _TEMPLATES[_PACMAN_LABEL]
_GHOST_TILES = (_TEMPLATES[5], _TEMPLATES[6])
_FRIGHTENED_TILE = _TEMPLATES[7]


@dataclass(frozen=True, eq=False)
class Maze:
    """A validated maze: walls, the items a level starts with, and the start tiles."""

    walls: np.ndarray  # bool (rows, cols)
    items: np.ndarray  # int8 (rows, cols): EMPTY, PELLET or POWER
    pacman: tuple[int, int]  # (col, row)
    ghosts: tuple[tuple[int, int], tuple[int, int]]

    @property
    def rows(self) -> int:
        return self.walls.shape[0]

    @property
    def cols(self) -> int:
        return self.walls.shape[1]


_MAZE_CHARS = "#.o PG"


def load_maze(source: str | Path) -> Maze:
    """A maze from a file path or from maze text (anything with a newline in it is text).

    Raises MaagError with one line naming the first problem: not rectangular, an unknown
    character, an open border, not exactly one 'P' and two 'G', no pellet, or floor that
    cannot be reached from 'P'.
    """
    if isinstance(source, Path) or "\n" not in source:
        where = f"maze {source}"
        try:
            text = Path(source).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise MaagError(f"cannot read {where}: {exc}") from None
    else:
        where, text = "maze text", source
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < 3 or len(lines[0]) < 3:
        raise MaagError(f"{where}: needs at least 3 rows of at least 3 characters")
    cols = len(lines[0])
    for r, line in enumerate(lines):
        if len(line) != cols:
            raise MaagError(
                f"{where}: row {r + 1} has {len(line)} characters, row 1 has {cols} "
                "(a maze must be rectangular)"
            )
        for c, ch in enumerate(line):
            if ch not in _MAZE_CHARS:
                raise MaagError(
                    f"{where}: unknown character {ch!r} at row {r + 1}, column {c + 1} "
                    "(use '#', '.', 'o', ' ', 'P', 'G')"
                )
            on_border = r in (0, len(lines) - 1) or c in (0, cols - 1)
            if on_border and ch != "#":
                raise MaagError(
                    f"{where}: the border must be wall, found {ch!r} at row {r + 1}, column {c + 1}"
                )
    grid = np.array([list(line) for line in lines])
    pac = np.argwhere(grid == "P")
    ghosts = np.argwhere(grid == "G")
    if len(pac) != 1:
        raise MaagError(f"{where}: needs exactly one 'P' (Pac-Man's start), found {len(pac)}")
    if len(ghosts) != 2:
        raise MaagError(f"{where}: needs exactly two 'G' (ghost starts), found {len(ghosts)}")
    items = np.zeros(grid.shape, dtype=np.int8)
    items[grid == "."] = PELLET
    items[grid == "o"] = POWER
    if not items.any():
        raise MaagError(f"{where}: has no pellet ('.' or 'o')")
    walls = grid == "#"
    start = (int(pac[0][1]), int(pac[0][0]))
    reached = np.zeros_like(walls)
    reached[start[1], start[0]] = True
    queue = deque([start])
    while queue:
        c, r = queue.popleft()
        for dc, dr in DIRS:
            if not walls[r + dr, c + dc] and not reached[r + dr, c + dc]:
                reached[r + dr, c + dc] = True
                queue.append((c + dc, r + dr))
    lost = np.argwhere(~walls & ~reached)
    if len(lost):
        r, c = lost[0]
        raise MaagError(
            f"{where}: floor at row {r + 1}, column {c + 1} cannot be reached from 'P' "
            f"({len(lost)} such tiles; all floor must be connected)"
        )
    walls.flags.writeable = False
    items.flags.writeable = False
    return Maze(
        walls=walls,
        items=items,
        pacman=start,
        ghosts=tuple((int(c), int(r)) for r, c in ghosts),
    )


@lru_cache(maxsize=1)
def classic_maze() -> Maze:
    """The classic 28x31 layout shipped in games/mazes/classic.txt."""
    return load_maze(CLASSIC_MAZE)


def frightened_keep_still(fright: int) -> bool:
    """Whether frightened ghosts keep still at a step of fright count `fright` (FRIGHT_STEPS
    at the power pellet's step, one less at each step after): still at that step, then at
    every other one, so the frames tell when they move (the game's clock would not)."""
    return fright % 2 == FRIGHT_STEPS % 2


class PacmanEngine(Engine):
    """The ground-truth Pac-Man. `maze`: a Maze, a maze file path or maze text."""

    spec = SPEC

    def __init__(self, seed: int = 0, maze: Maze | str | Path | None = None):
        super().__init__(seed)
        if maze is None:
            maze = classic_maze()
        elif not isinstance(maze, Maze):
            maze = load_maze(maze)
        self.maze = maze
        walls = maze.walls
        # the ways out of every floor tile: ((direction, (col, row)), ...)
        self._ways = {
            (c, r): tuple(
                (d, (c + dc, r + dr))
                for d, (dc, dr) in enumerate(DIRS)
                if not walls[r + dr, c + dc]
            )
            for r, c in np.argwhere(~walls).tolist()
        }
        self._max_cam = (max(maze.cols - VIEW_COLS, 0), max(maze.rows - VIEW_ROWS, 0))
        padded = np.full((max(maze.rows, VIEW_ROWS), max(maze.cols, VIEW_COLS)), WALL)
        padded[: maze.rows, : maze.cols] = np.where(walls, WALL, EMPTY)
        self._padded_codes = padded
        self._forced: tuple[int, tuple[int, int]] | None = None  # see _alternative

    # -- protocol ---------------------------------------------------------------------

    def _start(self) -> Step:
        self.t = 0
        self._new_level()
        self._reset_positions()
        return self._observe(())

    def _advance(self, action: int) -> Step:
        move = ACTION_MOVES[action]
        self.t += 1
        events: list[str] = []
        if move is not None:
            dc, dr = DIRS[move]
            c, r = self.pacman
            if self.maze.walls[r + dr, c + dc]:
                events.append("blocked")
            else:
                self.pacman = (c + dc, r + dr)
        self._eat(events)
        self._eaten = [False, False]
        escaping = None  # a forced ghost that leaves Pac-Man's tile before he reaches it
        if self._forced is not None and self._forced[1] != self.pacman:
            escaping = self._forced[0]
        died = self._collide(events, escaping)
        if not died:
            self._move_ghosts()
            died = self._collide(events)
        if self.fright > 0:
            self.fright -= 1
            if self.fright == 0:
                self.frightened = [False, False]
        if died:
            events.append("death")
            self._reset_positions()
        self.values, fired = SPEC.resolve(self.values, events)
        if "new_game" in fired:
            self._new_level()
        return self._observe(fired)

    # -- rules ------------------------------------------------------------------------

    def _new_level(self) -> None:
        """Every pellet back in place (the world image redrawn)."""
        self.items = self.maze.items.copy()
        self.pellets_left = int(np.count_nonzero(self.items))
        codes = self._padded_codes.copy()
        maze_codes = codes[: self.maze.rows, : self.maze.cols]
        np.copyto(maze_codes, self.items, where=self.items != EMPTY)
        rows, cols = codes.shape
        self._world = np.ascontiguousarray(
            _TEMPLATES[codes].transpose(0, 2, 1, 3, 4).reshape(rows * TILE, cols * TILE, 3)
        )

    def _reset_positions(self) -> None:
        self.pacman = self.maze.pacman
        self.ghosts = list(self.maze.ghosts)
        self.ghost_dirs = [NO_DIR, NO_DIR]
        self.frightened = [False, False]
        self.fright = 0

    def _eat(self, events: list[str]) -> None:
        c, r = self.pacman
        item = self.items[r, c]
        if item == EMPTY:
            return
        self.items[r, c] = EMPTY
        self.pellets_left -= 1
        self._world[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = _TEMPLATES[EMPTY]
        if item == PELLET:
            events.append("pellet")
        else:
            events.append("power_pellet")
            self.frightened = [True, True]
            self.fright = FRIGHT_STEPS
        if self.pellets_left == 0:
            events.append("level_cleared")
            self._new_level()

    def _alternative(self, action: int) -> Step | None:
        """With a frightened ghost within a move of Pac-Man: the step where it comes out
        eaten though the rules keep it from him, or kept from him though the rules have it
        eaten (it keeps still or takes a way its rules let it take, whatever its draw and
        the step's turn to keep still say), Pac-Man and the rest as the rules put them.
        None where no such ghost is, and where the step has a death either way."""
        c, r = self.pacman
        move = ACTION_MOVES[action]
        reached = (c + DIRS[move][0], r + DIRS[move][1]) if move is not None else (c, r)
        power = not self.maze.walls[reached[::-1]] and self.items[reached[::-1]] == POWER
        if not (any(self.frightened) or power):
            return None  # no ghost that can be eaten this step
        truth = copy.deepcopy(self)
        true_step = truth.step(action)
        if "death" in true_step.events:
            return None
        for i, pos in enumerate(self.ghosts):
            near = truth.pacman == pos or truth.pacman in (way[1] for way in self._ways[pos])
            if not (near or truth._eaten[i]):
                continue
            for end in (pos, *(tile for _, tile in self._choices(i))):
                if end == self.pacman != truth.pacman:  # not through Pac-Man
                    continue
                twin = copy.deepcopy(self)
                twin._forced = (i, end)
                step = twin.step(action)
                if "death" not in step.events and twin._eaten[i] != truth._eaten[i]:
                    return step
        return None

    def _collide(self, events: list[str], escaping: int | None = None) -> bool:
        """Ghosts on Pac-Man's tile: frightened ones are eaten; True when another one is.
        `escaping`: a ghost left out (see _alternative)."""
        died = False
        for i, pos in enumerate(self.ghosts):
            if pos == self.pacman and i != escaping:
                if self.frightened[i]:
                    events.append("ghost_eaten")
                    self.ghosts[i] = self.maze.ghosts[i]
                    self.ghost_dirs[i] = NO_DIR
                    self.frightened[i] = False
                    self._eaten[i] = True
                else:
                    died = True
        return died

    def _choices(self, ghost: int) -> list[tuple[int, tuple[int, int]]]:
        """The ways (direction, tile) a moving ghost may take: any but back, unless it
        has no other."""
        ways = self._ways[self.ghosts[ghost]]
        heading = self.ghost_dirs[ghost]
        back = (heading + 2) % 4 if heading != NO_DIR else NO_DIR
        return [w for w in ways if w[0] != back] or list(ways)

    def _move_ghosts(self) -> None:
        pc, pr = self.pacman
        for i, pos in enumerate(self.ghosts):
            if self._forced is not None and self._forced[0] == i and not self._eaten[i]:
                end = self._forced[1]
                turns = [d for d, tile in self._ways[pos] if tile == end]
                self.ghosts[i], self.ghost_dirs[i] = end, turns[0] if turns else self.ghost_dirs[i]
                continue
            frightened = self.frightened[i]
            if (frightened and frightened_keep_still(self.fright)) or self._eaten[i]:
                continue
            choices = self._choices(i)
            if len(choices) == 1:
                d, nxt = choices[0]
            elif i == 0 and not frightened:  # chase: the way closest to Pac-Man, ties in DIRS order
                d, nxt = min(choices, key=lambda w: (w[1][0] - pc) ** 2 + (w[1][1] - pr) ** 2)
            else:
                d, nxt = choices[self.chance[i] * len(choices) // WAYS_DRAW]
            self.ghosts[i] = nxt
            self.ghost_dirs[i] = d

    # -- drawing ----------------------------------------------------------------------

    def camera_tile(self) -> tuple[int, int]:
        """World tile (col, row) of the view's top-left."""
        c, r = self.pacman
        return (
            min(max(c - VIEW_PACMAN[0], 0), self._max_cam[0]),
            min(max(r - VIEW_PACMAN[1], 0), self._max_cam[1]),
        )

    def _observe(self, events: tuple[str, ...]) -> Step:
        cc, cr = self.camera_tile()
        x0, y0 = cc * TILE, cr * TILE
        hud = SPEC.hud_height
        frame = np.empty((SPEC.frame_height, SPEC.frame_width, 3), dtype=np.uint8)
        frame[:hud] = hud_band(SPEC, self.values)
        frame[hud:] = self._world[y0 : y0 + VIEW_ROWS * TILE, x0 : x0 + VIEW_COLS * TILE]
        for i, (c, r) in enumerate(self.ghosts):  # ghost 1 over ghost 0, Pac-Man over both
            if 0 <= c - cc < VIEW_COLS and 0 <= r - cr < VIEW_ROWS:
                y, x = hud + (r - cr) * TILE, (c - cc) * TILE
                frame[y : y + TILE, x : x + TILE] = (
                    _FRIGHTENED_TILE if self.frightened[i] else _GHOST_TILES[i]
                )
        c, r = self.pacman
        y, x = hud + (r - cr) * TILE, (c - cc) * TILE
        frame[y : y + TILE, x : x + TILE] = _PACMAN_TILE
        height, width = self._world.shape[:2]
        return Step(
            frame, dict(self.values), events, (x0, y0), (c * TILE, r * TILE), (0, 0, width, height)
        )


@dataclass(frozen=True)
class PacmanReading(Reading):
    """HUD values; Pac-Man's view tile (col, row); per view tile (14 rows of 16) its code
    (EMPTY, WALL, PELLET, POWER, PACMAN, GHOST; None where no template fits); the visible
    ghosts as (kind, (col, row)) in reading order, kind one of GHOST_KINDS. A tile a sprite
    covers reads as the sprite; what lies under it cannot be seen."""

    player: tuple[int, int] | None
    tiles: tuple[tuple[int | None, ...], ...]
    ghosts: tuple[tuple[str, tuple[int, int]], ...] | None

    @property
    def readable(self) -> bool:
        return (
            self.values is not None
            and self.player is not None
            and self.ghosts is not None
            and all(None not in row for row in self.tiles)
        )


_TEMPLATE_ROWS = _TEMPLATES.reshape(len(_TEMPLATES), -1).astype(np.int16)


def read_frame(frame: np.ndarray) -> PacmanReading:
    """Read a Pac-Man frame; a tile no template fits (within COLOUR_TOLERANCE on every
    pixel and channel) reads None, and then the player and ghosts read None too."""
    if frame.shape != (SPEC.frame_height, SPEC.frame_width, 3):
        raise MaagError(f"a pacman frame is 64x64x3, got shape {frame.shape}")
    values = read_hud(SPEC, frame)
    view = frame[SPEC.hud_height :].astype(np.int16)
    tiles = view.reshape(VIEW_ROWS, TILE, VIEW_COLS, TILE, 3).transpose(0, 2, 1, 3, 4)
    dist = np.abs(tiles.reshape(VIEW_ROWS * VIEW_COLS, 1, -1) - _TEMPLATE_ROWS).max(axis=2)
    labels = dist.argmin(axis=1)
    fits = dist[np.arange(labels.size), labels] <= COLOUR_TOLERANCE
    codes = np.where(fits, _LABEL_CODES[labels], -1).reshape(VIEW_ROWS, VIEW_COLS)
    grid = tuple(tuple(None if v < 0 else v for v in row) for row in codes.tolist())
    if not fits.all():
        return PacmanReading(values, None, grid, None)
    labels = labels.reshape(VIEW_ROWS, VIEW_COLS)
    pac = np.argwhere(labels == _PACMAN_LABEL)
    player = (int(pac[0][1]), int(pac[0][0])) if len(pac) == 1 else None
    ghosts = tuple(
        (GHOST_KINDS[labels[r, c] - _FIRST_GHOST_LABEL], (int(c), int(r)))
        for r, c in np.argwhere(labels >= _FIRST_GHOST_LABEL)
    )
    return PacmanReading(values, player, grid, ghosts)


# -- for the spatial module ------------------------------------------------------------

_SPRITE_COLOURS = np.array([PACMAN_COLOUR, *GHOST_COLOURS, FRIGHTENED_COLOUR], dtype=np.uint8)


def sprite_mask(frame: np.ndarray) -> np.ndarray:
    """Whole view tiles with any pixel of a sprite's colour (Pac-Man, a ghost): they move,
    the spatial map must not keep them. Works on generated frames too."""
    hud = SPEC.hud_height
    mask = np.zeros(frame.shape[:2], dtype=bool)
    near = near_any_colour(frame[hud:], _SPRITE_COLOURS)
    tiles = near.reshape(VIEW_ROWS, TILE, VIEW_COLS, TILE).any(axis=(1, 3))
    mask[hud:] = tiles.repeat(TILE, axis=0).repeat(TILE, axis=1)
    return mask


def maze_image(maze: Maze) -> np.ndarray:
    """The maze as a level starts, in world pixels (padded with wall to at least the view),
    drawn as the engine draws it: walls, floor, pellets, power pellets; no sprites."""
    rows, cols = max(maze.rows, VIEW_ROWS), max(maze.cols, VIEW_COLS)
    codes = np.full((rows, cols), WALL)
    codes[: maze.rows, : maze.cols] = np.where(maze.walls, WALL, maze.items)
    return np.ascontiguousarray(
        _TEMPLATES[codes].transpose(0, 2, 1, 3, 4).reshape(rows * TILE, cols * TILE, 3)
    )


def custom_map(path: str) -> CustomMap:
    """A user's maze (the text format of games/mazes/classic.txt) for the spatial module to
    start from: the whole maze as a level starts, at the world place the engine draws it
    (its top-left tile at world pixel (0, 0)), and the engine's first step in it (Pac-Man
    on the maze's own start tile, the camera clamped at its own border). A damaged file is
    a MaagError naming the problem."""
    maze = load_maze(Path(path))
    image = maze_image(maze)
    start = PacmanEngine(0, maze=maze).reset()
    return CustomMap(image, (0, 0), np.ones(image.shape[:2], dtype=bool), start)


def engine_in_maze(seed: int, path: str) -> PacmanEngine:
    """The engine playing a user's maze file (a damaged file is a MaagError)."""
    return PacmanEngine(seed, maze=load_maze(Path(path)))
