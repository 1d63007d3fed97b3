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
ghosts (cyan) keep still at the power pellet's step, then move every other step (counted
from that step, which the frames show, not from the game's start, which they do not), and
pick a random way. A random way is the step's
chance draw for that ghost (SPEC.chance: one per ghost, 0..WAYS_DRAW-1, drawn every step
whether used or not): of the n ways open to it, in DIRS order, way draw * n // WAYS_DRAW.
"""

from __future__ import annotations

from maag.spec import GameDefinition

from ..common import RandomAgent
from .engine import (
    CLASSIC_MAZE,
    CUSTOM_EXAMPLE,
    EMPTY,
    FRIGHT_STEPS,
    GHOST,
    PACMAN,
    PELLET,
    POWER,
    SPEC,
    TILE,
    VIEW_COLS,
    VIEW_ROWS,
    WALL,
    WAYS_DRAW,
    Maze,
    PacmanEngine,
    PacmanReading,
    classic_maze,
    custom_map,
    engine_in_maze,
    load_maze,
    maze_image,
    read_frame,
    sprite_mask,
)
from .referee import PacmanReferee
from .seeker import Seeker, Stumbler

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

__all__ = [
    "CLASSIC_MAZE",
    "CUSTOM_EXAMPLE",
    "EMPTY",
    "FRIGHT_STEPS",
    "GAME",
    "GHOST",
    "PACMAN",
    "PELLET",
    "POWER",
    "SPEC",
    "TILE",
    "VIEW_COLS",
    "VIEW_ROWS",
    "WALL",
    "WAYS_DRAW",
    "Maze",
    "PacmanEngine",
    "PacmanReading",
    "PacmanReferee",
    "Seeker",
    "Stumbler",
    "classic_maze",
    "custom_map",
    "engine_in_maze",
    "load_maze",
    "maze_image",
    "read_frame",
    "sprite_mask",
]
