"""Pong: the player holds the right paddle, a scripted opponent the left one.

Frame 64x64: an 8-row HUD band with both scores (left score at the left, right score at
the right), the field below it (rows 8..63). Paddles are 2x10 at columns 2-3 (opponent)
and 60-61 (player); the ball is 2x2. The ball's top-left column stays in 4..58, between
the paddle faces, so it never overlaps a paddle. When it reaches a face and that paddle
covers one of its rows it bounces (the vertical speed set by where it hit); otherwise it
has left the field on that side, the other side scores, and the ball is served again from
the centre in the same step: on the row it left on (kept within the serve rows), in the
same direction and with the same vertical speed, its horizontal speed switching between 1
and 2. The first serve goes left from the centre. Nothing in Pong is random: the next frame
follows from the last frames and the action, so a generator never has to guess a serve (a
few-step generator trained on random serves drew every possible serve at once).
Scores saturate at 99.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from maag.errors import MaagError
from maag.spec import (
    Effect,
    EventSpec,
    GameDefinition,
    GameSpec,
    Judgement,
    Reading,
    Step,
    ValueSpec,
)

from .common import Engine, RandomAgent, classify_pixels, hud_band, read_hud

SPEC = GameSpec(
    name="pong",
    frame_height=64,
    frame_width=64,
    hud_height=8,
    actions=("noop", "up", "down"),
    values=(
        ValueSpec("left", low=0, high=99, initial=0, hud_x=2),
        ValueSpec("right", low=0, high=99, initial=0, hud_x=55),
    ),
    events=(
        EventSpec("point_left", (Effect("left", "add", 1),)),
        EventSpec("point_right", (Effect("right", "add", 1),)),
    ),
)
MOVES = {"noop": 0, "up": -1, "down": 1}

FIELD_TOP = SPEC.hud_height  # frame row of the field's first row
FIELD_BOTTOM = SPEC.frame_height  # one past the field's last row
PADDLE_WIDTH, PADDLE_HEIGHT = 2, 10
LEFT_X, RIGHT_X = 2, 60  # paddles' left columns
PADDLE_MIN, PADDLE_MAX = FIELD_TOP, FIELD_BOTTOM - PADDLE_HEIGHT  # paddle top row range
PLAYER_SPEED, OPPONENT_SPEED = 2, 1  # px per step
BALL = 2  # ball side
BALL_MIN_X, BALL_MAX_X = LEFT_X + PADDLE_WIDTH, RIGHT_X - BALL  # 4 .. 58: the paddle faces
BALL_MIN_Y, BALL_MAX_Y = FIELD_TOP, FIELD_BOTTOM - BALL  # 8 .. 62
SERVE_X = (BALL_MIN_X + BALL_MAX_X) // 2  # 31
SERVE_Y = (BALL_MIN_Y + BALL_MAX_Y) // 2  # 35
SERVE_SPREAD = 8  # serve rows SERVE_Y - 8 .. SERVE_Y + 8
SERVE_VX = (-2, -1, 1, 2)  # horizontal speeds a ball can have
FIRST_SERVE = (-1, 1)  # velocity of the first serve, from (SERVE_X, SERVE_Y)
MAX_VY = 2
PADDLE_CENTRE = (PADDLE_MIN + PADDLE_MAX) // 2  # 31: where paddles start

BACKGROUND = (16, 128, 72)
LEFT_PADDLE = (240, 90, 60)
RIGHT_PADDLE = (70, 160, 255)
BALL_COLOUR = (255, 230, 60)

_FIELD_IMAGE = np.empty((FIELD_BOTTOM - FIELD_TOP, SPEC.frame_width, 3), dtype=np.uint8)
_FIELD_IMAGE[:] = BACKGROUND
_LEFT = np.array(LEFT_PADDLE, dtype=np.uint8)
_RIGHT = np.array(RIGHT_PADDLE, dtype=np.uint8)
_BALL = np.array(BALL_COLOUR, dtype=np.uint8)


def covers(paddle_top: int, ball_y: int) -> bool:
    """Whether a paddle with top row `paddle_top` covers a row of a ball with top row `ball_y`."""
    return paddle_top - BALL < ball_y < paddle_top + PADDLE_HEIGHT


def player_row(paddle_top: int, action: int) -> int:
    """The player's paddle top row after `action` from `paddle_top` (clamped at the walls)."""
    move = MOVES[SPEC.actions[action]]
    return min(max(paddle_top + move * PLAYER_SPEED, PADDLE_MIN), PADDLE_MAX)


def bounce_vy(paddle_top: int, ball_y: int) -> int:
    """Vertical speed after a hit: the ball's centre against the paddle's centre (-5..5)."""
    offset = (ball_y + BALL // 2) - (paddle_top + PADDLE_HEIGHT // 2)
    return (offset > 0) - (offset < 0) + (offset >= 3) - (offset <= -3)


class PongEngine(Engine):
    """The ground-truth Pong. State (all frame pixels): paddle top rows `left`, `right`;
    ball top-left `ball_x`, `ball_y`; ball velocity `vx`, `vy`."""

    spec = SPEC

    def _start(self) -> Step:
        self.left = self.right = PADDLE_CENTRE
        self._serve(SERVE_Y, *FIRST_SERVE)
        return self._observe(())

    def _advance(self, action: int) -> Step:
        self._move_opponent()
        return self._play(action)

    def _alternative(self, action: int) -> Step | None:
        """With the ball reaching a paddle face this step: the step with the other outcome
        there (returned though the paddle misses it, or missed though the paddle covers
        it), the ball, both paddles and the rest as the rules put them."""
        if BALL_MIN_X < self.ball_x + self.vx < BALL_MAX_X:
            return None
        twin = copy.deepcopy(self)
        twin._move_opponent()
        return twin._play(action, flip=True)

    def _play(self, action: int, flip: bool = False) -> Step:
        """The step after the opponent moved: the player's paddle, then the ball (`flip`:
        the other outcome where it reaches a face)."""
        self.right = player_row(self.right, action)
        events: tuple[str, ...] = ()
        y = self.ball_y + self.vy
        if not BALL_MIN_Y <= y <= BALL_MAX_Y:  # wall: stop at it and turn
            y = min(max(y, BALL_MIN_Y), BALL_MAX_Y)
            self.vy = -self.vy
        x = self.ball_x + self.vx
        if x <= BALL_MIN_X or x >= BALL_MAX_X:  # reached a paddle face
            on_left = x <= BALL_MIN_X
            paddle = self.left if on_left else self.right
            if covers(paddle, y) != flip:
                x = BALL_MIN_X if on_left else BALL_MAX_X
                self.vx = -self.vx
                self.vy = bounce_vy(paddle, y)
            else:
                events = ("point_right",) if on_left else ("point_left",)
        if events:
            self.values = SPEC.apply_events(self.values, events)
            speed = 3 - abs(self.vx)  # horizontal speed 1 <-> 2
            self._serve(y, speed if self.vx > 0 else -speed, self.vy)
        else:
            self.ball_x, self.ball_y = x, y
        return self._observe(events)

    def _move_opponent(self) -> None:
        """Toward the ball while it comes this way, back to the centre otherwise; 1 px/step."""
        centre = self.left + PADDLE_HEIGHT // 2
        target = self.ball_y + BALL // 2 if self.vx < 0 else PADDLE_CENTRE + PADDLE_HEIGHT // 2
        if target != centre:
            step = OPPONENT_SPEED if target > centre else -OPPONENT_SPEED
            self.left = min(max(self.left + step, PADDLE_MIN), PADDLE_MAX)

    def _serve(self, row: int, vx: int, vy: int) -> None:
        """The ball to the centre column on `row` (kept within the serve rows), moving (vx, vy)."""
        self.ball_x = SERVE_X
        self.ball_y = min(max(row, SERVE_Y - SERVE_SPREAD), SERVE_Y + SERVE_SPREAD)
        self.vx, self.vy = vx, vy

    def _observe(self, events: tuple[str, ...]) -> Step:
        frame = np.empty((SPEC.frame_height, SPEC.frame_width, 3), dtype=np.uint8)
        frame[:FIELD_TOP] = hud_band(SPEC, self.values)
        frame[FIELD_TOP:] = _FIELD_IMAGE
        frame[self.left : self.left + PADDLE_HEIGHT, LEFT_X : LEFT_X + PADDLE_WIDTH] = _LEFT
        frame[self.right : self.right + PADDLE_HEIGHT, RIGHT_X : RIGHT_X + PADDLE_WIDTH] = _RIGHT
        frame[self.ball_y : self.ball_y + BALL, self.ball_x : self.ball_x + BALL] = _BALL
        return Step(frame, dict(self.values), events, (0, 0))


@dataclass(frozen=True)
class PongReading(Reading):
    """HUD values, each paddle's top row, and the ball's top-left pixel (x, y);
    None where it cannot be read."""

    left_paddle: int | None
    right_paddle: int | None
    ball: tuple[int, int] | None


_SCENE_COLOURS = np.array([BACKGROUND, LEFT_PADDLE, RIGHT_PADDLE, BALL_COLOUR], dtype=np.uint8)
_BACKGROUND_LABEL, _LEFT_LABEL, _RIGHT_LABEL, _BALL_LABEL = range(4)


def read_frame(frame: np.ndarray) -> PongReading:
    """Read a Pong frame; illegible parts come back as None, never guessed."""
    if frame.shape != (SPEC.frame_height, SPEC.frame_width, 3):
        raise MaagError(f"pong frames are (64, 64, 3), got {frame.shape}")
    values = read_hud(SPEC, frame)
    labels = classify_pixels(frame[FIELD_TOP:], _SCENE_COLOURS)
    left = _read_paddle(labels[:, :BALL_MIN_X], LEFT_X, _LEFT_LABEL)
    right = _read_paddle(labels[:, BALL_MAX_X + BALL :], RIGHT_X - BALL_MAX_X - BALL, _RIGHT_LABEL)
    ball = _read_ball(labels[:, BALL_MIN_X : BALL_MAX_X + BALL])
    return PongReading(values, left, right, ball)


def _read_paddle(labels: np.ndarray, x: int, label: int) -> int | None:
    """A paddle's strip of columns (its own plus background) -> the paddle's top frame row."""
    paddle = labels == label
    if not (paddle | (labels == _BACKGROUND_LABEL)).all():
        return None
    rows = np.nonzero(paddle[:, x])[0]
    if rows.size != PADDLE_HEIGHT:
        return None
    top = int(rows[0])
    expected = np.zeros_like(paddle)
    expected[top : top + PADDLE_HEIGHT, x : x + PADDLE_WIDTH] = True
    if not (paddle == expected).all():
        return None
    return top + FIELD_TOP


def _read_ball(labels: np.ndarray) -> tuple[int, int] | None:
    """The strip between the paddle faces -> the ball's top-left frame pixel (x, y)."""
    ball = labels == _BALL_LABEL
    if not (ball | (labels == _BACKGROUND_LABEL)).all():
        return None
    rows, cols = np.nonzero(ball)
    if rows.size != BALL * BALL:
        return None
    top, left = int(rows.min()), int(cols.min())
    if rows.max() - top + 1 != BALL or cols.max() - left + 1 != BALL:
        return None
    return left + BALL_MIN_X, top + FIELD_TOP


def sprite_mask(frame: np.ndarray) -> np.ndarray:
    """The ball and both paddles: every field pixel that is not the background (they move).
    Works on generated frames too."""
    mask = np.zeros(frame.shape[:2], dtype=bool)
    mask[FIELD_TOP:] = classify_pixels(frame[FIELD_TOP:], _SCENE_COLOURS) != _BACKGROUND_LABEL
    return mask


class Tracker:
    """Follows the ball it sees with the right paddle while the ball comes its way, back to
    the centre otherwise. Aims at a point of the paddle drawn anew for each approach; now
    and then that point lies off the paddle (a miss), and sometimes it dozes for a step."""

    MISS_RATE = 0.15  # chance per approach to aim off the paddle
    DOZE_RATE = 0.03  # chance per step to do nothing

    def __init__(self, spec: GameSpec, seed: int):
        self.rng = np.random.default_rng(seed)
        self.last_x: int | None = None  # the ball's column last step, if seen
        self.approaching = False
        self.aim = 0  # target row offset from the ball's centre

    def act(self, step: Step) -> int:
        ball, paddle = _locate(step.frame)
        was_approaching = self.approaching
        self.approaching = ball is not None and self.last_x is not None and ball[0] > self.last_x
        self.last_x = None if ball is None else ball[0]
        if self.approaching and not was_approaching:
            self._new_aim()
        if paddle is None or self.rng.random() < self.DOZE_RATE:
            return SPEC.actions.index("noop")
        if self.approaching:
            target = ball[1] + BALL // 2 + self.aim
        else:
            target = PADDLE_CENTRE + PADDLE_HEIGHT // 2
        diff = target - (paddle + PADDLE_HEIGHT // 2)
        if diff > 1:
            return SPEC.actions.index("down")
        if diff < -1:
            return SPEC.actions.index("up")
        return SPEC.actions.index("noop")

    def _new_aim(self) -> None:
        if self.rng.random() < self.MISS_RATE:
            self.aim = int(self.rng.integers(8, 12)) * (1 if self.rng.random() < 0.5 else -1)
        else:
            self.aim = int(self.rng.integers(-4, 5))


def _locate(frame: np.ndarray) -> tuple[tuple[int, int] | None, int | None]:
    """Cheaply find the ball's top-left (x, y) and the right paddle's top row: the ball is
    the only bright green between the paddle faces, the paddle the only bright blue in its
    column."""
    field = frame[FIELD_TOP:]
    rows, cols = np.nonzero(field[:, BALL_MIN_X : BALL_MAX_X + BALL, 1] > _BALL_GREEN)
    ball = None if rows.size == 0 else (int(cols[0]) + BALL_MIN_X, int(rows[0]) + FIELD_TOP)
    paddle_rows = np.nonzero(field[:, RIGHT_X, 2] > _PADDLE_BLUE)[0]
    paddle = None if paddle_rows.size == 0 else int(paddle_rows[0]) + FIELD_TOP
    return ball, paddle


_BALL_GREEN = (BALL_COLOUR[1] + max(BACKGROUND[1], LEFT_PADDLE[1], RIGHT_PADDLE[1])) // 2
_PADDLE_BLUE = (RIGHT_PADDLE[2] + max(BACKGROUND[2], BALL_COLOUR[2])) // 2


class PongReferee:
    """Pong's rules on screen, judged from frame readings only.

    The ball is followed from reading to reading with the rules' velocity: a serve's
    velocity is unknown until its first step (which cannot reach a face), then walls turn
    it and a paddle hit sends it back with the bounce speed of where it hit (the paddles as
    read in the same frame). When the ball reaches a paddle face, the frame says what
    happened: shown back at that face it bounced; shown nearer the serve column than the
    face it left the field there, and the other side scores (when the ball cannot be read,
    the rules decide from the paddle read; with no paddle read either, from where the ball
    is next shown). A ball last read nearer a face than the serve column and next shown
    nearer the serve column, further from there than its speed can carry it in the steps
    between, was served anew: the side away from that face scores (the ball may have been
    unreadable, or drawn back at the face, on the step it left). The player's paddle must
    have moved by the action, clamped at the walls, from where it was last read. The ball
    never leaves the screen, so a step that shows none cannot be followed (`followable`
    False): a game that loses its ball cannot score its points as consistent. Pong has no
    places to revisit: `visible` and `regions` are empty.
    """

    def __init__(self) -> None:
        self.values = SPEC.initial_values()
        self.velocity: tuple[int, int] | None = None  # unknown right after a serve
        self.ball: tuple[int, int] | None = None
        self.last_read: tuple[int, int] | None = None  # where the ball was last read
        self.steps_unread = 0  # steps since then
        self.paddle = PADDLE_CENTRE

    def start(self, reading: PongReading) -> Judgement:
        self.ball = self.last_read = reading.ball
        moved = reading.right_paddle == PADDLE_CENTRE
        if reading.right_paddle is not None:
            self.paddle = reading.right_paddle
        return self._judgement((), moved, reading.ball is not None)

    def judge(self, action: int, reading: PongReading) -> Judgement:
        expected = player_row(self.paddle, action)
        moved = reading.right_paddle == expected
        self.paddle = expected if reading.right_paddle is None else reading.right_paddle
        events = self._follow_ball(reading)
        self.values = SPEC.apply_events(self.values, events)
        return self._judgement(events, moved, reading.ball is not None)

    def may_change(self, place: object, before: object, after: object) -> bool:
        return False  # no places

    def _follow_ball(self, reading: PongReading) -> tuple[str, ...]:
        """The events of this step, and the ball's new position and velocity."""
        shown, before = reading.ball, self.ball
        served = self._served_anew(shown)
        if shown is not None:
            self.last_read, self.steps_unread = shown, 0
        else:
            self.steps_unread += 1
        if served:
            self.velocity, self.ball = None, shown
            return served
        if before is None or self.velocity is None:  # just served (or lost): learn its speed
            if shown is not None and before is not None:
                self.velocity = (shown[0] - before[0], shown[1] - before[1])
            self.ball = shown
            return ()
        (x, y), (vx, vy) = before, self.velocity
        y += vy
        if not BALL_MIN_Y <= y <= BALL_MAX_Y:
            y, vy = min(max(y, BALL_MIN_Y), BALL_MAX_Y), -vy
        x += vx
        events: tuple[str, ...] = ()
        if x <= BALL_MIN_X or x >= BALL_MAX_X:  # reached a paddle face
            on_left = x <= BALL_MIN_X
            face = BALL_MIN_X if on_left else BALL_MAX_X
            paddle = reading.left_paddle if on_left else reading.right_paddle
            if shown is not None:
                left_field = abs(shown[0] - SERVE_X) < abs(shown[0] - face)
            else:
                left_field = paddle is not None and not covers(paddle, y)
            if left_field:
                self.velocity, self.ball, self.last_read = None, shown, shown
                return ("point_right",) if on_left else ("point_left",)
            if shown is None and paddle is None:  # nothing read to decide by: wait for the ball
                self.velocity, self.ball = None, None
                return ()
            x, vx = face, -vx
            if paddle is not None:
                vy = bounce_vy(paddle, y)
        if shown is not None and shown != (x, y):
            # not where the rules put it (a generated frame): go on from where it is shown
            dx, dy = shown[0] - before[0], shown[1] - before[1]
            if 0 < abs(dx) <= max(abs(v) for v in SERVE_VX) and abs(dy) <= MAX_VY:
                vx, vy = dx, dy
            x, y = shown
        self.ball, self.velocity = (x, y), (vx, vy)
        return events

    def _served_anew(self, shown: tuple[int, int] | None) -> tuple[str, ...]:
        """The point a ball shown at `shown` says was scored since it was last read: one
        that crossed from a face's half to nearer the serve column faster than it flies."""
        if shown is None or self.last_read is None:
            return ()
        last_x = self.last_read[0]
        face = BALL_MIN_X if abs(last_x - BALL_MIN_X) < abs(last_x - BALL_MAX_X) else BALL_MAX_X
        from_face = abs(last_x - face) < abs(last_x - SERVE_X)
        to_serve = abs(shown[0] - SERVE_X) < abs(shown[0] - face)
        too_far = abs(shown[0] - last_x) > max(SERVE_VX) * (self.steps_unread + 1)
        if not (from_face and to_serve and too_far):
            return ()
        return ("point_right",) if face == BALL_MIN_X else ("point_left",)

    def _judgement(self, events: tuple[str, ...], moved: bool, ball_shown: bool) -> Judgement:
        return Judgement(
            events=events, values=dict(self.values), moved_as_ruled=moved, visible={},
            regions={}, followable=ball_shown,
        )  # fmt: skip


GAME = GameDefinition(
    spec=SPEC,
    engine=PongEngine,
    read_frame=read_frame,
    agents={"tracker": Tracker, "random": RandomAgent},
    referee=PongReferee,
    sprite_mask=sprite_mask,
    mirrored_actions=(0, 2, 1),  # noop, up <-> down
)
