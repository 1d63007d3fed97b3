"""The modules in the play loop: the map views play builds equal the training views."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from standins import EngineEvents, ObservedEvents, Replay

import maag
from maag.data import generate_episode
from maag.games import get_game
from maag.generative import GenerativeGame
from maag.models.flow import to_unit
from maag.numerical import DigitTokenizer, blank_hud
from maag.spatial import generator_inputs
from maag.transitions import MapViews

SPEC = get_game("traveler").spec


@pytest.fixture(scope="module")
def episode():
    return generate_episode("traveler", "wanderer", 300, seed=8, index=0)


def play(
    episode, numerical=None, spatial=None, before_step=lambda game, t: None, tokens=None,
    decided=None, observer=None, redraws=1, observer_events=None, resamples=0, frame_of=None,
):  # fmt: skip
    """Play the episode's actions with stand-ins: the generator replays its frames (the one
    `frame_of(game)` names, where given), LogicNet decides its events (or `decided`), an
    `observer(game_of)` reads them, where given."""
    if frame_of is not None:
        drawn = lambda: frame_of(game)  # noqa: E731
    else:
        drawn = (lambda: game.t + 1) if observer else None
    generator = Replay(episode["frames"], SPEC, tokens=tokens, frame_of=drawn)
    game = GenerativeGame(
        generator, SPEC, episode["frames"][:1],
        logicnet=EngineEvents(episode["events"] if decided is None else decided, SPEC),
        start_cameras=episode["camera"][:1], numerical=numerical, spatial=spatial,
        sprite_mask=get_game("traveler").sprite_mask,
        observer=observer(lambda: game) if observer else None, observer_events=observer_events,
        resamples=resamples,
    )  # fmt: skip
    game.redraws = redraws
    steps = [game.reset(0)]
    for t, action in enumerate(episode["actions"]):
        before_step(game, t)
        steps.append(game.step(int(action)))
    return game, generator, steps


def test_play_builds_the_map_views_training_sees(episode):
    game, generator, steps = play(episode)
    assert game.modules == ("numerical", "spatial")
    views = MapViews(
        {k: v[None] for k, v in episode.items()}, SPEC, get_game("traveler").sprite_mask
    )
    for t in range(1, len(episode["frames"])):
        batch = views.views(np.zeros(1, int), np.array([t]))
        last = to_unit(torch.from_numpy(episode["frames"][t - 1]))[None]
        moves = (episode["camera"][t] - episode["camera"][t - 1])[None]
        hud = SPEC.hud_height
        sprites = batch["sprites"]
        base, extra = generator_inputs(last, batch["canvas"], batch["known"], hud, moves, sprites)
        base = blank_hud(base, torch.ones(1, dtype=torch.bool), hud)  # digits from tokens
        played_base, played_extra, _ = generator.seen[t - 1]
        assert torch.equal(played_extra, extra), t
        assert torch.equal(played_base, base), t
    assert [s.camera for s in steps] == [tuple(c) for c in episode["camera"]]
    assert [s.values["score"] for s in steps] == episode["values"][:, 0].tolist()


def test_a_revisit_is_drawn_from_the_map(episode):
    _, generator, _ = play(episode)
    known = [extra[0, 3] > 0 for _, extra, _ in generator.seen]
    assert max(k.float().mean() for k in known) > 0.8  # most of a revisited view is known


@pytest.mark.parametrize(
    "numerical, spatial", [(False, False), (True, False), (False, True), (True, True)]
)
def test_every_switch_combination_plays(episode, numerical, spatial):
    game, generator, steps = play(episode, numerical, spatial)
    assert game.modules == tuple(
        m for m, on in (("numerical", numerical), ("spatial", spatial)) if on
    )
    assert (steps[-1].values != {}) == numerical
    assert (steps[-1].camera is not None) == (numerical or spatial)
    _, extra, cond_ids = generator.seen[-1]
    assert (extra[0, 3] > 0).any() == spatial  # no map view when the module is off
    assert (cond_ids != 0).any() == numerical  # null tokens when the module is off


def test_switching_modules_mid_episode_keeps_the_record_and_map_exact(episode):
    def flip(game, t):  # now and then, as a player pressing N or M would
        if t % 7 == 0:
            module = ("numerical", "spatial")[t // 7 % 2]
            game.switch(module, not getattr(game, module))

    game, generator, _ = play(episode, before_step=flip)
    game.switch("numerical", True)
    assert game.record.values["score"] == episode["values"][-1, 0]
    assert game.record.camera == tuple(episode["camera"][-1])
    _, extra, _ = generator.seen[-1]
    assert game.spatial == (extra[0, 3] > 0).any()
    with pytest.raises(maag.MaagError, match="no module"):
        game.switch("telepathy", True)


def test_a_model_without_the_module_refuses_to_switch_it_on(episode):
    generator = Replay(episode["frames"], SPEC, extra_channels=0)
    with pytest.raises(maag.MaagError, match="no spatial module"):
        GenerativeGame(generator, SPEC, episode["frames"][:1], spatial=True)


def tiny_full_game(start):
    from maag.models.dit import FrameDiT
    from maag.models.logicnet import LogicNet

    torch.manual_seed(0)
    tokens = DigitTokenizer(SPEC)
    generator = FrameDiT(
        hidden_size=32, depth=1, num_heads=2, extra_channels=4, hud_height=8,
        cond_vocab_size=tokens.vocab_size, num_cond_tokens=tokens.num_tokens,
        aligned_context=True,
    )  # fmt: skip
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    logicnet = LogicNet(event_names=SPEC.event_names, width=8)
    return GenerativeGame(
        generator, SPEC, start.frame[None], 2, logicnet=logicnet,
        start_cameras=np.array([start.camera]), sprite_mask=get_game("traveler").sprite_mask,
    )  # fmt: skip


def test_saved_session_continues_bitwise(tmp_path):
    game = tiny_full_game(maag.make("traveler").reset())
    actions = [2, 2, 1, 0, 2, 1, 1, 1, 2, 2] * 2
    game.reset(3)
    for a in actions:
        game.step(a)
    game.save_session(tmp_path / "s.safetensors")
    expected = [game.step(a) for a in actions]
    other = tiny_full_game(maag.make("traveler").reset())
    other.load_session(tmp_path / "s.safetensors")
    for a, want in zip(actions, expected, strict=True):
        got = other.step(a)
        assert np.array_equal(got.frame, want.frame)
        assert (got.values, got.events, got.camera) == (want.values, want.events, want.camera)


def test_foreign_or_damaged_sessions_are_refused(tmp_path):
    game = tiny_full_game(maag.make("traveler").reset())
    game.reset(0)
    game.step(2)
    path = tmp_path / "s.safetensors"
    game.save_session(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(maag.MaagError, match="not a readable maag session"):
        game.load_session(path)
    (tmp_path / "x.safetensors").write_bytes(b"garbage")
    with pytest.raises(maag.MaagError, match="not a readable maag session"):
        game.load_session(tmp_path / "x.safetensors")
    game.save_session(path)
    switched = tiny_full_game(maag.make("traveler").reset())
    switched.available = ("numerical",)  # as a model without the spatial module
    with pytest.raises(maag.MaagError, match="saved with modules"):
        switched.load_session(path)


def test_custom_maps_prefill_what_the_map_retrieves(tmp_path):
    from maag.games.traveler import CELL, custom_map

    game = tiny_full_game(maag.make("traveler").reset())
    street = custom_map("docs/examples/traveler_street.json")
    game.use_custom_map(street)
    image = street.image
    game.reset(0)
    canvas, known, _ = game.map.retrieve((CELL, 0), (56, 64))  # cells 1..8, as painted
    assert known.all() and np.array_equal(canvas, image[:, :64])
    engine = maag.make("traveler")  # the JSON street is drawn the way the engine draws
    engine.reset()
    engine.buildings = {1: (0, 40)}
    engine.x = 1
    assert np.array_equal(engine._observe(()).frame[8:48, 33:39], canvas[:40, 1:7])
    painted = custom_map("docs/examples/traveler_painted.png")
    assert painted.origin == (CELL, 0) and painted.image.shape == (56, 80, 3)
    assert painted.mask.all() and painted.start is None
    (tmp_path / "bad.json").write_text('{"buildings": {"2": ["mauve", 24]}}')
    with pytest.raises(maag.MaagError, match="unknown colour 'mauve'"):
        custom_map(str(tmp_path / "bad.json"))
    iio_bad = tmp_path / "bad.png"
    import imageio.v3 as iio

    iio.imwrite(iio_bad, np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(maag.MaagError, match="56 px tall"):
        custom_map(str(iio_bad))


def test_a_generator_trained_with_event_tokens_is_told_the_steps_events(episode):
    """Its condition tokens are the record's values after the step and LogicNet's counts
    of each event in it; with the numerical module off, all null."""
    tokens = DigitTokenizer(SPEC, events=True)
    game, generator, steps = play(episode, tokens=tokens)
    assert game.tokens.event_names == SPEC.event_names
    fired = 0
    for t, (_, _, cond_ids) in enumerate(generator.seen, start=1):
        counts = episode["events"][t].tolist()
        assert cond_ids[0].tolist() == tokens.encode(steps[t].values, counts)
        fired += any(counts)
    assert fired >= 5
    _, generator, _ = play(episode, numerical=False, tokens=tokens)
    assert all(not cond_ids.any() for _, _, cond_ids in generator.seen)


def test_the_record_follows_the_events_the_observer_reads_in_each_drawn_frame(episode):
    """LogicNet decides no event at all; the observer reads the recorded ones in each frame
    drawn: the record keeps the engine's values, and each step where they differ is drawn
    again, told the events read (or, with no redraws left, its HUD lags a step)."""
    quiet = np.zeros_like(episode["events"])
    fired = [t for t in range(1, len(episode["events"])) if episode["events"][t].any()]
    assert len(fired) >= 5

    def observed(game_of):
        return ObservedEvents(episode["events"], SPEC, game_of)

    for redraws in (0, 1):
        tokens = DigitTokenizer(SPEC, events=True)
        game, generator, steps = play(
            episode, tokens=tokens, decided=quiet, observer=observed, redraws=redraws
        )
        for t, step in enumerate(steps[1:], start=1):
            assert step.values == {"score": int(episode["values"][t, 0])}, t
            assert step.events == ("new_building",) * int(episode["events"][t, 0])
        assert game.redrawn == redraws * len(fired)
        assert len(generator.seen) == len(steps) - 1 + game.redrawn
        told = [ids[0, -1].item() for _, _, ids in generator.seen]  # the event slot
        assert told.count(tokens.encode({"score": 0}, [1])[-1]) == game.redrawn
    inputs = game.observer.inputs[0]  # the first step's: the start frame, then the drawn one
    hud = SPEC.hud_height
    assert not inputs[..., :hud, :].any()  # the HUD shows what was decided: not read
    drawn = to_unit(torch.from_numpy(steps[1].frame))
    assert torch.equal(inputs[0, 3:, hud:], drawn[:, hud:])


def test_a_frame_that_misses_what_logicnet_decided_is_drawn_anew_with_other_noise(episode):
    """With `resamples`, a frame the observer reads otherwise than LogicNet decided is drawn
    anew, told the same events, with the sampler's noise drawn on: here the first drawing
    of each event's step misses it (the start frame, which shows none) and the second shows
    it, so the record keeps LogicNet's events and nothing is told the observer's reading.
    Without resamples each missed event is drawn again told none (what the observer read),
    that drawing shows it, and the record follows the frame a step late."""
    fired = [t for t in range(1, len(episode["events"])) if episode["events"][t].any()]
    assert len(fired) >= 5
    drawings: dict[int, int] = {}  # step -> frames drawn for it
    shown: list[int] = []  # the recorded frame each drawing shows

    def frame_of(game):
        drawings[game.t] = drawings.get(game.t, 0) + 1
        misses = drawings[game.t] == 1 and episode["events"][game.t + 1].any()
        shown.append(0 if misses else game.t + 1)
        return shown[-1]

    def observed(game_of):  # reads the events of the recorded step the drawing shows
        observer = ObservedEvents(episode["events"], SPEC, game_of)
        observer.game_of = lambda: SimpleNamespace(t=shown[-1] - 1)
        return observer

    tokens = DigitTokenizer(SPEC, events=True)
    for resamples in (1, 0):
        drawings.clear()
        game, generator, steps = play(
            episode, tokens=tokens, observer=observed, resamples=resamples, frame_of=frame_of
        )
        if resamples:
            assert (game.resampled, game.redrawn) == (len(fired), 0)
            for t, step in enumerate(steps[1:], start=1):
                assert step.values == {"score": int(episode["values"][t, 0])}, t
            noisy = generator.noisy  # the sampler's noise at each drawing
            for t in fired:
                first = sum(drawings[s] for s in range(t - 1))
                assert not torch.equal(noisy[first], noisy[first + 1]), t
        else:
            assert (game.resampled, game.redrawn) == (0, len(fired))
            assert steps[-1].values == {"score": len(fired)}  # the record followed the frames
        told = [ids[0, -1].item() for _, _, ids in generator.seen]  # the event slot
        building = tokens.encode({"score": 0}, [1])[-1]
        assert told.count(building) == (1 + resamples) * len(fired)
    assert len(generator.seen) == len(steps) - 1 + game.redrawn


def test_an_observer_overrules_logicnet_only_on_the_events_it_observes(episode):
    """With `observer_events` naming none of the events the observer reads, the record
    keeps LogicNet's decisions (no event at all) and nothing is drawn again; a name the
    game does not have is refused."""
    quiet = np.zeros_like(episode["events"])

    def observed(game_of):
        return ObservedEvents(episode["events"], SPEC, game_of)

    game, _, steps = play(episode, decided=quiet, observer=observed, observer_events=())
    assert game.redrawn == 0
    assert all(step.events == () and step.values == {"score": 0} for step in steps[1:])
    with pytest.raises(maag.MaagError, match=r"observer events \['death'\] are not traveler"):
        play(episode, decided=quiet, observer=observed, observer_events=("death",))


def test_an_observer_needs_a_logicnet_and_must_observe(episode):
    from maag.models.logicnet import LogicNet

    generator = Replay(episode["frames"], SPEC)
    deciding = LogicNet(event_names=SPEC.event_names, width=8)
    observing = LogicNet(event_names=SPEC.event_names, width=8, observes=True)
    start = episode["frames"][:1]
    with pytest.raises(maag.MaagError, match="the model has no LogicNet"):
        GenerativeGame(generator, SPEC, start, observer=observing)
    with pytest.raises(maag.MaagError, match="the observer decides events ahead"):
        GenerativeGame(generator, SPEC, start, logicnet=deciding, observer=deciding)
    with pytest.raises(maag.MaagError, match="LogicNet reads frames already drawn"):
        GenerativeGame(generator, SPEC, start, logicnet=observing)


def test_an_observer_that_reads_the_map_gets_its_view_where_the_step_went(episode):
    """Its extra channels are the map's view at the step's camera, before the frame just
    drawn is written into it: what each place showed before."""
    from maag.spatial import map_channels

    def observed(game_of):
        return ObservedEvents(episode["events"], SPEC, game_of, extra_channels=4)

    expected = []

    def before_step(game, t):
        camera = tuple(episode["camera"][t + 1])
        canvas, known, _ = game.map.retrieve(camera, (56, 64))
        expected.append(map_channels(canvas[None], known[None], SPEC.hud_height))

    game, _, _ = play(episode, before_step=before_step, observer=observed)
    assert len(game.observer.extras) == len(expected) == len(episode["actions"])
    for got, want in zip(game.observer.extras, expected, strict=True):
        assert torch.equal(got, want)
    assert (expected[-1][:, 3] > 0).any()  # the map knows places by then
    with pytest.raises(maag.MaagError, match="the observer reads the spatial map"):
        play(episode, spatial=False, observer=observed)
