"""The play window: keys, live switches, compare mode, recording, minimap, never blocking."""

import os
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import imageio.v3 as iio
import numpy as np
import pygame
import pytest
from test_modules import SPEC, tiny_full_game

import maag
from maag.cli import main
from maag.games import make_agent
from maag.generative import GenerativeGame
from maag.play import window
from maag.play.loop import run_headless
from maag.play.minimap import MARK, UNKNOWN, minimap
from maag.play.recorder import Recorder
from maag.play.session import MAX_SAMPLER_STEPS, Session, Worker
from maag.spatial import SpatialMap
from maag.spec import Game

DARK = tuple(UNKNOWN.astype(np.uint8))


def down(key):
    return pygame.event.Event(pygame.KEYDOWN, key=key)


def up(key):
    return pygame.event.Event(pygame.KEYUP, key=key)


def tiny_game():
    return tiny_full_game(maag.make("traveler").reset())


def tiny_baseline():
    """A model without modules (no LogicNet): the baseline."""
    full = tiny_game()
    return GenerativeGame(full.generator, SPEC, full.start_frames, 1)


def scripted(monkeypatch, frames):
    """Feed `frames` (a list of event lists, one per window frame) to the window."""
    frames = list(frames)
    monkeypatch.setattr(window.pygame.event, "get", lambda: frames.pop(0) if frames else [])


def play(game, monkeypatch, frames, max_frames=None, **kwargs):
    scripted(monkeypatch, frames)
    kwargs.setdefault("lockstep", True)
    window.run_window(
        game, lambda: game.reset(0), 0, 1000, 2, "test", "tiny", max_frames=max_frames, **kwargs
    )


def test_keys_map_to_actions_and_commands():
    traveler = maag.make("traveler")
    right, left = (traveler.spec.actions.index(a) for a in ("right", "left"))
    controls = window.Controls(traveler)
    assert controls.action() is None
    assert controls.handle(down(pygame.K_RIGHT)) is None
    assert controls.action() == right and controls.action() == right  # held: every step
    controls.handle(down(pygame.K_a))
    assert controls.action() == left  # the most recent key held wins
    controls.handle(up(pygame.K_a))
    assert controls.action() == right
    controls.handle(up(pygame.K_RIGHT))
    assert controls.action() is None
    controls.handle(down(pygame.K_d))
    controls.handle(up(pygame.K_d))
    assert controls.action() == right  # a tap between two steps still counts, once
    assert controls.action() is None
    controls.handle(down(pygame.K_UP))  # no up in Traveler: nothing
    assert controls.action() is None and controls.held == []
    commands = {
        pygame.K_n: "numerical", pygame.K_m: "spatial", pygame.K_h: "help",
        pygame.K_r: "reset", pygame.K_F12: "record", pygame.K_ESCAPE: "quit", pygame.K_q: "quit",
        pygame.K_PLUS: "more steps", pygame.K_EQUALS: "more steps",
        pygame.K_KP_PLUS: "more steps", pygame.K_MINUS: "fewer steps",
        pygame.K_KP_MINUS: "fewer steps", pygame.K_x: None,
    }  # fmt: skip
    for key, command in commands.items():
        assert controls.handle(down(key)) == command
        assert controls.handle(up(key)) is None
    assert controls.handle(pygame.event.Event(pygame.QUIT)) == "quit"
    pacman = maag.make("pacman")
    controls = window.Controls(pacman)
    controls.handle(down(pygame.K_w))
    assert controls.action() == pacman.spec.actions.index("up")
    controls.handle(pygame.event.Event(pygame.WINDOWFOCUSLOST))
    assert controls.held == []


def test_switch_and_sampler_keys_change_the_model(monkeypatch):
    game = tiny_game()
    assert (game.numerical, game.spatial, game.sampler_steps) == (True, True, 2)
    frames = [
        [down(pygame.K_n)], [down(pygame.K_m)], [down(pygame.K_PLUS), down(pygame.K_EQUALS)],
        [down(pygame.K_KP_MINUS)], [down(pygame.K_RIGHT)], [],
    ]  # fmt: skip
    play(game, monkeypatch, frames, max_frames=8)
    assert (game.numerical, game.spatial, game.sampler_steps) == (False, False, 3)
    play(game, monkeypatch, [[down(pygame.K_n), down(pygame.K_m)]], max_frames=3)
    assert (game.numerical, game.spatial) == (True, True)
    minus = [[down(pygame.K_MINUS)] for _ in range(5)]
    play(game, monkeypatch, minus, max_frames=6)
    assert game.sampler_steps == 1
    plus = [[down(pygame.K_KP_PLUS)] for _ in range(MAX_SAMPLER_STEPS + 3)]
    play(game, monkeypatch, plus, max_frames=MAX_SAMPLER_STEPS + 4)
    assert game.sampler_steps == MAX_SAMPLER_STEPS


def test_keys_without_meaning_here_give_a_message():
    engine = Session(maag.make("traveler"), lambda: None, 0)
    assert "engine has no modules" in engine.toggle("numerical").message
    assert "engine has no sampler" in engine.change_steps(1).message
    baseline = tiny_baseline()
    session = Session(baseline, lambda: baseline.reset(0), 0)
    session.start()
    assert "no spatial module" in session.toggle("spatial").message
    assert "no numerical module" in session.toggle("numerical").message
    assert session.change_steps(-1).message == "sampler steps already 1 (min)"
    result = session.change_steps(1)
    assert result.message == "sampler steps: 2" and result.snapshot.sampler_steps == 2
    assert session.last.modules == {} and session.last.minimap is None


def test_the_window_plays_the_engine_and_the_baseline(monkeypatch, tmp_path):
    out = tmp_path / "engine.gif"
    game = maag.make("traveler")
    play(game, monkeypatch, [[down(pygame.K_RIGHT)], [], [up(pygame.K_RIGHT)]], 6,
         recorder=Recorder(out, fps=10))  # fmt: skip
    baseline = tiny_baseline()  # no record, no map: the panel says so
    keys = [[down(pygame.K_n)], [down(pygame.K_h)], [down(pygame.K_r)], [down(pygame.K_RIGHT)]]
    play(baseline, monkeypatch, keys, 8)


@pytest.mark.parametrize("compare", [False, True])
@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_the_window_records_with_and_without_compare(monkeypatch, tmp_path, compare, suffix):
    game = tiny_game()
    reference = maag.make("traveler") if compare else None
    recorder = Recorder(tmp_path / f"out{suffix}", fps=10)
    keys = [[down(pygame.K_RIGHT)], [], [], [up(pygame.K_RIGHT), down(pygame.K_h)]]
    play(game, monkeypatch, keys, 10, recorder=recorder, reference=reference)
    if compare:  # the engine took the same steps beside the model
        engine = maag.make("traveler")
        engine.reset(0)
        for action in [2, 2, 2, 0, 0, 0, 0, 0, 0, 0]:
            expected = engine.step(action).frame
        assert np.array_equal(recorder.frames[-1][:, -64:], expected)
    recorder.close()
    video = iio.imread(recorder.path)
    width = (64 * 2 + window.RECORD_GAP if compare else 64) * recorder.scale
    assert len(video) == 11  # the start and a frame per step
    assert video.shape[1:] == (64 * recorder.scale, width, 3)


def test_f12_records_clips_and_closing_mid_clip_still_writes(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    keys = [[down(pygame.K_F12), down(pygame.K_RIGHT)], [], [], [down(pygame.K_F12)], [],
            [down(pygame.K_F12)], []]  # fmt: skip
    play(maag.make("traveler"), monkeypatch, keys, 9, reference=None)
    clips = sorted(tmp_path.glob("maag-*.gif"))
    assert len(clips) == 2  # one stopped with F12, one left open when the window closed
    lengths = sorted(len(iio.imread(c)) for c in clips)
    assert lengths == [4, 5]  # the frame shown at F12, then a frame per step


class Slow(Game):
    """An engine whose steps take longer than several frames."""

    def __init__(self, seconds):
        self.engine, self.seconds, self.steps = maag.make("traveler"), seconds, 0
        self.spec = self.engine.spec

    def reset(self, seed=None):
        return self.engine.reset(seed)

    def step(self, action):
        time.sleep(self.seconds)  # as torch does, sleeping releases the GIL
        self.steps += 1
        return self.engine.step(action)


def test_a_slow_step_drops_frames_instead_of_blocking(monkeypatch):
    game = Slow(0.25)
    clock = time.perf_counter()
    scripted(monkeypatch, [])
    window.run_window(game, lambda: game.reset(0), 0, 40, 2, max_frames=40)
    elapsed = time.perf_counter() - clock
    assert elapsed < 3.0  # 40 frames at 40 fps (1 s), plus the step under way at the end
    # the window went on drawing while the game stepped: far fewer steps than frames
    assert 1 <= game.steps <= min(elapsed / 0.25 + 1, 10)


class Broken(Slow):
    def step(self, action):
        raise maag.MaagError("the model broke")


def test_an_error_in_the_worker_reaches_the_window(monkeypatch):
    game = Broken(0)
    scripted(monkeypatch, [])
    with pytest.raises(maag.MaagError, match="the model broke"):
        window.run_window(game, lambda: game.reset(0), 0, 100, 2, max_frames=20)


def test_the_worker_applies_commands_between_steps_in_order():
    game = tiny_game()
    game.reset(0)
    worker = Worker(Session(game, lambda: game.reset(0), 0, minimap_size=(20, 40)))
    worker.submit("start")
    worker.submit("step", 2)
    worker.submit("toggle", "numerical")
    worker.submit("step", 2)
    worker.submit("reset")
    assert worker.busy
    results = worker.collect(wait=True)
    assert not worker.busy and [r.error for r in results] == [None] * 5
    assert set(results[1].snapshot.values) == {"score"}  # a random LogicNet: any score
    assert results[2].message == "numerical module off"
    assert results[3].snapshot.values == {}  # the step after the switch has no values shown
    assert results[4].snapshot.count == 0 and results[4].message == "reset (seed 1)"
    assert results[4].snapshot.minimap.shape == (20, 40, 3)
    assert worker.close() == []


def test_minimap_shows_known_pixels_and_dark_unknown_ones():
    game_map = SpatialMap()
    scene = np.zeros((56, 64, 3), np.uint8)
    scene[:] = (200, 100, 50)
    game_map.write(scene, (0, 0), 0)
    image = minimap(game_map, (0, 0), (56, 64), (84, 240), span=5, mark=False)
    assert image.shape == (84, 240, 3) and image.dtype == np.uint8
    inside = np.all(image == (200, 100, 50), axis=-1)
    dark = np.all(image == DARK, axis=-1)
    assert inside.sum() > 0.8 * (56 * 64) / (5 * 64 / 240) ** 2  # the view's area, shrunk
    assert (inside | dark).mean() > 0.95  # the rest: unknown, or a blend at the edge
    assert inside[42, 120] and dark[42, 5] and dark[42, -5] and dark[2, 120]
    # seen from 1.5 views to the right, the known place lies left of the view
    moved = minimap(game_map, (96, 0), (56, 64), (84, 240), span=5, mark=False)
    columns = np.flatnonzero(np.all(moved == (200, 100, 50), axis=-1).any(axis=0))
    assert columns.min() >= 20 and columns.max() < 120 - 32 / (5 * 64 / 240)
    marked = minimap(game_map, (0, 0), (56, 64), (84, 240), span=5)
    outline = np.all(marked == MARK, axis=-1)
    assert outline[:, 120].sum() == 2 and outline[42].sum() == 2  # a rectangle round the view
    assert np.array_equal(marked[~outline], image[~outline])


def test_minimap_follows_the_games_map_as_it_plays():
    game = tiny_game()
    session = Session(game, lambda: game.reset(0), 0, minimap_size=(84, 240))
    first = session.start().snapshot.minimap
    for _ in range(6):
        last = session.step(game.spec.actions.index("right")).snapshot
    known = ~np.all(last.minimap == DARK, axis=-1)
    assert known.sum() > (~np.all(first == DARK, axis=-1)).sum()  # more of the world seen
    _, seen, _ = game.map.retrieve(last.camera, (56, 64))
    assert seen.any()
    engine = Session(maag.make("traveler"), lambda: None, 0, minimap_size=(84, 240))
    assert engine._show(maag.make("traveler").reset(0), None, 0).snapshot.minimap is None


@pytest.mark.parametrize("numerical", [True, False])
@pytest.mark.parametrize("spatial", [True, False])
def test_headless_plays_every_switch_combination(numerical, spatial):
    game = tiny_game()
    game.switch("numerical", numerical)
    game.switch("spatial", spatial)
    game.sampler_steps = 1
    agent = make_agent("traveler", "wanderer", 0)
    summary = run_headless(game, agent, 200, lambda: game.reset(0))
    assert summary.steps == 200 and summary.last.frame.shape == (64, 64, 3)
    assert (summary.last.values != {}) == numerical
    assert (game.numerical, game.spatial) == (numerical, spatial)
    assert game.map.num_chunks > 0  # kept up to date while switched off


def test_compare_and_display_errors_are_one_line(capsys, monkeypatch):
    for argv, message in [
        (["play", "traveler", "--engine", "--compare"], "drop --engine"),
        (["play", "traveler", "--compare", "--headless"], "drop --headless"),
        (["play", "traveler", "--compare", "--load", "x"], "drop --load"),
        (["play", "traveler", "--engine", "--no-spatial"], "drop --engine"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("maag play: error:") and message in err
        assert len(err.strip().splitlines()) == 1
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    assert main(["play", "traveler", "--compare"]) == 2
    assert "use --headless" in capsys.readouterr().err


def test_play_compare_with_the_shipped_model_records_both(monkeypatch, tmp_path):
    out = tmp_path / "compare.gif"
    scripted(monkeypatch, [[down(pygame.K_RIGHT)], [], [up(pygame.K_RIGHT)], [down(pygame.K_n)],
                           [pygame.event.Event(pygame.QUIT)]])  # fmt: skip
    argv = ["play", "traveler", "--model", "models/traveler", "--compare", "--lockstep",
            "--fps", "1000", "--no-spatial", "--record", str(out)]  # fmt: skip
    assert main(argv) == 0
    video = iio.imread(out)
    assert video.shape == (4, 256, (128 + window.RECORD_GAP) * 4, 3)  # the start, 3 steps
