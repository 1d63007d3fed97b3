"""Pac-Man: eat the pellets of a maze larger than the screen while two ghosts hunt you.

A maze is text (games/mazes/classic.txt, 28x31 tiles of 4 px): '#' wall, '.' pellet,
'o' power pellet, ' ' empty floor, 'P' Pac-Man's start, 'G' a ghost's start (two of them);
the border is closed (no side tunnels). Frame 64x64: an 8-row HUD band with the score
(left) and the lives (right); under it a view of 16x14 tiles that follows Pac-Man, keeping
him at view tile (8, 7) where the maze allows and clamped at its border (a maze smaller than
the view is padded with wall). Step.camera is the world pixel of the view's top-left,
Step.player that of Pac-Man's tile and Step.bounds the (padded) maze's: the camera follows
him as SPEC.follow declares, and death (and so a new game) puts him back at his start.

One step, in this order (the events come out in the same order):
1. Pac-Man moves one tile the chosen way; a wall stops him ("blocked"), noop keeps him.
   He eats what lies on his tile: "pellet" (+10) or "power_pellet" (+50, both ghosts
   frightened for FRIGHT_STEPS steps). Eating the last pellet: "level_cleared" and every
   pellet comes back (also the one under him: he eats it if he stays or comes back).
2. A ghost on his tile: frightened, it is eaten ("ghost_eaten", +200, back to its start,
   no longer frightened, and it waits there this step); otherwise he dies. Then, unless he
   died, the ghosts move and the same check runs again (a swap of tiles is caught by the
   first check).
3. "death" costs a life; Pac-Man and the ghosts go back to their starts, fright ends,
   the pellets stay as they are. When that was the last life, "new_game" follows in the
   same step: score 0, lives 3, all pellets back. So the HUD never shows 0 lives.
Ghost 0 (red) chases: at a junction it takes the way closest (straight line) to Pac-Man.
Ghost 1 (pink) picks a random way. Neither reverses unless at a dead end. Frightened
ghosts (cyan) move only on even steps and pick a random way. A random way is the step's
chance draw for that ghost (SPEC.chance: one per ghost, 0..WAYS_DRAW-1, drawn every step
whether used or not): of the n ways open to it, in DIRS order, way draw * n // WAYS_DRAW.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Hashable
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
    GameDefinition,
    GameSpec,
    Judgement,
    Reading,
    Step,
    ValueSpec,
)

from .common import COLOUR_TOLERANCE, Engine, RandomAgent, classify_pixels, hud_band, read_hud

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
        EventSpec("level_cleared"),  # the pellets come back; nobody moves
        EventSpec(  # the last life lost: the rules start a new game in the same step
            "new_game",
            (Effect("score", "set", 0), Effect("lives", "set", 3)),
            to_start=True,
            when=("lives", 0),
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
CLASSIC_MAZE = Path(__file__).parent / "mazes" / "classic.txt"
CUSTOM_EXAMPLE = Path(__file__).parent / "mazes" / "custom_example.txt"  # for custom_map

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
        died = self._collide(events)
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

    def _collide(self, events: list[str]) -> bool:
        """Ghosts on Pac-Man's tile: frightened ones are eaten; True when another one is."""
        died = False
        for i, pos in enumerate(self.ghosts):
            if pos == self.pacman:
                if self.frightened[i]:
                    events.append("ghost_eaten")
                    self.ghosts[i] = self.maze.ghosts[i]
                    self.ghost_dirs[i] = NO_DIR
                    self.frightened[i] = False
                    self._eaten[i] = True
                else:
                    died = True
        return died

    def _move_ghosts(self) -> None:
        pc, pr = self.pacman
        for i, pos in enumerate(self.ghosts):
            frightened = self.frightened[i]
            if (frightened and self.t % 2) or self._eaten[i]:
                continue
            ways = self._ways[pos]
            back = (self.ghost_dirs[i] + 2) % 4 if self.ghost_dirs[i] != NO_DIR else NO_DIR
            choices = [w for w in ways if w[0] != back] or ways
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


# -- the seeker -------------------------------------------------------------------------

# What the seeker knows of a world tile.
_UNSEEN, _K_WALL, _K_EMPTY, _K_FOOD, _K_STALE = range(5)  # STALE: floor, pellets refilled since
_KEEP = 255  # a sprite hides the tile: keep what was known
_SAMPLE_PALETTE = np.array(
    [FLOOR_COLOUR, WALL_COLOUR, PELLET_COLOUR, PACMAN_COLOUR, *GHOST_COLOURS, FRIGHTENED_COLOUR],
    dtype=np.uint8,
)
_SAMPLE_KNOWLEDGE = np.array(  # by palette index; the last one also serves label -1 (no fit)
    [_K_EMPTY, _K_WALL, _K_FOOD, _K_EMPTY, _KEEP, _KEEP, _KEEP, _KEEP], dtype=np.uint8
)
_S_PACMAN, _S_GHOST_0, _S_FRIGHTENED = 3, 4, 6


class Seeker:
    """Eats the nearest pellet it knows of or goes to see what it has not seen yet, now and
    then a random one of the nearest few; steps away from a ghost two tiles off, goes for a
    frightened ghost three tiles off; a random action 3% of the time.

    It acts only on what each Step shows: the colour at pixel (1, 1) of each view tile
    (floor, wall, pellet, Pac-Man, ghost), the camera, and the events (after "level_cleared"
    or "new_game" it knows the pellets are back). From that it builds its own map of the
    world, so it plays custom mazes too (up to GRID tiles a side). A Step without a camera
    (a generative model with no record) leaves it only the view: it then plans in that.
    It follows a planned path and plans again (breadth-first) only when the path ends or
    things went otherwise.
    """

    GRID = 256
    STRAY_RATE = 0.03  # chance per step (no ghost near) to press a random key instead

    def __init__(self, spec: GameSpec, seed: int):
        self.rng = np.random.default_rng(seed)
        self._buf = bytearray(self.GRID * self.GRID)
        self.known = np.frombuffer(self._buf, dtype=np.uint8).reshape(self.GRID, self.GRID)
        self.path: list[int] = []  # flat tile ids still to walk, the next one last
        self.expected = -1  # where the last action should have taken us
        self._steps = {  # flat id offset -> action
            -self.GRID: SPEC.actions.index("up"),
            -1: SPEC.actions.index("left"),
            self.GRID: SPEC.actions.index("down"),
            1: SPEC.actions.index("right"),
        }

    def act(self, step: Step) -> int:
        grid = self.GRID
        if "level_cleared" in step.events or "new_game" in step.events:
            self.known[self.known == _K_EMPTY] = _K_STALE
        sample = step.frame[SPEC.hud_height + 1 :: TILE, 1::TILE]
        labels = classify_pixels(sample, _SAMPLE_PALETTE)
        if step.camera is None:  # a model without a record: plan within this view alone
            self.known.fill(_UNSEEN)
            self.path = []
            cc = cr = grid // 2
        else:
            cc, cr = step.camera[0] // TILE, step.camera[1] // TILE
        window = self.known[cr : cr + VIEW_ROWS, cc : cc + VIEW_COLS]
        seen = _SAMPLE_KNOWLEDGE[labels]
        np.copyto(window, seen, where=(labels >= 0) & (seen != _KEEP))
        pac = np.argwhere(labels == _S_PACMAN)
        if len(pac) != 1:
            self.path = []
            return int(self.rng.integers(len(SPEC.actions)))
        pr, pc = int(pac[0][0]), int(pac[0][1])
        here = (cr + pr) * grid + cc + pc
        self._buf[here] = _K_EMPTY
        ghosts = np.argwhere(labels >= _S_GHOST_0)
        threats, prey = [], []
        for r, c in ghosts:
            gr, gc = int(r), int(c)
            if window[gr, gc] == _UNSEEN:
                window[gr, gc] = _K_STALE
            dist = abs(gr - pr) + abs(gc - pc)
            if labels[gr, gc] == _S_FRIGHTENED:
                if dist <= 3:
                    prey.append((cr + gr) * grid + cc + gc)
            elif dist <= 2:
                threats.append((cr + gr) * grid + cc + gc)
        if threats:
            return self._move_by(here, threats, away=True)
        if prey:
            return self._move_by(here, prey, away=False)
        if self.rng.random() < self.STRAY_RATE:
            self.path = []
            return int(self.rng.integers(len(SPEC.actions)))
        if (
            here != self.expected
            or not self.path
            or self._buf[self.path[-1]] == _K_WALL
            or self._buf[self.path[0]] in (_K_EMPTY, _K_WALL)  # the goal turned out empty
        ):
            self._plan(here)
            if not self.path:
                return int(self.rng.integers(len(SPEC.actions)))
        nxt = self.path.pop()
        self.expected = nxt
        return self._steps[nxt - here]

    def _plan(self, start: int) -> None:
        """Path (breadth-first over known floor) to the nearest pellet or unseen tile, or
        with probability 0.15 to a random one of the nearest eight."""
        grid, buf = self.GRID, self._buf
        want = 8 if self.rng.random() < 0.15 else 1
        offsets = (-grid, -1, grid, 1)
        k = int(self.rng.integers(4))
        offsets = offsets[k:] + offsets[:k]
        came = {start: start}
        queue = deque([start])
        goals: list[int] = []
        while queue and len(goals) < want:
            cur = queue.popleft()
            for off in offsets:
                nb = cur + off
                if nb in came or buf[nb] == _K_WALL:
                    continue
                came[nb] = cur
                if buf[nb] != _K_EMPTY:
                    goals.append(nb)
                    if len(goals) == want:
                        break
                if buf[nb] != _UNSEEN:
                    queue.append(nb)
        self.path = []
        if not goals:
            return
        node = goals[int(self.rng.integers(len(goals)))]
        while node != start:
            self.path.append(node)
            node = came[node]

    def _move_by(self, here: int, others: list[int], away: bool) -> int:
        """The step (or staying, when fleeing) that puts Pac-Man farthest from / nearest to
        `others` (Manhattan), ties broken at random."""
        grid = self.GRID
        options = [
            (off, act) for off, act in self._steps.items() if self._buf[here + off] != _K_WALL
        ]
        if away:
            options.append((0, SPEC.actions.index("noop")))
        best, picks = None, []
        for off, act in options:
            tile = here + off
            d = min(abs(tile // grid - o // grid) + abs(tile % grid - o % grid) for o in others)
            score = d if away else -d
            if best is None or score > best:
                best, picks = score, [(off, act)]
            elif score == best:
                picks.append((off, act))
        self.path = []
        if not picks:
            return SPEC.actions.index("noop")
        off, act = picks[int(self.rng.integers(len(picks)))]
        self.expected = here + off
        return act


class Stumbler(Seeker):
    """The seeker pressing a random key on 30% of its steps with no ghost near: data, all
    over the maze, for the moves a good player rarely makes (into a wall: "blocked" is 0.3%
    of the seeker's steps, 2% of this one's)."""

    STRAY_RATE = 0.3


# -- the referee ------------------------------------------------------------------------

_SCENE_CODES = (EMPTY, WALL, PELLET, POWER)  # what a world tile can hold (sprites aside)
_REGIONS = {
    (vc, vr): (
        slice(SPEC.hud_height + vr * TILE, SPEC.hud_height + (vr + 1) * TILE),
        slice(vc * TILE, (vc + 1) * TILE),
    )
    for vr in range(VIEW_ROWS)
    for vc in range(VIEW_COLS)
}
# A ghost as the referee believes it: (world tile, None when out of view (it cannot reach
# Pac-Man this step) or _LOST when the frame failed to show it where the rules put it (it
# may be anywhere); direction of its last move, NO_DIR when not known; frightened).
_LOST = "lost"
_Ghost = tuple[tuple[int, int] | str | None, int, bool]
_Ghosts = tuple[_Ghost, _Ghost]


def _shown_codes(reading: PacmanReading) -> np.ndarray:
    """The reading's tile codes as int8 (VIEW_ROWS, VIEW_COLS), -1 where illegible."""
    return np.array([[-1 if v is None else v for v in row] for row in reading.tiles], np.int8)


class PacmanReferee:
    """Pac-Man's rules followed on screen, from frame readings and actions only.

    Pac-Man's world tile follows the actions; a move is "blocked" where the maze on screen
    showed a wall (walls never change, so a tile's first legible sighting counts). The
    camera follows him by the rule (view tile (8, 7), clamped at the border of the maze the
    game was reset with: `maze`, the classic one by default, also gives the start tiles and
    which tiles a level's pellets lie on). What he steps on is what the screen last showed
    there: a pellet is +10, a power pellet +50 and frightens the ghosts; the last of the
    maze's pellets is "level_cleared" and all come back.

    Ghosts walk at random, so the referee reads them: it keeps the few ghost states that
    explain the screen so far (a ghost out of view is not tracked) and plays the engine's
    collision rules on each with every way each ghost could go (one tile, not reversing,
    frightened ones on even steps only). The outcome whose drawing of Pac-Man, the ghosts
    and the walls at its camera fits the frame best wins; among outcomes the frame cannot
    tell apart, the one the HUD shows, else the fewest events. A ghost at his tile is eaten
    (+200) when frightened, else it is a "death" (-1 life, everyone back to the start), and
    the last life lost is a "new_game". When no outcome fits, the ghosts are taken where
    the frame shows them; when several frames running show Pac-Man elsewhere than the
    rules put him, he is taken where they show him (a generated game that drifted).

    `moved_as_ruled`: Pac-Man stands on screen where his world tile and the camera put him,
    and the walls on screen line up with the walls seen before at that camera at least as
    well as at any camera one tile off (or one tile off the last one).

    `visible`: every world tile in view -> what it shows (EMPTY, WALL, PELLET, POWER; None
    when illegible), `regions` its 4x4 pixels; tiles under a sprite are `hidden`.
    `may_change`: a pellet may be gone if Pac-Man stood there since it was last seen, and
    an eaten tile may show its pellet again after a refill ("level_cleared", "new_game")
    since then; walls never change.
    """

    MAX_HYPOTHESES = 16
    ASTRAY_STEPS = 3  # frames running that show Pac-Man elsewhere before he is taken there

    def __init__(self, maze: Maze | str | Path | None = None):
        if maze is None:
            maze = classic_maze()
        elif not isinstance(maze, Maze):
            maze = load_maze(maze)
        self.maze = maze
        rows, cols = max(maze.rows, VIEW_ROWS), max(maze.cols, VIEW_COLS)
        # world grids with a margin of one tile all round (index [row + 1, col + 1])
        self._layout = np.full((rows + 2, cols + 2), WALL, np.int8)  # as the maze was reset
        self._layout[1 : maze.rows + 1, 1 : maze.cols + 1] = np.where(maze.walls, WALL, maze.items)
        self._max_cam = (max(maze.cols - VIEW_COLS, 0), max(maze.rows - VIEW_ROWS, 0))
        self._pellet_tiles = frozenset((int(c), int(r)) for r, c in np.argwhere(maze.items))
        self._first = np.full_like(self._layout, -1)  # first legible sighting
        self._known = np.full_like(self._layout, -1)  # last sighting, or what he ate there
        self._seen_at = np.full(self._layout.shape, -1, np.int32)  # step last in view
        self._entered = np.full(self._layout.shape, -1, np.int32)  # step he last stood there
        self._refills: list[int] = []
        self._eaten: set[tuple[int, int]] = set()  # pellet tiles eaten this level
        self.t = 0
        self.values = SPEC.initial_values()
        self.pacman = maze.pacman
        self.fright = 0
        self.camera = self._camera(self.pacman)
        self.ghosts: list[_Ghosts] = []
        self._astray = 0

    # -- protocol ----------------------------------------------------------------------

    def start(self, reading: PacmanReading) -> Judgement:
        starts = self._starts()
        self.ghosts = [tuple(self._in_view(g, self.camera) for g in starts)]
        moved = reading.player == self._on_screen(self.pacman, self.camera)
        return self._judgement((), moved, reading)

    def judge(self, action: int, reading: PacmanReading) -> Judgement:
        self.t += 1
        events: list[str] = []
        tile = self.pacman
        move = ACTION_MOVES[action]
        if move is not None:
            dc, dr = DIRS[move]
            ahead = (tile[0] + dc, tile[1] + dr)
            if self._sighting(self._first, ahead) == WALL:
                events.append("blocked")
            else:
                tile = ahead
        self._entered[tile[1] + 1, tile[0] + 1] = self.t
        power = self._eat(tile, events)
        fright = FRIGHT_STEPS if power else self.fright
        tail, died, ghosts, fits = self._collisions(tile, power, fright, reading, events)
        events += tail
        previous = self.camera
        if died:
            self.pacman, self.fright = self.maze.pacman, 0
        else:
            self.pacman, self.fright = tile, max(fright - 1, 0)
        self.camera = self._camera(self.pacman)
        self.values, fired = SPEC.resolve(self.values, events)
        if "new_game" in fired:
            self._refill()
        self.ghosts = ghosts if fits else [self._ghosts_shown(reading, ghosts[0])]
        moved = reading.player == self._on_screen(self.pacman, self.camera) and self._lines_up(
            reading, previous
        )
        self._follow_the_screen(reading)
        return self._judgement(fired, moved, reading)

    def may_change(self, place: Hashable, before: object, after: object) -> bool:
        c, r = place
        vc, vr = c - self.camera[0], r - self.camera[1]
        if not (0 <= vc < VIEW_COLS and 0 <= vr < VIEW_ROWS):
            return False
        last_seen = int(self._prior_seen[vr, vc])
        if WALL in (before, after):
            return False
        if before in (PELLET, POWER) and after == EMPTY:
            return int(self._entered[r + 1, c + 1]) > last_seen
        if before == EMPTY and after in (PELLET, POWER):
            refilled = any(step > last_seen for step in self._refills)
            return refilled and after == self._sighting(self._first, place)
        return False

    # -- the rules ---------------------------------------------------------------------

    def _camera(self, tile: tuple[int, int]) -> tuple[int, int]:
        return (
            min(max(tile[0] - VIEW_PACMAN[0], 0), self._max_cam[0]),
            min(max(tile[1] - VIEW_PACMAN[1], 0), self._max_cam[1]),
        )

    @staticmethod
    def _on_screen(tile: tuple[int, int], camera: tuple[int, int]) -> tuple[int, int]:
        return tile[0] - camera[0], tile[1] - camera[1]

    @staticmethod
    def _visible(tile: tuple[int, int] | None, camera: tuple[int, int]) -> bool:
        return (
            isinstance(tile, tuple)
            and 0 <= tile[0] - camera[0] < VIEW_COLS
            and 0 <= tile[1] - camera[1] < VIEW_ROWS
        )

    def _in_view(self, ghost: _Ghost, camera: tuple[int, int]) -> _Ghost:
        """The ghost as known after a frame: out of view, its tile is no longer known."""
        if ghost[0] == _LOST or self._visible(ghost[0], camera):
            return ghost
        return (None, NO_DIR, ghost[2])

    def _starts(self) -> _Ghosts:
        return tuple((start, NO_DIR, False) for start in self.maze.ghosts)

    def _sighting(self, grid: np.ndarray, tile: tuple[int, int]) -> int:
        """What `grid` holds for a world tile, else the maze's layout (walls outside it)."""
        c, r = tile[0] + 1, tile[1] + 1
        if not (0 <= r < grid.shape[0] and 0 <= c < grid.shape[1]):
            return WALL
        value = int(grid[r, c])
        return value if value >= 0 else int(self._layout[r, c])

    def _eat(self, tile: tuple[int, int], events: list[str]) -> bool:
        """Pac-Man eats what the screen last showed on his tile; True for a power pellet."""
        item = self._sighting(self._known, tile)
        if item not in (PELLET, POWER):
            return False
        self._known[tile[1] + 1, tile[0] + 1] = EMPTY
        events.append("pellet" if item == PELLET else "power_pellet")
        if tile in self._pellet_tiles:
            self._eaten.add(tile)
            if len(self._eaten) == len(self._pellet_tiles):
                events.append("level_cleared")
                self._refill()
        return item == POWER

    def _refill(self) -> None:
        """Every pellet back where it was first seen (or where the maze has it)."""
        seen = self._known >= 0
        layout = np.where(self._first >= 0, self._first, self._layout)
        self._known[seen] = layout[seen]
        self._eaten.clear()
        self._refills.append(self.t)

    def _ways(self, tile: tuple[int, int]) -> list[tuple[int, tuple[int, int]]]:
        c, r = tile
        return [
            (d, (c + dc, r + dr))
            for d, (dc, dr) in enumerate(DIRS)
            if self._sighting(self._first, (c + dc, r + dr)) != WALL
        ]

    def _collisions(
        self,
        tile: tuple[int, int],
        power: bool,
        fright: int,
        reading: PacmanReading,
        events: list[str],
    ) -> tuple[list[str], bool, list[_Ghosts], bool]:
        """The ghost events, whether he died, the ghost states that explain the frame
        best, and whether they explain it without a flaw. Where outcomes the frame cannot
        tell apart differ in their events (a frightened ghost eaten in the same move as
        another one kills him: all are back at the start either way), the one whose values
        the HUD shows is taken, as a person would glance at the score; else the fewest."""
        codes = _shown_codes(reading)
        shown = {}
        if reading.player is not None:
            shown = {place: kind for kind, place in reading.ghosts}
            shown[reading.player] = "pacman"
        alive_camera, dead_camera = self._camera(tile), self._camera(self.maze.pacman)
        previous = self.camera
        entries = [
            (c + alive_camera[0], r + alive_camera[1])
            for (c, r), kind in shown.items()
            if kind != "pacman"
        ]
        walls = {camera: self._walls_off(codes, camera) for camera in (alive_camera, dead_camera)}
        outcomes = {}
        for ghosts in self.ghosts:
            for tail, died, after in self._play(ghosts, tile, power, fright, previous, entries):
                camera = dead_camera if died else alive_camera
                after = tuple(self._in_view(g, camera) for g in after)
                key = (tuple(tail), died, after)
                if key not in outcomes:
                    pac = self.maze.pacman if died else tile
                    outcomes[key] = self._misfit(after, pac, camera, shown) + walls[camera]
        best = min(outcomes.values())

        def preference(key) -> tuple:
            tail, died = list(key[0]), key[1]
            values, _ = SPEC.resolve(self.values, events + tail + ["death"] * died)
            return (values != reading.values, len(tail) + died, key[0], died)

        chosen = min((key for key, misfit in outcomes.items() if misfit == best), key=preference)
        tail, died = list(chosen[0]), chosen[1]
        ghosts = [
            key[2] for key, misfit in outcomes.items() if misfit == best and key[:2] == chosen[:2]
        ]
        if died:
            tail.append("death")
        return tail, died, ghosts[: self.MAX_HYPOTHESES], best == 0

    def _play(self, ghosts, tile, power, fright, previous, entries):
        """Every way the step can go for one belief about the ghosts: (ghost events, died,
        ghosts after), as the engine plays it."""
        state = [(pos, d, fr or power) for pos, d, fr in ghosts]
        tail: list[str] = []
        waiting = [False, False]
        died = self._collide(state, tile, tail, waiting)
        if died:
            yield tail, True, self._starts()
            return
        options = [
            self._moves(state[i], waiting[i], tile, previous, entries) for i in range(len(state))
        ]
        for moved in itertools.product(*options):
            after = list(moved)
            more = list(tail)
            died = self._collide(after, tile, more, [False, False])
            if died:
                yield more, True, self._starts()
                continue
            if fright > 0 and fright - 1 == 0:
                after = [(pos, d, False) for pos, d, _ in after]
            yield more, False, tuple(after)

    def _collide(self, state, tile, tail, waiting) -> bool:
        died = False
        for i, (pos, _, fr) in enumerate(state):
            if pos == tile:
                if fr:
                    tail.append("ghost_eaten")
                    state[i] = (self.maze.ghosts[i], NO_DIR, False)
                    waiting[i] = True
                else:
                    died = True
        return died

    def _moves(self, ghost, waiting, pacman, previous, entries) -> list[_Ghost]:
        pos, d, fr = ghost
        if waiting:
            return [ghost]
        if pos == _LOST:  # stays lost, shows up at a ghost the frame shows, or meets him
            return [ghost, (pacman, NO_DIR, fr)] + [(tile, NO_DIR, fr) for tile in entries]
        if pos is None:  # out of view: it stays out, or steps in at a ghost the frame shows
            return [ghost] + [
                (tile, NO_DIR, fr) for tile in entries if self._may_enter(tile, previous)
            ]
        if fr and self.t % 2:
            return [ghost]
        ways = self._ways(pos)
        back = (d + 2) % 4 if d != NO_DIR else NO_DIR
        choices = [w for w in ways if w[0] != back] or ways
        if not choices:  # walled in: only a frame at odds with the maze puts it there
            return [ghost]
        return [(nxt, way, fr) for way, nxt in choices]

    def _may_enter(self, tile: tuple[int, int], previous: tuple[int, int]) -> bool:
        """Whether a ghost out of the last view can stand on `tile` now."""
        c, r = tile
        return any(
            not self._visible(place, previous)
            for place in ((c, r), (c - 1, r), (c + 1, r), (c, r - 1), (c, r + 1))
        )

    def _misfit(self, ghosts: _Ghosts, pacman, camera, shown: dict) -> int:
        """How many view tiles the outcome draws otherwise than the frame shows them."""
        if not shown:
            return 0
        drawn = {}
        for i, (pos, _, fr) in enumerate(ghosts):
            if isinstance(pos, tuple):
                drawn[self._on_screen(pos, camera)] = "frightened" if fr else f"ghost_{i}"
        drawn[self._on_screen(pacman, camera)] = "pacman"
        return sum(drawn.get(place) != shown.get(place) for place in drawn.keys() | shown.keys())

    def _ghosts_shown(self, reading: PacmanReading, rules: _Ghosts) -> _Ghosts:
        """The ghosts where the frame shows them (frightened as the rules say); a ghost it
        does not show is lost: it may be anywhere, hidden or out of view."""
        ghosts: list[_Ghost] = [(_LOST, NO_DIR, fr) for _, _, fr in rules]
        if reading.ghosts is None:
            return tuple(ghosts)
        cc, cr = self.camera
        for kind, (c, r) in reading.ghosts:
            for i, (pos, _, fr) in enumerate(ghosts):
                if pos == _LOST and kind == ("frightened" if fr else f"ghost_{i}"):
                    ghosts[i] = ((c + cc, r + cr), NO_DIR, fr)
                    break
        return tuple(ghosts)

    # -- what the frame shows ----------------------------------------------------------

    def _follow_the_screen(self, reading: PacmanReading) -> None:
        """When ASTRAY_STEPS frames running show Pac-Man on another world tile than the
        rules put him on (his place in view at the camera whose walls fit the frame best),
        he is taken to be where they show him: a generated game that drifted is judged
        from where it went, not failed for the rest of the episode. Never on engine frames.
        """
        if reading.player is None:
            return
        camera = self._fitting_camera(_shown_codes(reading))
        shown = (camera[0] + reading.player[0], camera[1] + reading.player[1])
        self._astray = 0 if shown == self.pacman else self._astray + 1
        if self._astray >= self.ASTRAY_STEPS:
            self._astray = 0
            self.pacman, self.camera = shown, camera
            self.ghosts = [self._ghosts_shown(reading, self.ghosts[0])]

    def _fitting_camera(self, codes: np.ndarray) -> tuple[int, int]:
        """The camera (the rules' one unless another fits strictly better) whose walls, as
        seen or as the maze has them, agree best with the walls the frame shows."""
        walls = np.where(self._first >= 0, self._first, self._layout)[1:-1, 1:-1] == WALL
        legible, shown = codes >= 0, codes == WALL
        windows = np.lib.stride_tricks.sliding_window_view(walls, (VIEW_ROWS, VIEW_COLS))
        windows = windows[: self._max_cam[1] + 1, : self._max_cam[0] + 1]
        off = ((windows != shown) & legible).sum(axis=(2, 3))
        cc, cr = self.camera
        if off[cr, cc] == off.min():
            return self.camera
        cr, cc = np.unravel_index(int(off.argmin()), off.shape)
        return int(cc), int(cr)

    def _walls_off(self, codes: np.ndarray, camera: tuple[int, int]) -> int:
        """How many tiles in view show a wall where none was seen at `camera`, or none
        where one was."""
        cc, cr = camera[0] + 1, camera[1] + 1
        seen = self._first[cr : cr + VIEW_ROWS, cc : cc + VIEW_COLS]
        compared = (codes >= 0) & (seen >= 0)
        return int(((seen == WALL) != (codes == WALL))[compared].sum())

    def _lines_up(self, reading: PacmanReading, previous: tuple[int, int]) -> bool:
        """The walls in view match those seen before at the camera at least as well as at
        any camera a tile off it or off the last one."""
        codes = _shown_codes(reading)
        legible, wall = codes >= 0, codes == WALL

        def agreement(camera: tuple[int, int]) -> float | None:
            cc, cr = camera[0] + 1, camera[1] + 1
            rows, cols = self._first.shape
            if cc < 0 or cr < 0 or cc + VIEW_COLS > cols or cr + VIEW_ROWS > rows:
                return None
            seen = self._first[cr : cr + VIEW_ROWS, cc : cc + VIEW_COLS]
            compared = legible & (seen >= 0)
            if not compared.any():
                return None
            return float(((seen == WALL) == wall)[compared].mean())

        here = agreement(self.camera)
        if here is None:
            return True  # nothing seen before to line up with
        offsets = [(dc, dr) for dc in (-1, 0, 1) for dr in (-1, 0, 1)]
        others = [
            (base[0] + dc, base[1] + dr) for base in (self.camera, previous) for dc, dr in offsets
        ]
        scores = [a for a in map(agreement, others) if a is not None]
        return here >= max(scores)

    def _judgement(self, events: tuple[str, ...], moved: bool, reading) -> Judgement:
        cc, cr = self.camera
        codes = _shown_codes(reading)
        window = (slice(cr + 1, cr + 1 + VIEW_ROWS), slice(cc + 1, cc + 1 + VIEW_COLS))
        scene = np.isin(codes, _SCENE_CODES)
        self._known[window][scene] = codes[scene]
        first = self._first[window]
        np.copyto(first, codes, where=scene & (first < 0))
        self._prior_seen = self._seen_at[window].copy()
        self._seen_at[window][~np.isin(codes, (PACMAN, GHOST))] = self.t
        visible, regions, hidden = {}, {}, set()
        for (vc, vr), region in _REGIONS.items():
            place = (cc + vc, cr + vr)
            code = reading.tiles[vr][vc]
            if code in (PACMAN, GHOST):
                hidden.add(place)
            else:
                visible[place] = code
                regions[place] = region
        return Judgement(
            events=events,
            values=dict(self.values),
            moved_as_ruled=bool(moved),
            visible=visible,
            regions=regions,
            hidden=frozenset(hidden),
        )


# -- for the spatial module ------------------------------------------------------------

_SPRITE_COLOURS = np.array([PACMAN_COLOUR, *GHOST_COLOURS, FRIGHTENED_COLOUR], dtype=np.uint8)


def sprite_mask(frame: np.ndarray) -> np.ndarray:
    """Whole view tiles with any pixel of a sprite's colour (Pac-Man, a ghost): they move,
    the spatial map must not keep them. Works on generated frames too."""
    hud = SPEC.hud_height
    mask = np.zeros(frame.shape[:2], dtype=bool)
    near = classify_pixels(frame[hud:], _SPRITE_COLOURS) >= 0
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


GAME = GameDefinition(
    spec=SPEC,
    engine=PacmanEngine,
    read_frame=read_frame,
    agents={"seeker": Seeker, "stumbler": Stumbler, "random": RandomAgent},
    referee=PacmanReferee,
    sprite_mask=sprite_mask,
    custom_map=custom_map,
    engine_in_map=engine_in_maze,
)
