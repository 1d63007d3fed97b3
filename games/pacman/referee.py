"""Pac-Man's rules followed on screen, from frame readings and actions only."""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from pathlib import Path

import numpy as np

from maag.spec import Judgement

from .engine import (
    ACTION_MOVES,
    DIRS,
    EMPTY,
    FRIGHT_STEPS,
    GHOST,
    NO_DIR,
    PACMAN,
    PELLET,
    POWER,
    SPEC,
    TILE,
    VIEW_COLS,
    VIEW_PACMAN,
    VIEW_ROWS,
    WALL,
    Maze,
    PacmanReading,
    classic_maze,
    frightened_keep_still,
    load_maze,
)

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
    frightened ones when the fright's count lets them). The outcome whose drawing of
    Pac-Man, the ghosts and the walls at its camera fits the frame best wins; among outcomes the
    frame cannot tell apart, the one the HUD shows, else the fewest events. A ghost at his
    tile is eaten (+200) when frightened, else it is a "death" (-1 life, everyone back to
    the start), and the last life lost is a "new_game". When no outcome fits, the ghosts are
    taken where the frame shows them; when several frames running show Pac-Man elsewhere
    than the rules put him, he is taken where they show him (a generated game that drifted).

    `moved_as_ruled`: Pac-Man stands on screen where his world tile and the camera put him,
    and the walls on screen line up with the walls seen before at that camera at least as
    well as at any camera one tile off (or one tile off the last one).

    `npc_as_ruled`: some way of the rules draws the ghosts as the frame shows them (none
    vanished in view, doubled or jumped), and none is lost: a ghost the frame failed to show
    where the rules put it counts against every step until a frame shows it again, and a
    frame whose Pac-Man or ghosts cannot be read counts against its step.

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
        tail, died, ghosts, fits, ghosts_fit = self._collisions(
            tile, power, fright, reading, events
        )
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
        return self._judgement(fired, moved, reading, npc_as_ruled=ghosts_fit)

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
    ) -> tuple[list[str], bool, list[_Ghosts], bool, bool]:
        """The ghost events, whether he died, the ghost states that explain the frame
        best, whether they explain it without a flaw, and whether its ghosts alone do, none
        lost (`npc_as_ruled`). Where outcomes the frame cannot tell apart differ in their
        events (a frightened ghost eaten in the same move as another one kills him: all are
        back at the start either way), the one whose values the HUD shows is taken, as a
        person would glance at the score; else the fewest."""
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
        camera, pac = (dead_camera, self.maze.pacman) if died else (alive_camera, tile)
        ghosts_fit = (
            bool(shown)  # Pac-Man and the ghosts read
            and self._misfit(chosen[2], pac, camera, shown, player=False) == 0
            and all(pos != _LOST for pos, _, _ in chosen[2])
        )
        if died:
            tail.append("death")
        return tail, died, ghosts[: self.MAX_HYPOTHESES], best == 0, ghosts_fit

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
            self._moves(state[i], waiting[i], tile, fright, previous, entries)
            for i in range(len(state))
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

    def _moves(self, ghost, waiting, pacman, fright, previous, entries) -> list[_Ghost]:
        pos, d, fr = ghost
        if waiting:
            return [ghost]
        if pos == _LOST:  # stays lost, shows up at a ghost the frame shows, or meets him
            return [ghost, (pacman, NO_DIR, fr)] + [(tile, NO_DIR, fr) for tile in entries]
        if pos is None:  # out of view: it stays out, or steps in at a ghost the frame shows
            return [ghost] + [
                (tile, NO_DIR, fr) for tile in entries if self._may_enter(tile, previous)
            ]
        if fr and frightened_keep_still(fright):
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

    def _misfit(self, ghosts: _Ghosts, pacman, camera, shown: dict, player: bool = True) -> int:
        """How many view tiles the outcome draws otherwise than the frame shows them (the
        ghosts alone without `player`: where the frame shows Pac-Man, he covers them)."""
        if not shown:
            return 0
        drawn = {}
        for i, (pos, _, fr) in enumerate(ghosts):
            if isinstance(pos, tuple):
                drawn[self._on_screen(pos, camera)] = "frightened" if fr else f"ghost_{i}"
        if player:
            drawn[self._on_screen(pacman, camera)] = "pacman"
        else:
            drawn = {place: kind for place, kind in drawn.items() if shown.get(place) != "pacman"}
            shown = {place: kind for place, kind in shown.items() if kind != "pacman"}
        return sum(drawn.get(place) != shown.get(place) for place in drawn.keys() | shown.keys())

    def _ghosts_shown(self, reading: PacmanReading, rules: _Ghosts) -> _Ghosts:
        """The ghosts where the frame shows them (frightened as the rules say): one the
        rules put where the frame shows its kind stays there; a shown one the rules put
        nowhere in view is one lost, else one out of view stepping in. A ghost the frame
        does not show stays out of view where the rules put it there, else it is lost: it
        may be anywhere, hidden or out of view."""
        kinds = ["frightened" if fr else f"ghost_{i}" for i, (_, _, fr) in enumerate(rules)]
        unshown: list[_Ghost] = [
            (None if pos is None else _LOST, NO_DIR, fr) for pos, _, fr in rules
        ]
        if reading.ghosts is None:
            return tuple(unshown)
        cc, cr = self.camera
        shown = [((c + cc, r + cr), kind) for kind, (c, r) in reading.ghosts]
        ghosts: list[_Ghost | None] = [None] * len(rules)
        for i, ghost in enumerate(rules):
            if (ghost[0], kinds[i]) in shown:
                shown.remove((ghost[0], kinds[i]))
                ghosts[i] = ghost
        for place, kind in shown:
            for was in (_LOST, None):  # a lost ghost before one out of view
                free = [i for i, g in enumerate(ghosts) if g is None and unshown[i][0] == was]
                match = [i for i in free if kinds[i] == kind]
                if match:
                    ghosts[match[0]] = (place, NO_DIR, rules[match[0]][2])
                    break
        return tuple(u if g is None else g for g, u in zip(ghosts, unshown, strict=True))
        cc, cr = self.camera
        for kind, (c, r) in reading.ghosts:
            for i, (pos, _, fr) in enumerate(ghosts):
                if pos in (None, _LOST) and kind == ("frightened" if fr else f"ghost_{i}"):
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

    def _judgement(
        self, events: tuple[str, ...], moved: bool, reading, npc_as_ruled: bool = True
    ) -> Judgement:
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
            npc_as_ruled=npc_as_ruled,
        )
