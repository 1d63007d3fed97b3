"""The numerical module's exact parts: the external record and the digit tokens.

No network does arithmetic: LogicNet only says which events happened; the record applies
their effects from the GameSpec, clamped to each value's range; the values go back to the
generator as digit tokens, one per displayed digit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch

from maag.errors import MaagError
from maag.spec import GameSpec


class DigitTokenizer:
    """Values (and, with `events`, the step's event counts) <-> condition tokens; one
    embedding id per (slot, symbol).

    Id 0 is the null token (the module switched off); a value with D digits takes D slots,
    zero-padded as the HUD draws it. With `events`, each of the spec's events takes one
    more slot after the digits: how often it fired this step (0 .. max_count). The values
    alone, over a blanked HUD, do not tell the generator whether a value just changed (a
    point scored: draw the serve; no point: draw the return); the counts do.
    """

    NULL = 0

    def __init__(self, spec: GameSpec, events: bool = False, max_count: int = 2):
        self.spec = spec
        self.slots: list[tuple[str, int]] = [
            (v.name, p) for v in spec.values for p in range(v.digits)
        ]
        self.event_names = spec.event_names if events else ()
        self.max_count = max_count
        self._first_event_id = 1 + 10 * len(self.slots)  # digit ids stay where they were
        self.vocab_size = self._first_event_id + (max_count + 1) * len(self.event_names)

    @property
    def num_tokens(self) -> int:
        return len(self.slots) + len(self.event_names)

    def encode(self, values: Mapping[str, int], counts: Sequence[int] = ()) -> list[int]:
        """Token ids of `values` (checked against the spec's names and ranges) and, with
        event slots, of each event's count this step (spec order; above max_count counts
        as max_count)."""
        self.spec.check_values(values)
        if len(counts) != len(self.event_names):
            raise MaagError(f"{len(self.event_names)} event counts expected, got {len(counts)}")
        ids = []
        for slot, (name, position) in enumerate(self.slots):
            digits = str(values[name]).zfill(self.spec.value(name).digits)
            ids.append(1 + 10 * slot + int(digits[position]))
        return ids + [self._event_id(k, min(c, self.max_count)) for k, c in enumerate(counts)]

    def decode(self, ids: Iterable[int]) -> dict[str, int]:
        """The values a token sequence stands for (inverse of encode; event slots ignored)."""
        digits: dict[str, str] = {v.name: "" for v in self.spec.values}
        for slot, token in enumerate(list(ids)[: len(self.slots)]):
            if not 1 + 10 * slot <= token < 11 + 10 * slot:
                raise MaagError(f"token {token} cannot stand in slot {slot}")
            digits[self.slots[slot][0]] += str(token - 1 - 10 * slot)
        return {name: int(d) for name, d in digits.items()}

    def null(self) -> list[int]:
        return [self.NULL] * self.num_tokens

    def batch(
        self, values: torch.Tensor, keep: torch.Tensor, events: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Ids (B, num_tokens) of a value array (B, V) in spec order and, with event slots,
        of the event counts (B, E); null where not `keep`."""
        ids = torch.empty(values.shape[0], self.num_tokens, dtype=torch.long)
        slot = 0
        for i, v in enumerate(self.spec.values):
            for position in range(v.digits):
                digit = values[:, i] // 10 ** (v.digits - 1 - position) % 10
                ids[:, slot] = 1 + 10 * slot + digit
                slot += 1
        if self.event_names:
            if events is None:
                raise MaagError("this tokenizer's event slots need the event counts")
            for k in range(len(self.event_names)):
                ids[:, slot + k] = self._event_id(k, events[:, k].clamp(max=self.max_count))
        return torch.where(keep[:, None], ids, torch.full_like(ids, self.NULL))

    def _event_id(self, event: int, count):
        return self._first_event_id + (self.max_count + 1) * event + count


def blank_hud(frames: torch.Tensor, rows: torch.Tensor, hud_height: int) -> torch.Tensor:
    """`frames` (B, ..., H, W) with the HUD band left unknown (0) where `rows` (B,) is True.

    Applied to the base and to every context frame whenever the record's digit tokens are
    given: the generator then draws the HUD from the tokens alone and cannot copy (and so
    carry forward) a mistake it drew in an earlier frame.
    """
    frames = frames.clone()
    frames[rows.to(frames.device), ..., :hud_height, :] = 0.0
    return frames


class Record:
    """The game's values, changed only by events' spec effects, always within range, and
    the camera: moved by the actions (GameSpec.moves) unless a "blocked" event stops it,
    or, where the camera follows the player (GameSpec.follow), the player's position
    moved the same way (and sent back to its start by "to_start" events) minus the
    view anchor, clamped to the world's bounds. The camera is None where the spec has
    neither, or where a following camera was given no player and bounds to start from."""

    def __init__(
        self,
        spec: GameSpec,
        values: Mapping[str, int] | None = None,
        camera: tuple[int, int] | None = None,
        player: tuple[int, int] | None = None,
        bounds: tuple[int, int, int, int] | None = None,
        home: tuple[int, int] | None = None,
    ):
        self.spec = spec
        self.values = dict(spec.initial_values() if values is None else values)
        spec.check_values(self.values)
        self.player = self.home = self.bounds = None
        if spec.follow is None:
            self.camera = camera if spec.moves else None
            return
        if player is None or bounds is None:
            self.camera = None
            return
        self.player = _pair(player, "player")
        self.home = self.player if home is None else _pair(home, "home")
        self.bounds = tuple(int(b) for b in bounds)
        left, top, right, bottom = self.bounds
        if right <= left or bottom <= top:
            raise MaagError(f"world bounds {self.bounds} are empty (left, top, right, bottom)")
        self.camera = spec.follow.camera(self.player, self.bounds, spec.view_size)
        if camera is not None and tuple(camera) != self.camera:
            raise MaagError(
                f"camera {tuple(camera)} is not where {spec.name}'s camera follows a player at "
                f"{self.player} in a world of bounds {self.bounds}: {self.camera}"
            )

    def apply(self, events: Iterable[str], action: int | None = None) -> tuple[str, ...]:
        """Apply `events` in order (and `action`'s move), then any event the rules fire on
        their own (`EventSpec.when`); returns the step's events, those included."""
        self.values, events = self.spec.resolve(self.values, events)
        if self.camera is None:
            return events
        if self.player is not None:
            if action is not None and "blocked" not in events:
                dx, dy = self.spec.follow.moves[action]
                self.player = (self.player[0] + dx, self.player[1] + dy)
            if any(self.spec.event(name).to_start for name in events):
                self.player = self.home
            self.camera = self.spec.follow.camera(self.player, self.bounds, self.spec.view_size)
        elif action is not None and "blocked" not in events:
            (dx, dy), (sx, sy) = self.spec.moves[action], self.spec.scroll
            self.camera = (self.camera[0] + dx * sx, self.camera[1] + dy * sy)
        return events


def _pair(point: Iterable[int], what: str) -> tuple[int, int]:
    pair = tuple(int(c) for c in point)
    if len(pair) != 2:
        raise MaagError(f"{what} must be a world pixel (x, y), got {pair}")
    return pair
