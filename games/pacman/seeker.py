"""Pac-Man's scripted players: the seeker and the stumbler."""

from __future__ import annotations

from collections import deque

import numpy as np

from maag.spec import GameSpec, Step

from ..common import classify_pixels
from .engine import (
    FLOOR_COLOUR,
    FRIGHTENED_COLOUR,
    GHOST_COLOURS,
    PACMAN_COLOUR,
    PELLET_COLOUR,
    SPEC,
    TILE,
    VIEW_COLS,
    VIEW_ROWS,
    WALL_COLOUR,
)

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
