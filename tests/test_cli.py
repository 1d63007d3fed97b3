"""The `maag` command: help texts, headless and windowed play, one-line errors."""

import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pygame
import pytest

from maag.cli import main
from maag.play import window

TRAVELER_MODEL = str(Path(__file__).parents[1] / "models" / "traveler")


@pytest.mark.parametrize(
    "argv",
    [[], ["data"], ["verify"], ["play"], ["train"], ["train", "generator"], ["export"], ["eval"],
     ["bench"]],
)  # fmt: skip
def test_every_command_explains_itself(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    assert "usage: maag" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["play", "tetris", "--engine"], "unknown game 'tetris'"),
        (["play", "traveler", "--engine", "--headless", "--agent", "x"], "unknown agent 'x'"),
        (
            ["data", "--game", "pong2", "--episodes", "1", "--steps", "1", "--out", "d"],
            "unknown game",
        ),
        (
            ["data", "--game", "traveler", "--episodes", "0", "--steps", "1", "--out", "d"],
            "--episodes",
        ),
        (["verify", "/nonexistent"], "no dataset folder"),
        (["play", "--engine", "--headless", "--record", "out.avi"], "use a .gif or .mp4"),
        (["play", "pong", "--model", TRAVELER_MODEL], "is a traveler model, not pong"),
        (["play", "traveler", "--model", "nowhere"], "no model folder at nowhere"),
        (
            ["play", "traveler", "--engine", "--map", "docs/examples/traveler_street.json"],
            "the traveler engine plays its own world only",
        ),
        (["play", "pacman", "--engine", "--map", "nowhere.txt"], "cannot read maze nowhere.txt"),
        (
            ["export", "--model", TRAVELER_MODEL, "--palette", "--out", "m"],
            "--palette: a model folder keeps its own",
        ),
        (
            ["export", "--model", TRAVELER_MODEL, "--observer-run", TRAVELER_MODEL, "--out", "m"],
            "has no observer",
        ),
        (
            ["export", "--model", TRAVELER_MODEL, "--resamples", "2", "--out", "m"],
            "frames are drawn anew where the observer reads otherwise: no observer",
        ),
        (["export", "--model", TRAVELER_MODEL, "--resamples", "-1", "--out", "m"], "--resamples"),
    ],
)
def test_user_mistakes_get_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_errors_print_no_traceback_from_the_console_command():
    result = subprocess.run(
        [sys.executable, "-m", "maag", "data", "--game", "traveler", "--episodes", "1",
         "--steps", "1", "--out", "/proc/no/such/dir"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("maag data: error: cannot write to")
    assert "Traceback" not in result.stderr


def test_headless_play_records_a_gif(tmp_path, capsys):
    out = tmp_path / "out.gif"
    argv = ["play", "traveler", "--engine", "--headless", "--steps", "40", "--record", str(out)]
    assert main(argv) == 0
    assert "40 steps" in capsys.readouterr().out
    video = iio.imread(out)
    assert video.shape[1:] == (256, 256, 3) and len(video) > 10


def test_the_pacman_engine_plays_a_custom_maze(capsys):
    from maag.games import make_agent
    from maag.games.pacman import CUSTOM_EXAMPLE, PacmanEngine

    argv = ["play", "pacman", "--engine", "--map", str(CUSTOM_EXAMPLE), "--headless"]
    assert main([*argv, "--steps", "60", "--seed", "4", "--agent", "seeker"]) == 0
    engine, agent = PacmanEngine(4, maze=CUSTOM_EXAMPLE), make_agent("pacman", "seeker", 4)
    step = engine.reset(4)
    for _ in range(60):
        step = engine.step(agent.act(step))
    assert f"values {step.values}" in capsys.readouterr().out
    assert step.bounds != PacmanEngine(4).reset(4).bounds  # not the classic maze


def test_window_without_display_says_use_headless(monkeypatch, capsys):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    assert main(["play", "traveler", "--engine"]) == 2
    assert "use --headless" in capsys.readouterr().err


def test_keys_map_to_the_games_actions():
    import maag

    traveler, pacman = maag.make("traveler"), maag.make("pacman")
    assert window.action_for_key(traveler, pygame.K_LEFT) == traveler.spec.actions.index("left")
    assert window.action_for_key(traveler, pygame.K_d) == traveler.spec.actions.index("right")
    assert window.action_for_key(traveler, pygame.K_UP) is None
    assert window.action_for_key(pacman, pygame.K_w) == pacman.spec.actions.index("up")


def test_window_plays_synthetic_keys_and_keeps_the_recording_on_close(monkeypatch, tmp_path):
    """Hold right for a few frames, tap left once, close the window: the GIF is complete."""
    script = [
        [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RIGHT)],
        [], [], [],
        [pygame.event.Event(pygame.KEYUP, key=pygame.K_RIGHT)],
        [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_a),
         pygame.event.Event(pygame.KEYUP, key=pygame.K_a)],
        [pygame.event.Event(pygame.QUIT)],
    ]  # fmt: skip
    monkeypatch.setattr(window.pygame.event, "get", lambda: script.pop(0))
    out = tmp_path / "window.gif"
    argv = ["play", "traveler", "--engine", "--fps", "1000", "--lockstep", "--record", str(out)]
    assert main(argv) == 0
    video = iio.imread(out)
    # frames: 4 steps right (+4 buildings) then 1 noop then 1 step left; HUD reads score 4
    from maag.games.traveler import read_frame

    assert read_frame(video[-1][::4, ::4]).values == {"score": 4}


def test_eval_tells_how_often_pongs_generator_draws_the_events_it_is_told(tmp_path, capsys):
    data = tmp_path / "pong"
    main(["data", "--game", "pong", "--agent", "tracker", "--episodes", "1", "--steps", "60",
          "--out", str(data)])  # fmt: skip
    capsys.readouterr()
    main(["eval", "--model", "models/pong", "--data", str(data), "--count", "8", "--event-count",
          "2", "--episodes", "1"])  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    by_event = [line for line in out if "per event (up to 2 steps where it fires)" in line]
    assert len(by_event) == 1 and by_event[0].endswith("no event fires in the data")
    told = [line for line in out if "drawn as told" in line]
    assert len(told) == 1 and "with an alternative outcome" in told[0]
    redrawn = [line for line in out if "drawn again after a lost frame" in line]
    assert len(redrawn) == 1 and "where a sprite moved" in redrawn[0]
    read = [line for line in out if "read as the engine's frame" in line and line not in by_event]
    assert len(read) == 1 and all(f"{field} " in read[0] for field in ("values", "ball"))
