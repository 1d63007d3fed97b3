"""The numerical module: exact record, digit tokens, LogicNet, and the plumbing between them."""

import json
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from shards import drop_arrays

import maag
from maag.data import write_dataset
from maag.errors import MaagError
from maag.games import GAMES, get_game, make_agent
from maag.generative import GenerativeGame
from maag.models.dit import FrameDiT
from maag.models.flow import stack_context, to_unit
from maag.models.logicnet import LogicNet
from maag.numerical import DigitTokenizer, Record
from maag.train.logicnet import LogicNetRecipe, LogicNetTask
from maag.transitions import TransitionSampler, load_episodes

PACMAN = get_game("pacman").spec


def test_record_applies_effects_exactly_within_ranges():
    record = Record(PACMAN)
    record.apply(["pellet", "pellet", "power_pellet", "ghost_eaten"])
    assert record.values == {"score": 270, "lives": 3}
    record.apply(["death"] * 2)
    assert record.values == {"score": 270, "lives": 1}
    record.apply(["new_game"])
    assert record.values == {"score": 0, "lives": 3}
    full = Record(PACMAN, {"score": 99_995, "lives": 3})
    full.apply(["pellet"])
    assert full.values == {"score": 99_999, "lives": 3}  # saturates, never wraps


def test_record_starts_a_new_game_when_the_last_life_is_lost():
    """The rules' own consequence of the values (EventSpec.when) is the record's to apply:
    LogicNet telling only the death still starts a new game, which sends Pac-Man home."""
    record = Record(PACMAN, {"score": 120, "lives": 1}, player=(40, 40), bounds=(0, 0, 112, 124))
    record.player = (60, 40)
    assert record.apply(["pellet", "death"]) == ("pellet", "death", "new_game")
    assert record.values == {"score": 0, "lives": 3} and record.player == (40, 40)
    assert record.apply(["death"]) == ("death",)  # 3 -> 2: nothing fires
    assert record.apply(["death", "new_game"]) == ("death", "new_game")  # told: not twice
    assert record.values == {"score": 0, "lives": 3}


def test_record_refuses_values_out_of_range():
    with pytest.raises(MaagError, match=r"lives=4 is outside 0\.\.3"):
        Record(PACMAN, {"score": 0, "lives": 4})
    with pytest.raises(MaagError, match="values must be"):
        Record(PACMAN, {"score": 0})


@pytest.mark.parametrize("name", sorted(GAMES))
def test_digit_tokens_round_trip_every_value(name):
    spec = get_game(name).spec
    tokens = DigitTokenizer(spec)
    for v in spec.values:
        numbers = np.arange(v.low, v.high + 1)
        rows = np.array([[n if o is v else o.initial for o in spec.values] for n in numbers])
        ids = tokens.batch(torch.from_numpy(rows), torch.ones(len(rows), dtype=torch.bool))
        assert ids.min() >= 1 and ids.max() < tokens.vocab_size
        for n, row_ids in zip(
            numbers[:: max(1, len(numbers) // 3000)],
            ids[:: max(1, len(numbers) // 3000)],
            strict=True,
        ):
            values = spec.initial_values() | {v.name: int(n)}
            assert tokens.encode(values) == row_ids.tolist()
            assert tokens.decode(row_ids.tolist()) == values
    assert (
        tokens.batch(torch.zeros(1, len(spec.values), dtype=torch.long), torch.tensor([False]))
        .eq(0)
        .all()
    )


@pytest.fixture(scope="module")
def traveler_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("traveler")
    write_dataset("traveler", "wanderer", 4, 60, out, seed=1, progress=False)
    return load_episodes(out)


def test_event_tokens_follow_the_digit_tokens_and_tell_counts_apart():
    spec = get_game("pong").spec
    plain, with_events = DigitTokenizer(spec), DigitTokenizer(spec, events=True)
    values = {"left": 3, "right": 12}
    assert with_events.num_tokens == plain.num_tokens + len(spec.events)
    assert with_events.encode(values, [0, 1])[: plain.num_tokens] == plain.encode(values)
    counts = ([0, 0], [1, 0], [0, 1], [2, 0], [0, 2], [1, 1])
    encoded = {tuple(with_events.encode(values, c)) for c in counts}
    assert len(encoded) == len(counts)
    assert max(max(ids) for ids in encoded) < with_events.vocab_size
    assert with_events.encode(values, [5, 0]) == with_events.encode(values, [2, 0])
    batch = with_events.batch(torch.tensor([[3, 12]]), torch.tensor([True]), torch.tensor([[0, 1]]))
    assert batch[0].tolist() == with_events.encode(values, [0, 1])
    assert with_events.decode(with_events.encode(values, [1, 0])) == values
    with pytest.raises(MaagError, match="event counts"):
        with_events.encode(values)
    with pytest.raises(MaagError, match="event counts"):
        with_events.batch(torch.tensor([[3, 12]]), torch.tensor([True]))


def test_logicnet_overfits_a_small_set(traveler_data):
    torch.manual_seed(0)
    recipe = LogicNetRecipe(width=16)
    task = LogicNetTask()
    net = task.build(recipe, get_game("traveler").spec)
    sampler = TransitionSampler(traveler_data, recipe.context_frames, seed=0)
    batch = sampler.sample(64)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(150):
        loss = task.loss(net, batch, recipe, None, "cpu")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.01
    context = stack_context(to_unit(batch["context"]))
    assert torch.equal(net.predict(context, batch["action"]), batch["events"].clamp(max=2))
    assert batch["events"].sum() > 0  # the set holds new buildings to find


@pytest.mark.parametrize(("eval_every", "evaluated_at"), [(2, [2, 4, 5]), (0, [5])])
def test_held_out_scores_are_logged_every_eval_every_steps_and_at_the_last(
    tmp_path, eval_every, evaluated_at
):
    from maag.train.logicnet import train_logicnet

    write_dataset("traveler", "wanderer", 2, 30, tmp_path / "data", seed=1, progress=False)
    write_dataset("traveler", "wanderer", 1, 30, tmp_path / "val", seed=9, progress=False)
    recipe = LogicNetRecipe(
        width=8, steps=5, batch_size=4, log_every=100, eval_every=eval_every,
        data=str(tmp_path / "data"), val_data=str(tmp_path / "val"),
    )  # fmt: skip
    train_logicnet(recipe, tmp_path / "run", progress=False)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    evaluations = [r for r in map(json.loads, lines) if "val_new_building_f1" in r]
    assert [r["step"] for r in evaluations] == evaluated_at
    assert all(0 <= r["val_new_building_f1"] <= 1 for r in evaluations)


def test_logicnet_learns_from_the_generators_drawings_of_its_last_frame(tmp_path):
    from maag.metrics import psnr
    from maag.train.logicnet import DrawnFrames, train_logicnet

    spec = get_game("traveler").spec
    write_dataset("traveler", "wanderer", 2, 30, tmp_path / "data", seed=1, progress=False)
    episodes = load_episodes(tmp_path / "data")
    drawn = DrawnFrames(episodes, spec, "models/traveler", 2, count=8, seed=0)
    assert drawn.frames.shape == (8, 64, 64, 3) and (drawn.target >= 2).all()
    truth = episodes["frames"][drawn.episode, drawn.target - 1]  # the frame drawn
    error = ((drawn.frames.astype(float) - truth) ** 2).mean()
    assert error > 0 and psnr(error) > 20  # drawn, not copied, and close to the engine's

    batch = TransitionSampler(episodes, 2, seed=0).sample(16)
    mixed = drawn.mixed_into(batch, 0.5, torch.Generator().manual_seed(0))
    again = torch.Generator().manual_seed(0)  # the same draws: which rows, which drawings
    swapped = torch.rand(16, generator=again) < 0.5
    picks = torch.randint(8, (int(swapped.sum()),), generator=again).numpy()
    kept = 16 - len(picks)
    assert 0 < kept < 16
    assert torch.equal(mixed["context"][:kept], batch["context"][~swapped])
    assert torch.equal(mixed["events"][:kept], batch["events"][~swapped])
    assert np.array_equal(mixed["context"][kept:, -1].numpy(), drawn.frames[picks])
    before = episodes["frames"][drawn.episode[picks], drawn.target[picks] - 2]
    assert np.array_equal(mixed["context"][kept:, 0].numpy(), before)  # the data's
    events = episodes["events"][drawn.episode[picks], drawn.target[picks]]
    assert np.array_equal(mixed["events"][kept:].numpy(), events)

    with pytest.raises(MaagError, match="drawn_share needs drawn_model"):
        LogicNetTask().build(LogicNetRecipe(drawn_share=0.5), spec)
    with pytest.raises(MaagError, match="drawn_model models/pong plays pong, not traveler"):
        DrawnFrames(episodes, spec, "models/pong", 2, count=4)
    recipe = LogicNetRecipe(
        width=8, steps=2, batch_size=4, eval_every=0, data=str(tmp_path / "data"),
        drawn_share=0.5, drawn_model="models/traveler", drawn_count=4,
    )  # fmt: skip
    train_logicnet(recipe, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "checkpoints" / "step-00000002").is_dir()


def test_an_observer_reads_the_steps_outcome_drawn_with_its_hud_blanked(tmp_path):
    """An observer's input frames end with the step's outcome, HUD left unknown; its
    drawings are outcomes told their own events; it trains and exports beside LogicNet."""
    from maag.generative import load
    from maag.metrics import psnr
    from maag.numerical import blank_hud
    from maag.train.export import export_model, repack_model
    from maag.train.generator import GeneratorRecipe, train_generator
    from maag.train.logicnet import DrawnFrames, train_logicnet
    from maag.transitions import logicnet_logits

    spec = get_game("traveler").spec
    write_dataset("traveler", "wanderer", 2, 30, tmp_path / "data", seed=1, progress=False)
    episodes = load_episodes(tmp_path / "data")
    batch = TransitionSampler(episodes, 2, seed=0).sample(8)
    torch.manual_seed(0)
    observer = LogicNet(event_names=spec.event_names, width=8, observes=True, hud_height=8)
    frames = torch.cat([batch["context"][:, 1:], batch["target"][:, None]], dim=1)
    frames = blank_hud(to_unit(frames), torch.ones(8, dtype=torch.bool), 8)
    expected = observer(stack_context(frames), batch["action"], chance=batch["chance"])
    assert torch.equal(logicnet_logits(observer, batch), expected)
    told_apart = batch["target"].clone()
    told_apart[:, :8] = 255 - told_apart[:, :8]  # another HUD: the same reading
    assert torch.equal(logicnet_logits(observer, batch | {"target": told_apart}), expected)

    drawn = DrawnFrames(episodes, spec, "models/traveler", 2, count=8, seed=0, observes=True)
    truth = episodes["frames"][drawn.episode, drawn.target]  # the outcome drawn
    assert psnr(((drawn.frames.astype(float) - truth) ** 2).mean()) > 20
    mixed = drawn.mixed_into(batch, 1.0, torch.Generator().manual_seed(0))
    again = torch.Generator().manual_seed(0)  # the same draws: every row, which drawings
    torch.rand(8, generator=again)
    picks = torch.randint(8, (8,), generator=again).numpy()
    episode, target = drawn.episode[picks], drawn.target[picks]
    assert np.array_equal(mixed["target"].numpy(), drawn.frames[picks])
    assert np.array_equal(mixed["events"].numpy(), episodes["events"][episode, target])
    assert np.array_equal(mixed["context"][:, -1].numpy(), episodes["frames"][episode, target - 1])

    recipe = LogicNetRecipe(
        width=8, steps=2, batch_size=4, eval_every=0, data=str(tmp_path / "data"),
        observes=True, drawn_share=0.5, drawn_model="models/traveler", drawn_count=4,
    )  # fmt: skip
    train_logicnet(recipe, tmp_path / "observer", progress=False)
    generator = GeneratorRecipe(
        data=str(tmp_path / "data"), preset="XXS", steps=1, batch_size=2, eval_every=0,
        mixed_precision="no",
    )  # fmt: skip
    train_generator(generator, tmp_path / "generator", progress=False)
    run, out = str(tmp_path / "generator"), tmp_path / "model"
    folder = export_model(run, str(out), logicnet_run="models/traveler",
                          observer_run=str(tmp_path / "observer"))  # fmt: skip
    game = load(folder)
    assert game.observer is not None and game.observer.config.observes
    provenance = json.loads((folder / "model.json").read_text())["provenance"]
    assert provenance["observer"]["step"] == 2
    game.reset(0)
    game.step(0)
    repacked = load(repack_model("models/traveler", str(tmp_path / "r"), observer_run=str(folder)))
    shipped = load("models/traveler")
    assert repacked.observer is not None
    for network in ("generator", "logicnet"):
        weights = getattr(shipped, network).state_dict()
        for name, weight in getattr(repacked, network).state_dict().items():
            assert torch.equal(weights[name], weight), name
    assert np.array_equal(repacked.start_frames, shipped.start_frames)
    assert repacked.observed == [True]  # every event, where none are named
    narrowed = repack_model(str(folder), str(tmp_path / "n"), observer_events=[])
    assert json.loads((narrowed / "model.json").read_text())["observer_events"] == []
    assert load(narrowed).observed == [False]
    assert load(repack_model(str(narrowed), str(tmp_path / "kept"))).observed == [False]
    resampling = repack_model(str(narrowed), str(tmp_path / "resampling"), resamples=3)
    assert load(resampling).resamples == 3 and load(folder).resamples == 0
    assert load(repack_model(str(resampling), str(tmp_path / "kept"))).resamples == 3
    with pytest.raises(MaagError, match="where the observer reads otherwise: no observer"):
        repack_model("models/traveler", str(tmp_path / "bad"), resamples=1)
    with pytest.raises(MaagError, match="not traveler events"):
        repack_model(str(folder), str(tmp_path / "bad"), observer_events=["death"])
    with pytest.raises(MaagError, match="the model has no observer"):
        repack_model("models/traveler", str(tmp_path / "bad"), observer_events=[])
    with pytest.raises(MaagError, match="has no LogicNet for an observer to check"):
        repack_model("models/traveler-baseline", str(tmp_path / "r"), observer_run=str(folder))
    with pytest.raises(MaagError, match="give --logicnet-run too"):
        export_model(run, str(out), observer_run=str(tmp_path / "observer"))
    with pytest.raises(MaagError, match="models/traveler has no observer"):
        export_model(run, str(out), logicnet_run="models/traveler", observer_run="models/traveler")
    with pytest.raises(MaagError, match="is not a LogicNet that decides"):
        export_model(run, str(out), logicnet_run=str(tmp_path / "observer"))


def test_played_data_holds_the_models_frames_read_by_the_referee(tmp_path):
    """`maag data --model`: the frames a model draws, with the values and events the
    game's referee reads in them; they fill `played_share` of an observer's batches, each
    row with its camera move."""
    from maag.train.logicnet import PlayedFrames

    definition = get_game("traveler")
    write_dataset(
        "traveler", "wanderer", 2, 20, tmp_path / "played", seed=4, progress=False,
        model="models/traveler",
    )  # fmt: skip
    episodes = load_episodes(tmp_path / "played")
    for e in range(2):
        referee = definition.referee()
        judgement = referee.start(definition.read_frame(episodes["frames"][e, 0]))
        for t in range(1, 21):
            reading = definition.read_frame(episodes["frames"][e, t])
            judgement = referee.judge(int(episodes["actions"][e, t - 1]), reading)
            counts = [judgement.events.count(n) for n in definition.spec.event_names]
            assert episodes["events"][e, t].tolist() == counts
            assert episodes["values"][e, t].tolist() == [judgement.values["score"]]
    write_dataset("traveler", "wanderer", 2, 20, tmp_path / "engine", seed=5, progress=False)
    batch = TransitionSampler(load_episodes(tmp_path / "engine"), 2, seed=0).sample(16)
    played = PlayedFrames([str(tmp_path / "played")], definition.spec, 2, event_share=0.5)
    mixed = played.mixed_into(batch, 0.5, torch.Generator().manual_seed(0))
    swapped = torch.rand(16, generator=torch.Generator().manual_seed(0)) < 0.5
    kept = 16 - int(swapped.sum())
    assert 0 < kept < 16 and torch.equal(mixed["target"][:kept], batch["target"][~swapped])
    # every row keeps its camera move, which an aligned observer moves the outcome against
    assert len(mixed["camera_move"]) == 16
    assert np.array_equal(mixed["camera_move"][:kept], batch["camera_move"][~swapped.numpy()])
    drawn = episodes["frames"].reshape(-1, *episodes["frames"].shape[2:])
    for target in mixed["target"][kept:].numpy():
        assert (drawn == target).all(axis=(1, 2, 3)).any()  # a frame the model drew
    with pytest.raises(MaagError, match="keeps no record"):
        write_dataset(
            "traveler", "wanderer", 1, 5, tmp_path / "b", model="models/traveler-baseline"
        )
    with pytest.raises(MaagError, match="played_share needs played_data"):
        LogicNetTask().build(LogicNetRecipe(played_share=0.5), definition.spec)


def test_a_logicnet_that_reads_the_map_gets_the_views_the_generator_gets(tmp_path):
    from maag.spatial import map_channels
    from maag.train.logicnet import train_logicnet
    from maag.transitions import MapViews, logicnet_logits

    definition = get_game("traveler")
    spec = definition.spec
    write_dataset("traveler", "wanderer", 2, 30, tmp_path / "data", seed=1, progress=False)
    episodes = load_episodes(tmp_path / "data")
    maps = MapViews(episodes, spec, definition.sprite_mask)
    batch = TransitionSampler(episodes, 2, seed=0, maps=maps).sample(8)
    torch.manual_seed(0)
    net = LogicNet(event_names=spec.event_names, width=8, extra_channels=4, hud_height=8)
    extra = map_channels(batch["canvas"], batch["known"], 8)
    expected = net(stack_context(to_unit(batch["context"])), batch["action"], extra=extra,
                   chance=batch["chance"])  # fmt: skip
    assert torch.equal(logicnet_logits(net, batch), expected)
    plain = TransitionSampler(episodes, 2, seed=0).sample(8)
    with pytest.raises(MaagError, match="gather its batches with maps"):
        logicnet_logits(net, plain)
    recipe = LogicNetRecipe(
        width=8, steps=2, batch_size=4, eval_every=0, data=str(tmp_path / "data"),
        map_view=True,
    )  # fmt: skip
    train_logicnet(recipe, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "checkpoints" / "step-00000002").is_dir()
    with pytest.raises(MaagError, match="at a camera it has yet to decide"):
        GenerativeGame(
            maag.load("models/traveler").generator, spec, episodes["frames"][0, :1],
            logicnet=net,
        )  # fmt: skip
    with pytest.raises(MaagError, match="view never moves"):
        LogicNetTask().build(LogicNetRecipe(map_view=True), get_game("pong").spec)


class PerfectEvents(torch.nn.Module):
    """A stand-in LogicNet that reports the events of an engine driven by the same actions."""

    def __init__(self, engine, spec):
        super().__init__()
        self.engine, self.spec = engine, spec
        self.config = SimpleNamespace(
            event_names=spec.event_names,
            context_frames=1,
            focus=0,
            observes=False,
            extra_channels=0,
        )
        self.next_action = 0

    def predict(self, context, action, chance=None, player=None):
        events = self.engine.step(int(action[0])).events
        return torch.tensor([[events.count(name) for name in self.spec.event_names]])


@pytest.mark.parametrize("name", ["traveler", "pacman"])
def test_record_follows_the_engine_with_perfect_events(name):
    """Whatever the generator draws, the plumbing keeps the record exactly the engine's."""
    spec = get_game(name).spec
    engine = maag.make(name, seed=4)
    first = engine.reset()
    tokens = DigitTokenizer(spec)
    torch.manual_seed(0)
    stub = FrameDiT(
        hidden_size=16, depth=1, num_heads=1, num_actions=len(spec.actions),
        cond_vocab_size=tokens.vocab_size, num_cond_tokens=tokens.num_tokens,
    )  # fmt: skip
    game = GenerativeGame(
        stub, spec, first.frame[None], logicnet=PerfectEvents(engine, spec),
        start_cameras=np.array([first.camera]),
    )  # fmt: skip
    shadow = maag.make(name, seed=4)
    shadow_step = shadow.reset()
    agent = make_agent(name, "random", 0)
    step = game.reset()
    assert game.modules == ("numerical",)
    for _ in range(1500 if name == "traveler" else 600):
        action = agent.act(shadow_step)
        step, shadow_step = game.step(action), shadow.step(action)
        assert step.values == shadow_step.values
        assert sorted(step.events) == sorted(shadow_step.events)  # spec order vs time order
        if spec.moves:
            assert step.camera == shadow_step.camera


def test_logicnet_of_another_game_is_refused():
    traveler = get_game("traveler").spec
    stub = FrameDiT(hidden_size=16, depth=1, num_heads=1)
    pong_logic = LogicNet(event_names=get_game("pong").spec.event_names, width=8)
    with pytest.raises(MaagError, match="but traveler has"):
        GenerativeGame(stub, traveler, np.zeros((1, 64, 64, 3), np.uint8), logicnet=pong_logic)
    with pytest.raises(MaagError, match="no numerical module"):
        GenerativeGame(stub, traveler, np.zeros((1, 64, 64, 3), np.uint8), numerical=True)


def test_event_share_brings_rare_events_into_batches():
    episodes, steps = 3, 400
    events = np.zeros((episodes, steps + 1, 3), np.uint8)
    events[0, 17, 0] = events[2, 300, 0] = 1  # rare
    events[1, 50:350, 1] = 1  # common; event 2 never fires
    data = {
        "frames": np.zeros((episodes, steps + 1, 4, 4, 3), np.uint8),
        "actions": np.zeros((episodes, steps), np.int64),
        "values": np.zeros((episodes, steps + 1, 1), np.int32),
        "camera": np.zeros((episodes, steps + 1, 2), np.int32),
        "events": events,
        "chance": np.zeros((episodes, steps + 1, 0), np.uint8),
        "player": np.zeros((episodes, steps + 1, 0), np.int32),
    }
    plain = TransitionSampler(data, 1, seed=0).sample(4000)["events"].sum(0)
    assert plain[0] < 40 and plain[2] == 0
    shared = TransitionSampler(data, 1, seed=0, event_share=0.5).sample(4000)["events"].sum(0)
    assert 900 < shared[0] < 1100  # half the batch with an event, half of that the rare one
    assert shared[1] > plain[1] and shared[2] == 0
    with pytest.raises(MaagError, match=r"event_share must be within 0\.\.1"):
        TransitionSampler(data, 1, event_share=1.5)
    # a window adds the transitions after each event and the episodes' starts
    windowed = TransitionSampler(data, 1, seed=0, event_share=1.0, event_window=3)
    assert [len(c) for c in windowed.by_event] == [6, 302, 9]
    rare = windowed.sample(3000)["events"].sum(0)[0]
    assert 250 < rare < 450  # a third of the batch from the rare class, a third of that fires


def test_close_calls_fill_their_share_of_the_batches_after_the_events():
    steps = 50
    frames = np.zeros((2, steps + 1, 4, 4, 3), np.uint8)
    frames[..., 0, 0, 0] = np.arange(2)[:, None]  # each frame tells its episode and step
    frames[..., 0, 0, 1] = np.arange(steps + 1)
    data = {
        "frames": frames,
        "actions": np.zeros((2, steps), np.int64),
        "values": np.zeros((2, steps + 1, 1), np.int32),
        "camera": np.zeros((2, steps + 1, 2), np.int32),
        "events": np.zeros((2, steps + 1, 1), np.uint8),
        "chance": np.zeros((2, steps + 1, 0), np.uint8),
        "player": np.zeros((2, steps + 1, 0), np.int32),
    }
    data["events"][1, 10, 0] = 1
    close = np.array([3, 77])  # flat: episode * steps + target - 1 -> frames (0, 4), (1, 28)
    sampler = TransitionSampler(data, 1, 0, None, 0.25, 1, close, 1.0)
    targets = sampler.sample(4000)["target"][:, 0, 0, :2].numpy()
    drawn = Counter(map(tuple, targets.tolist()))
    assert set(drawn) == {(1, 10), (0, 4), (1, 28)}  # the event, else only the close calls
    assert 900 < drawn[(1, 10)] < 1100
    with pytest.raises(MaagError, match=r"close_call_share must be within 0\.\.1"):
        TransitionSampler(data, 1, close_calls=close, close_call_share=2.0)
    # a window adds the transitions after each close call, within its episode
    close = np.array([3, 48])  # (0, 4) and (0, 49): the episode ends at frame 50
    sampler = TransitionSampler(
        data, 1, close_calls=close, close_call_share=1.0, close_call_window=3
    )
    targets = sampler.sample(2000)["target"][:, 0, 0, :2].numpy()
    drawn = Counter(map(tuple, targets.tolist()))
    assert set(drawn) == {(0, 4), (0, 5), (0, 6), (0, 49), (0, 50)}
    assert min(drawn.values()) > 300
    with pytest.raises(MaagError, match="close_call_window must be at least 1"):
        TransitionSampler(data, 1, close_call_window=0)


def test_alternatives_fill_their_share_with_their_own_target_and_tokens():
    steps = 50
    frames = np.zeros((2, steps + 1, 4, 4, 3), np.uint8)
    frames[..., 0, 0, 1] = np.arange(steps + 1)  # each frame tells its step
    data = {
        "frames": frames,
        "actions": np.zeros((2, steps), np.int64),
        "values": np.zeros((2, steps + 1, 1), np.int32),
        "camera": np.zeros((2, steps + 1, 2), np.int32),
        "events": np.zeros((2, steps + 1, 1), np.uint8),
        "chance": np.zeros((2, steps + 1, 0), np.uint8),
        "player": np.zeros((2, steps + 1, 0), np.int32),
    }
    with pytest.raises(MaagError, match="alternative_share needs data with alternative"):
        TransitionSampler(data, 1, alternative_share=0.5)
    data |= {
        "alt_step": np.array([[1, 20]]),
        "alt_frames": np.full((1, 4, 4, 3), 200, np.uint8),
        "alt_values": np.array([[7]], np.int32),
        "alt_events": np.array([[1]], np.uint8),
        "alt_camera": np.array([[3, 0]], np.int32),
    }
    batch = TransitionSampler(data, 1, 0, alternative_share=0.5).sample(2000)
    other = batch["alternative"]
    assert 900 < int(other.sum()) < 1100
    assert (batch["target"][other] == 200).all() and (batch["values"][other] == 7).all()
    assert (batch["events"][other] == 1).all()
    assert (batch["camera_move"][other.numpy()] == [3, 0]).all()
    assert (batch["context"][other][..., 0, 0, 1] == 19).all()  # the true step's context
    assert (batch["target"][~other] != 200).all() and (batch["events"][~other] == 0).all()
    paired = TransitionSampler(data, 1, 0, alternative_share=0.5, alternative_pairs=True)
    batch = paired.sample(2000)
    other, told_alternative = batch["alternative"], (batch["target"] == 200).flatten(1).all(1)
    assert 900 < int(other.sum()) < 1100 and not (told_alternative & ~other).any()
    assert 0.4 < float(told_alternative.sum() / other.sum()) < 0.6
    told_true = other & ~told_alternative  # the same step told its true outcome
    assert (batch["target"][told_true][..., 0, 0, 1] == 20).all()
    assert (batch["events"][told_true] == 0).all() and (batch["values"][told_true] == 0).all()


class LookupGenerator(torch.nn.Module):
    """Draws the frame a table gives for (last context frame, tokens): what a generator
    that obeys its tokens (or ignores them) would draw."""

    def __init__(self, table: dict, tokens: DigitTokenizer):
        super().__init__()
        self.table = table
        self.config = SimpleNamespace(
            context_frames=4, hud_height=8, extra_channels=0, num_cond_tokens=tokens.num_tokens
        )

    def forward(
        self, x, sigma, base, context, action, corruption, extra, cond_ids, chance=None,
        context_moves=None,
    ):  # fmt: skip
        frames = [
            self.table[last.numpy().tobytes(), tuple(ids.tolist())]
            for last, ids in zip(context[:, -3:], cond_ids, strict=True)
        ]
        return to_unit(torch.from_numpy(np.stack(frames))) - base


@pytest.mark.parametrize("obeys", [True, False])
def test_told_events_drawn_says_whether_the_generator_draws_what_it_is_told(tmp_path, obeys):
    from maag.metrics import told_events_drawn
    from maag.numerical import blank_hud

    write_dataset("pong", "tracker", 1, 300, tmp_path, seed=4, progress=False)
    episodes = load_episodes(tmp_path)
    tokens = DigitTokenizer(GAMES["pong"].spec, events=True)
    table = {}
    for (e, t), alt_frame, alt_values, alt_events in zip(
        episodes["alt_step"], episodes["alt_frames"], episodes["alt_values"],
        episodes["alt_events"], strict=True,
    ):  # fmt: skip
        last = to_unit(torch.from_numpy(episodes["frames"][e, t - 1 : t]))
        key = blank_hud(last, torch.ones(1, dtype=torch.bool), 8)[0].numpy().tobytes()
        true = episodes["frames"][e, t]
        for values, events, frame in (
            (episodes["values"][e, t], episodes["events"][e, t], true),
            (alt_values, alt_events, alt_frame if obeys else true),
        ):
            ids = tokens.batch(
                torch.from_numpy(values[None]).long(), torch.ones(1, dtype=torch.bool),
                torch.from_numpy(events[None]).long(),
            )[0]  # fmt: skip
            table[key, tuple(ids.tolist())] = frame
    read = GAMES["pong"].read_frame
    told = told_events_drawn(LookupGenerator(table, tokens), episodes, read, tokens)
    assert told == {"true": 1.0, "alternative": 1.0 if obeys else 0.0, "count": len(table) // 2}


class ReplayGenerator(torch.nn.Module):
    """Draws, for a context and action seen in `episodes`, the frame that followed them
    there (`exact`), or else the context's last frame again: a perfect generator, or
    copy-last-frame."""

    def __init__(self, episodes: dict, exact: bool):
        super().__init__()
        self.exact = exact
        self.config = SimpleNamespace(
            context_frames=2, hud_height=8, extra_channels=0, num_cond_tokens=0
        )
        transitions = TransitionSampler(episodes, 2)
        every = transitions.gather(*transitions.evenly_spaced(episodes["actions"].size))
        self.next = {
            (context.numpy().tobytes(), int(action)): target.numpy()
            for context, action, target in zip(
                every["context"], every["action"], every["target"], strict=True
            )
        }

    def forward(
        self, x, sigma, base, context, action, corruption, extra, cond_ids, chance=None,
        context_moves=None,
    ):  # fmt: skip
        drawn = []
        for frames, act in zip(context.unflatten(1, (2, 3)), action, strict=True):
            as_uint8 = ((frames + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
            drawn.append(self.next[as_uint8.tobytes(), int(act)] if self.exact else as_uint8[-1])
        return to_unit(torch.from_numpy(np.stack(drawn))) - base


@pytest.mark.parametrize("exact", [True, False])
def test_teacher_forced_reading_counts_drawings_read_as_the_engines_frame(tmp_path, exact):
    from maag.metrics import teacher_forced_reading

    write_dataset("pong", "tracker", 2, 200, tmp_path, seed=6, progress=False)
    episodes = load_episodes(tmp_path)
    read = GAMES["pong"].read_frame
    generator = ReplayGenerator(episodes, exact)
    scores = teacher_forced_reading(generator, episodes, read, count=400)
    if exact:
        assert scores["all"] == 1.0 and set(scores["fields"].values()) == {1.0}
        assert scores["event_all"] == 1.0
        return
    # copy-last-frame: right where nothing the reader reads changed, the ball almost never
    episode, target = TransitionSampler(episodes, 2).evenly_spaced(400)
    truth = [read(episodes["frames"][e, t]) for e, t in zip(episode, target, strict=True)]
    last = [read(episodes["frames"][e, t - 1]) for e, t in zip(episode, target, strict=True)]
    assert scores["all"] == np.mean([a == b for a, b in zip(truth, last, strict=True)])
    assert scores["fields"]["ball"] == np.mean(
        [a.ball == b.ball for a, b in zip(truth, last, strict=True)]
    )
    assert scores["fields"]["ball"] < 0.2 < scores["fields"]["values"]
    fired = episodes["events"][episode, target].sum(axis=1) > 0
    assert scores["event_steps"] == fired.sum() > 0 and scores["event_all"] < 1.0


@pytest.mark.parametrize("exact", [True, False])
def test_reading_by_event_scores_the_steps_where_each_event_fires(tmp_path, exact):
    from maag.metrics import reading_by_event

    write_dataset("pong", "tracker", 2, 200, tmp_path, seed=6, progress=False)
    episodes = load_episodes(tmp_path)
    read, names = GAMES["pong"].read_frame, GAMES["pong"].spec.event_names
    scores = reading_by_event(ReplayGenerator(episodes, exact), episodes, read, names, count=5)
    fired = {n: np.argwhere(episodes["events"][:, 1:, k]) for k, n in enumerate(names)}
    assert set(scores) == {n for n, steps in fired.items() if len(steps)} != set()
    for name, score in scores.items():
        assert score["steps"] == min(5, len(fired[name]))
        if exact:
            assert score["all"] == 1.0
            continue
        picked = fired[name][np.linspace(0, len(fired[name]) - 1, score["steps"]).astype(int)]
        frames = episodes["frames"]
        same = [read(frames[e, t + 1]) == read(frames[e, t]) for e, t in picked]
        assert score["all"] == np.mean(same) < 1.0  # an event changes what the reader reads


def test_pongs_close_calls_are_balls_at_a_paddle_face(tmp_path):
    """The shipped Pong LogicNet's likeliest quiet transitions: mostly a ball at (or just
    back from) a paddle face, a return, where a uniform draw finds one in ten."""
    from maag.games.pong import read_frame
    from maag.transitions import close_calls

    write_dataset("pong", "tracker", 2, 300, tmp_path, seed=5, progress=False)
    episodes = load_episodes(tmp_path)
    flat = close_calls(episodes, maag.load("models/pong").logicnet, 20)
    episode, target = flat // 300, flat % 300 + 1
    assert len(flat) == 20 and not episodes["events"][episode, target].any()
    balls = [
        read_frame(episodes["frames"][e, t]).ball for e, t in zip(episode, target, strict=True)
    ]
    assert sum(b is not None and (b[0] <= 6 or b[0] >= 56) for b in balls) >= 8


def test_episodes_of_several_folders_join_when_they_fit(tmp_path, traveler_data):
    """`load_episodes(..., more=...)`: another agent's play of the same game joins the
    data; a folder with another episode length or game is refused in one line."""
    write_dataset("traveler", "random", 2, 60, tmp_path / "random", seed=2, progress=False)
    first = tmp_path / "wanderer"
    write_dataset("traveler", "wanderer", 4, 60, first, seed=1, progress=False)
    joined = load_episodes(first, more=[tmp_path / "random"])
    assert joined["frames"].shape[0] == 6
    assert np.array_equal(joined["frames"][:4], traveler_data["frames"])
    write_dataset("traveler", "random", 1, 30, tmp_path / "short", seed=3, progress=False)
    with pytest.raises(MaagError, match="episode length"):
        load_episodes(first, more=[tmp_path / "short"])
    write_dataset("pong", "random", 1, 60, tmp_path / "pong", seed=3, progress=False)
    with pytest.raises(MaagError, match="pong data"):
        load_episodes(first, more=[tmp_path / "pong"])


def test_a_logicnet_that_looks_around_the_player(tmp_path):
    """`focus`: a window of the frames centred on the player's view pixel (0 off the
    frame), told where the engine's Pac-Man stood; grown from a LogicNet without it, it
    first computes what that one did; data written before positions were stored is
    refused in one line."""
    from maag.train.logicnet import train_logicnet
    from maag.train.loop import warm_start
    from maag.transitions import logicnet_logits

    spec = get_game("pacman").spec
    write_dataset("pacman", "seeker", 2, 40, tmp_path / "data", seed=3, progress=False)
    episodes = load_episodes(tmp_path / "data")
    batch = TransitionSampler(episodes, 2).gather(np.array([0, 1, 1]), np.array([1, 20, 40]))
    places = episodes["player"] - episodes["camera"]
    assert batch["player"].tolist() == [places[0, 0].tolist(), *places[1, [19, 39]].tolist()]

    plain = dict(width=8, steps=2, data=str(tmp_path / "data"), eval_every=0)
    train_logicnet(LogicNetRecipe(**plain), tmp_path / "run", progress=False)
    before = LogicNetTask().build(LogicNetRecipe(width=8), spec)
    warm_start(before, str(tmp_path / "run"), spec, "logicnet")
    closer = LogicNetTask().build(LogicNetRecipe(width=8, focus=16), spec)
    warm_start(closer, str(tmp_path / "run"), spec, "logicnet")
    assert torch.allclose(logicnet_logits(closer, batch), logicnet_logits(before, batch))

    frames = torch.zeros(1, 3, 64, 64)
    frames[0, :, 8 + 30, 20] = 1.0  # the player's pixel, below the 8-row HUD
    window = closer._around(frames, torch.tensor([[20, 30]]))
    assert window.shape == (1, 3, 16, 16) and window[0, :, 8, 8].tolist() == [1.0] * 3
    edge = closer._around(frames - 1, torch.tensor([[0, 0]]))  # a black frame's left edge
    assert not edge[0, :, :, :8].any() and (edge[0, :, :, 8:] == -1).all()  # HUD rows above

    drop_arrays(tmp_path / "data", lambda name: name == "player")
    old = load_episodes(tmp_path / "data")
    assert old["player"].shape == (2, 41, 0)
    batch = TransitionSampler(old, 2).gather(np.array([0]), np.array([1]))
    with pytest.raises(MaagError, match="holds no player positions"):
        LogicNetTask().loss(closer, batch, LogicNetRecipe(focus=16), None, "cpu")


def test_a_logicnet_that_reads_the_tiles_around_the_player(tmp_path):
    """`tiles`: the focus window read as tile ids of the training frames' set, centred on
    the player's tile, one more id outside the frame; grown from a LogicNet without it, it
    first computes what that one did; it trains, saves and loads with its set, and a
    recipe asking for it without a focus window is refused."""
    from maag.generative import load_network
    from maag.train.export import restore_logicnet
    from maag.train.logicnet import train_logicnet
    from maag.train.loop import warm_start
    from maag.transitions import logicnet_logits

    spec = get_game("pacman").spec
    write_dataset("pacman", "seeker", 2, 40, tmp_path / "data", seed=3, progress=False)
    episodes = load_episodes(tmp_path / "data")
    recipe = LogicNetRecipe(width=4, focus=20, tiles=True, max_tiles=96)
    network = LogicNetTask().build(recipe, spec, episodes)
    frames = torch.from_numpy(episodes["frames"][0, :2])
    context = stack_context(to_unit(frames)[None])  # (1, 3K, H, W)
    player = torch.from_numpy(episodes["player"][0, 1] - episodes["camera"][0, 1])[None]
    window = network._tiles_around(context, player)
    assert window.shape == (1, 2, 5, 5)
    col, row = player[0, 0] // 4, (player[0, 1] + spec.hud_height) // 4
    ids = network.tile_ids(to_unit(frames)).view(2, 16, 16)
    assert torch.equal(window[0, :, 2, 2], ids[:, row, col])  # the player's tile at the centre
    corner = network._tiles_around(context, torch.tensor([[0, -spec.hud_height]]))
    assert (corner[0, :, :2, :] == network.unknown + 1).all()  # above the frame
    assert torch.equal(corner[0, :, 2:, 2:], ids[:, :3, :3])

    plain = dict(width=4, steps=2, data=str(tmp_path / "data"), eval_every=0)
    batch = TransitionSampler(episodes, 2).gather(np.array([0, 1]), np.array([5, 30]))
    train_logicnet(LogicNetRecipe(**plain), tmp_path / "plain", progress=False)
    before = restore_logicnet(str(tmp_path / "plain"))[0]
    warm_start(network, str(tmp_path / "plain"), spec, "logicnet")
    assert torch.allclose(logicnet_logits(network, batch), logicnet_logits(before, batch))

    train_logicnet(LogicNetRecipe(**plain, focus=20, tiles=True), tmp_path / "run", progress=False)
    trained = restore_logicnet(str(tmp_path / "run"))[0]
    trained.save_pretrained(tmp_path / "saved")
    loaded = load_network(LogicNet, tmp_path / "saved", "LogicNet weights")
    assert int(loaded.tile_count) == int(trained.tile_count) > 0
    assert torch.equal(logicnet_logits(loaded, batch), logicnet_logits(trained, batch))

    with pytest.raises(MaagError, match="a focus window of tiles"):
        LogicNetTask().build(LogicNetRecipe(tiles=True), spec)
