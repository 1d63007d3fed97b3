"""The numerical module's exact parts: the external record and the digit tokens.

No network does arithmetic: LogicNet only says which events happened; the record applies
their effects from the GameSpec, clamped to each value's range; the values go back to the
generator as digit tokens, one per displayed digit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from maag.errors import MaagError
from maag.spec import GameSpec


class DigitTokenizer:
    """Values <-> fixed-width digit tokens; one embedding id per (value, position, digit).

    Id 0 is the null token (the module switched off); a value with D digits takes D slots,
    zero-padded as the HUD draws it.
    """

    NULL = 0

    def __init__(self, spec: GameSpec):
        self.spec = spec
        self.slots: list[tuple[str, int]] = [
            (v.name, p) for v in spec.values for p in range(v.digits)
        ]
        self.vocab_size = 1 + 10 * len(self.slots)

    @property
    def num_tokens(self) -> int:
        return len(self.slots)

    def encode(self, values: Mapping[str, int]) -> list[int]:
        """Token ids of `values` (checked against the spec's names and ranges)."""
        self.spec.check_values(values)
        ids = []
        for slot, (name, position) in enumerate(self.slots):
            digits = str(values[name]).zfill(self.spec.value(name).digits)
            ids.append(1 + 10 * slot + int(digits[position]))
        return ids

    def decode(self, ids: Iterable[int]) -> dict[str, int]:
        """The values a token sequence stands for (inverse of encode)."""
        digits: dict[str, str] = {v.name: "" for v in self.spec.values}
        for slot, token in enumerate(ids):
            if not 1 + 10 * slot <= token < 11 + 10 * slot:
                raise MaagError(f"token {token} cannot stand in slot {slot}")
            digits[self.slots[slot][0]] += str(token - 1 - 10 * slot)
        return {name: int(d) for name, d in digits.items()}

    def null(self) -> list[int]:
        return [self.NULL] * self.num_tokens

    def batch(self, values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Ids (B, num_tokens) of a value array (B, V) in spec order; null where not `keep`."""
        ids = torch.empty(values.shape[0], self.num_tokens, dtype=torch.long)
        slot = 0
        for i, v in enumerate(self.spec.values):
            for position in range(v.digits):
                digit = values[:, i] // 10 ** (v.digits - 1 - position) % 10
                ids[:, slot] = 1 + 10 * slot + digit
                slot += 1
        return torch.where(keep[:, None], ids, torch.full_like(ids, self.NULL))


def blank_hud(frames: torch.Tensor, rows: torch.Tensor, hud_height: int) -> torch.Tensor:
    """`frames` (B, ..., H, W) with the HUD band left unknown (0) where `rows` (B,) is True.

    Applied to the base and to every context frame whenever the record's digit tokens are
    given: the generator then draws the HUD from the tokens alone and cannot copy (and so
    carry forward) a mistake it drew in an earlier frame.
    """
    frames = frames.clone()
    frames[rows, ..., :hud_height, :] = 0.0
    return frames


class Record:
    """The game's values, changed only by events' spec effects, always within range, and
    the camera, moved by the actions (GameSpec.moves) unless a "blocked" event stops it."""

    def __init__(
        self,
        spec: GameSpec,
        values: Mapping[str, int] | None = None,
        camera: tuple[int, int] | None = None,
    ):
        self.spec = spec
        self.values = dict(spec.initial_values() if values is None else values)
        spec.check_values(self.values)
        self.camera = camera if spec.moves else None

    def apply(self, events: Iterable[str], action: int | None = None) -> dict[str, int]:
        """Apply `events` in order (and `action`'s move); returns the new values."""
        events = tuple(events)
        self.values = self.spec.apply_events(self.values, events)
        if self.camera is not None and action is not None and "blocked" not in events:
            (dx, dy), (sx, sy) = self.spec.moves[action], self.spec.scroll
            self.camera = (self.camera[0] + dx * sx, self.camera[1] + dy * sy)
        return dict(self.values)
