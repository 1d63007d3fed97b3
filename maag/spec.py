"""The protocol that ground-truth engines and generative games share.

A game's `GameSpec` is plain data (frame geometry, actions, values, events and their
effects); everything downstream is derived from it. `Game` is the gym-like interface:
`reset(seed) -> Step`, `step(action) -> Step`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from maag.errors import MaagError


@dataclass(frozen=True)
class ValueSpec:
    """A number the game holds to be true (score, lives), its range and its HUD place."""

    name: str
    low: int
    high: int
    initial: int
    hud_x: int  # left pixel column of its zero-padded digits in the HUD band

    @property
    def digits(self) -> int:
        """Fixed number of digits the HUD draws (zero-padded)."""
        return len(str(self.high))


@dataclass(frozen=True)
class Effect:
    """What an event does to one value: add `amount`, or set it to `amount`."""

    value: str
    op: Literal["add", "set"]
    amount: int


@dataclass(frozen=True)
class EventSpec:
    """A game event and the value changes it causes (applied in order); `to_start`: it
    puts the player back at its start position (only where the camera follows a player).
    `when` (value, amount): the rules fire it themselves, after the step's other events,
    when those bring that value to that amount (Pac-Man's last life lost starts a new
    game): arithmetic on the values, so the record does it, not LogicNet. `restores_world`:
    the world's changeable content goes back to how the level began (Pac-Man's pellets
    come back), so the spatial map puts every place back to how it first looked."""

    name: str
    effects: tuple[Effect, ...] = ()
    to_start: bool = False
    when: tuple[str, int] | None = None
    restores_world: bool = False


@dataclass(frozen=True)
class Follow:
    """A camera that follows the player through a bounded world (GameSpec.follow).

    The player moves by `moves[action]` world pixels (x, y) a step unless a "blocked"
    event stops it, and goes back to its start position on an event with `to_start`.
    The camera (the world pixel at the view's top-left) is then the player's position
    minus `anchor`, clamped so the view stays within the world's bounds. The bounds are
    not part of the spec (a custom world has others): they come with each start state,
    as `Step.bounds`.
    """

    moves: tuple[tuple[int, int], ...]  # per action, the player's move in world pixels (x, y)
    anchor: tuple[int, int]  # view pixel (x, y), below the HUD, the camera keeps the player at

    def camera(
        self, player: tuple[int, int], bounds: tuple[int, int, int, int], view: tuple[int, int]
    ) -> tuple[int, int]:
        """The camera for a player at world pixel `player` in a world of `bounds` (left,
        top, right, bottom) seen through a view `view` (width, height) pixels large; a
        world smaller than the view keeps the camera at its left or top edge."""
        left, top, right, bottom = bounds
        x = min(max(player[0] - self.anchor[0], left), max(left, right - view[0]))
        y = min(max(player[1] - self.anchor[1], top), max(top, bottom - view[1]))
        return x, y


@dataclass(frozen=True)
class GameSpec:
    """Everything a model, a data shard or a metric needs to know about a game."""

    name: str
    frame_height: int
    frame_width: int
    hud_height: int  # rows at the top of the frame that show values, not the world
    actions: tuple[str, ...]
    values: tuple[ValueSpec, ...]
    events: tuple[EventSpec, ...]
    scroll: tuple[int, int] = (0, 0)  # pixels (x, y) the view moves when the camera moves
    # per action, the camera's move in scroll steps, unless a "blocked" event stops it;
    # empty where the camera does not simply follow the actions
    moves: tuple[tuple[int, int], ...] = ()
    # or a camera that follows the player within the world's bounds (not both)
    follow: Follow | None = None
    # the rules' random draws each step, each uniform over 0..n-1 (Pac-Man's wandering
    # ghosts): the engine reports the ones it drew (Step.chance); a generative game draws
    # its own and tells them to its networks with the action, so a step's outcome is one
    # thing to draw, not a blur of every way it could have gone
    chance: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        where, view = f"game spec {self.name!r}", self.view_size
        if self.moves and len(self.moves) != len(self.actions):
            raise MaagError(
                f"{where}: moves has {len(self.moves)} entries for {len(self.actions)} actions"
            )
        if any(n < 1 for n in self.chance):
            raise MaagError(
                f"{where}: every chance draw needs at least one outcome, got {self.chance}"
            )
        for e in self.events:
            if e.when is not None and e.when[0] not in self.value_names:
                raise MaagError(
                    f"{where}: event {e.name!r} fires when {e.when[0]!r} reaches "
                    f"{e.when[1]}, but there is no value {e.when[0]!r}"
                )
        restarts = [e.name for e in self.events if e.to_start]
        if self.follow is None:
            if restarts:
                raise MaagError(
                    f"{where}: event {restarts[0]!r} puts the player back at its start, "
                    "which needs a camera that follows the player (follow)"
                )
            return
        if self.moves:
            raise MaagError(f"{where}: the camera moves by moves or follows the player, not both")
        if len(self.follow.moves) != len(self.actions):
            raise MaagError(
                f"{where}: follow.moves has {len(self.follow.moves)} entries "
                f"for {len(self.actions)} actions"
            )
        if any(len(m) != 2 for m in self.follow.moves) or len(self.follow.anchor) != 2:
            raise MaagError(f"{where}: follow.moves and follow.anchor are (x, y) pairs")
        ax, ay = self.follow.anchor
        if not (0 <= ax < view[0] and 0 <= ay < view[1]):
            raise MaagError(
                f"{where}: follow.anchor {self.follow.anchor} is outside the "
                f"{view[0]}x{view[1]} view (x 0..{view[0] - 1}, y 0..{view[1] - 1} below the HUD)"
            )

    @property
    def view_size(self) -> tuple[int, int]:
        """(width, height) in pixels of the world the view shows under the HUD."""
        return self.frame_width, self.frame_height - self.hud_height

    @property
    def tile(self) -> tuple[int, int] | None:
        """(width, height) in pixels of the tiles the view is laid out on, where it scrolls
        by whole tiles both ways (Pac-Man's maze); None where it does not."""
        return self.scroll if all(self.scroll) else None

    @property
    def value_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.values)

    @property
    def event_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.events)

    def value(self, name: str) -> ValueSpec:
        for v in self.values:
            if v.name == name:
                return v
        raise MaagError(f"{self.name} has no value named {name!r}")

    def event(self, name: str) -> EventSpec:
        for e in self.events:
            if e.name == name:
                return e
        raise MaagError(f"{self.name} has no event named {name!r}")

    def initial_values(self) -> dict[str, int]:
        return {v.name: v.initial for v in self.values}

    def apply_events(self, values: Mapping[str, int], events: Iterable[str]) -> dict[str, int]:
        """The values after `events`, each effect applied in order and clamped to its range."""
        result = dict(values)
        for name in events:
            for effect in self.event(name).effects:
                v = self.value(effect.value)
                new = result[v.name] + effect.amount if effect.op == "add" else effect.amount
                result[v.name] = min(max(new, v.low), v.high)
        return result

    def resolve(
        self, values: Mapping[str, int], events: Iterable[str]
    ) -> tuple[dict[str, int], tuple[str, ...]]:
        """The values after `events` and the events of the step: `events`, then those that
        fire on their own (`EventSpec.when`) because `events` brought a value to their
        amount, in spec order (each once; theirs do not fire more)."""
        events = tuple(events)
        after = self.apply_events(values, events)
        fired = tuple(
            e.name
            for e in self.events
            if e.when is not None
            and e.name not in events
            and values[e.when[0]] != e.when[1] == after[e.when[0]]
        )
        return self.apply_events(after, fired), events + fired

    def check_values(self, values: Mapping[str, int]) -> None:
        """Raise MaagError unless `values` names exactly this game's values, each in range."""
        if set(values) != set(self.value_names):
            raise MaagError(
                f"{self.name} values must be {list(self.value_names)}, got {sorted(values)}"
            )
        for v in self.values:
            if not v.low <= values[v.name] <= v.high:
                raise MaagError(
                    f"{self.name} value {v.name}={values[v.name]} is outside {v.low}..{v.high}"
                )

    def check_action(self, action: int) -> int:
        """The action as an int, or MaagError naming the valid range."""
        if isinstance(action, bool) or not isinstance(action, (int, np.integer)):
            raise MaagError(f"action must be an int index, got {action!r}")
        if not 0 <= action < len(self.actions):
            raise MaagError(
                f"action {action} out of range for {self.name}: 0..{len(self.actions) - 1} "
                f"({', '.join(self.actions)})"
            )
        return int(action)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GameSpec:
        try:
            return cls(
                name=d["name"],
                frame_height=int(d["frame_height"]),
                frame_width=int(d["frame_width"]),
                hud_height=int(d["hud_height"]),
                actions=tuple(d["actions"]),
                values=tuple(ValueSpec(**v) for v in d["values"]),
                events=tuple(
                    EventSpec(
                        e["name"],
                        tuple(Effect(**f) for f in e["effects"]),
                        bool(e.get("to_start", False)),
                        None if e.get("when") is None else (e["when"][0], int(e["when"][1])),
                        bool(e.get("restores_world", False)),
                    )
                    for e in d["events"]
                ),
                scroll=tuple(d.get("scroll", (0, 0))),
                moves=tuple(tuple(m) for m in d.get("moves", ())),
                follow=None if d.get("follow") is None else _follow_from_dict(d["follow"]),
                chance=tuple(int(n) for n in d.get("chance", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MaagError(f"malformed game spec: {exc}") from None


def _follow_from_dict(d: Mapping[str, Any]) -> Follow:
    return Follow(
        moves=tuple((int(x), int(y)) for x, y in d["moves"]),
        anchor=tuple(int(c) for c in d["anchor"]),
    )


@dataclass(frozen=True)
class Step:
    """What one reset or step shows and holds to be true."""

    frame: np.ndarray  # uint8 (H, W, 3)
    values: dict[str, int]
    events: tuple[str, ...]  # an event may appear more than once (two ghosts eaten at once)
    camera: tuple[int, int]  # world pixel (x, y) shown at frame row hud_height, column 0
    # where the camera follows the player (GameSpec.follow): the player's world pixel and
    # the world's bounds (left, top, right, bottom) in pixels; None elsewhere
    player: tuple[int, int] | None = None
    bounds: tuple[int, int, int, int] | None = None
    chance: tuple[int, ...] = ()  # the random draws (GameSpec.chance) that led to this step


@dataclass(frozen=True)
class CustomMap:
    """A user's world for the spatial module to start from (map customisation)."""

    image: np.ndarray  # (h, w, 3) uint8 world pixels
    origin: tuple[int, int]  # world pixel (x, y) of image[0, 0]
    mask: np.ndarray  # (h, w) bool: the pixels the user painted
    # the world's own first step (frame, camera, player, bounds) where it starts elsewhere
    # than the worlds the model was trained on (a Pac-Man maze); None: the model's own start
    start: Step | None = None


class Game(ABC):
    """A playable game: a ground-truth engine or a generative model."""

    spec: GameSpec

    @abstractmethod
    def reset(self, seed: int | None = None) -> Step:
        """Start a new episode (reseeded when `seed` is given) and return its first step."""

    @abstractmethod
    def step(self, action: int) -> Step:
        """Advance one step with `action`, an index into `spec.actions`."""


class Agent(Protocol):
    """A scripted player: sees each Step (as a person would) and picks the next action."""

    def act(self, step: Step) -> int: ...


@dataclass(frozen=True)
class Reading:
    """What a person reads off a frame. Subclasses add the scene; None means illegible."""

    values: dict[str, int] | None

    @property
    def readable(self) -> bool:
        """True when every part of the frame could be read."""
        return all(getattr(self, name) is not None for name in self.__dataclass_fields__)


@dataclass(frozen=True)
class Judgement:
    """What the game's rules say about one step, from what was read on screen."""

    events: tuple[str, ...]  # the events the rules say happened
    values: dict[str, int]  # the values the rules prescribe so far
    moved_as_ruled: bool  # the player moved (on screen) as the action and the rules say
    visible: dict[Hashable, Any]  # world place -> content read there (None: illegible)
    regions: dict[Hashable, tuple[slice, slice]]  # world place -> its (rows, cols) in the frame
    # world places in view whose content a moving sprite covers: neither read nor compared;
    # a place seen, covered, then seen again without leaving the view is no revisit
    hidden: frozenset = frozenset()
    # whether the screen showed what the rules need to judge the step (Pong: the ball,
    # which never leaves the screen); a step that cannot be followed is no consistent one
    followable: bool = True
    # whether everything else that moves (Pac-Man's ghosts) stands where some way of the
    # rules puts it: none vanished, doubled or jumped; None where the referee does not judge
    # other movers (nothing else moves, or they are judged through `followable`)
    npc_as_ruled: bool | None = None


class Referee(Protocol):
    """Follows an episode by its actions and frame readings, the way a person would."""

    def start(self, reading: Reading) -> Judgement: ...

    def judge(self, action: int, reading: Reading) -> Judgement: ...

    def may_change(self, place: Hashable, before: Any, after: Any) -> bool:
        """Whether the rules let a place's content change between two visits."""
        ...


@dataclass(frozen=True)
class GameDefinition:
    """One ground-truth game: its spec, engine, frame reader, scripted agents, referee."""

    spec: GameSpec
    engine: Callable[[int], Game]  # seed -> engine
    read_frame: Callable[[np.ndarray], Reading]
    agents: Mapping[str, Callable[[GameSpec, int], Agent]] = field(default_factory=dict)
    # the rules followed on screen; where the game has custom maps, referee(map file)
    # follows a game played in that world
    referee: Callable[..., Referee] | None = None
    # frame -> bool (H, W): moving sprites, which the spatial map must not keep
    sprite_mask: Callable[[np.ndarray], np.ndarray] | None = None
    # a user's map file -> the world it describes (MaagError naming what is wrong)
    custom_map: Callable[[str], CustomMap] | None = None
    # a seed and a user's map file -> the engine playing in that world
    engine_in_map: Callable[[int, str], Game] | None = None
    # where the rules read the same with the field below the HUD flipped top to bottom (but
    # for an episode's first step): each action's index in the flipped game (Pong: up and
    # down swap), so training can show mirrored transitions; () where they do not
    mirrored_actions: tuple[int, ...] = ()
