"""A camera that follows the player (GameSpec.follow): the record keeps Pac-Man's camera,
clamped at the maze's border and back at the start after a death, exactly as the engine."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from standins import EngineEvents, ObservedEvents, Replay

import maag
from maag.data import episode_seeds, generate_episode
from maag.errors import MaagError
from maag.games import get_game, make_agent
from maag.games.pacman import CUSTOM_EXAMPLE, WALL, PacmanEngine
from maag.generative import GenerativeGame, load, save_model_folder
from maag.models.dit import FrameDiT
from maag.models.flow import stack_context, to_uint8, to_unit
from maag.models.logicnet import LogicNet
from maag.numerical import DigitTokenizer, Record, blank_hud
from maag.spatial import generator_inputs
from maag.spec import EventSpec, Follow, GameSpec
from maag.transitions import MapViews, TransitionSampler, logicnet_logits

PACMAN = get_game("pacman")
SPEC = PACMAN.spec
SMALL_MAZE = "##########\n#P..G..G.#\n#.######.#\n#........#\n##########\n"


def follow_engine(engine, agent, steps, spec=SPEC):
    """Play `engine` with `agent`, a record fed the engine's events and actions beside it;
    yields (engine step, record) after every step."""
    step = engine.reset()
    record = Record(spec, camera=step.camera, player=step.player, bounds=step.bounds)
    yield step, record
    for _ in range(steps):
        action = agent.act(step)
        step = engine.step(action)
        told = [e for e in step.events if spec.event(e).when is None]  # the rest it fires
        assert record.apply(told, action) == step.events
        assert record.values == step.values
        yield step, record


@pytest.mark.parametrize(
    "maze, agent, seed",
    [
        (None, "seeker", 0), (None, "seeker", 1), (None, "random", 2),
        (CUSTOM_EXAMPLE, "seeker", 3), (CUSTOM_EXAMPLE, "random", 4),
        (SMALL_MAZE, "random", 5),
    ],
)  # fmt: skip
def test_the_record_keeps_the_engine_camera(maze, agent, seed):
    engine = PacmanEngine(seed, maze=maze)
    xs, ys, events = set(), set(), []
    for step, record in follow_engine(engine, make_agent("pacman", agent, seed), 3000):
        assert record.camera == step.camera, len(events)
        assert record.player == step.player, len(events)
        xs.add(step.camera[0])
        ys.add(step.camera[1])
        events += step.events
    assert "death" in events and "new_game" in events
    left, top, right, bottom = step.bounds
    if maze == SMALL_MAZE:  # smaller than the view: padded, the camera never moves
        assert (xs, ys) == ({0}, {0})
    elif agent == "seeker":  # the seeker roams the maze: the camera meets every border
        assert (min(xs), max(xs)) == (left, right - 64)
        assert (min(ys), max(ys)) == (top, bottom - 56)


def test_the_start_flags_and_the_bounds_matter():
    """Without the death's `to_start` flag, or with the world unbounded, the record strays."""
    events = tuple(dataclasses.replace(e, to_start=False) for e in SPEC.events)
    no_restart = dataclasses.replace(SPEC, events=events)
    engine = PacmanEngine(0)
    first = engine.reset()
    records = {
        "no restart": Record(no_restart, player=first.player, bounds=first.bounds),
        "unbounded": Record(SPEC, player=first.player, bounds=(-9999, -9999, 9999, 9999)),
    }
    agent, step, strayed = make_agent("pacman", "random", 0), first, set()
    for _ in range(500):
        action = agent.act(step)
        step = engine.step(action)
        for name, record in records.items():
            record.apply(step.events, action)
            if record.camera != step.camera:
                strayed.add(name)
    assert strayed == set(records)


# -- the generative game ---------------------------------------------------------------


@pytest.fixture(scope="module")
def episode():
    """A seeker's episode with deaths (camera jumps back) and clamped cameras; its player
    positions are the engine's, replayed from the episode's seed."""
    steps, seed = 400, 8
    episode = generate_episode("pacman", "seeker", steps, seed=seed, index=0)
    engine_seed, _ = episode_seeds(seed, 0)
    engine = PACMAN.engine(engine_seed)
    start = engine.reset(engine_seed)
    players = [start.player] + [engine.step(int(a)).player for a in episode["actions"]]
    death = list(SPEC.event_names).index("death")
    assert episode["events"][:, death].sum() >= 1
    cameras = episode["camera"]
    assert {0, start.bounds[2] - 64} <= set(cameras[:, 0])  # clamped left and right
    assert {0, start.bounds[3] - 56} <= set(cameras[:, 1])  # and at the top and bottom
    assert np.array_equal(episode["player"], players)  # the shards hold his places
    return episode | {"bounds": np.array([start.bounds])}


def play(episode, aligned_observer=False, **switches):
    """The episode replayed by stand-ins; LogicNet's tells every event but those the rules
    fire on their own (a new game when the last life is lost): the record fires them. With
    `aligned_observer` a stand-in aligned observer reads the recorded events too."""
    generator = Replay(episode["frames"], SPEC)
    told = episode["events"].copy()
    told[:, [e.when is not None for e in SPEC.events]] = 0
    observer = None
    if aligned_observer:
        observer = ObservedEvents(episode["events"], SPEC, lambda: game, aligned=True)
    game = GenerativeGame(
        generator, SPEC, episode["frames"][:1], logicnet=EngineEvents(told, SPEC, focus=8),
        start_cameras=episode["camera"][:1], sprite_mask=PACMAN.sprite_mask,
        start_players=episode["player"][:1], start_bounds=episode["bounds"], observer=observer,
        **switches,
    )  # fmt: skip
    steps = [game.reset(0)]
    for action in episode["actions"]:
        steps.append(game.step(int(action)))
    return game, generator, steps


def test_play_follows_the_engine_and_builds_the_map_views_training_sees(episode):
    game, generator, steps = play(episode)
    assert game.modules == ("numerical", "spatial")
    assert [s.camera for s in steps] == [tuple(c) for c in episode["camera"]]
    assert [s.player for s in steps] == [tuple(p) for p in episode["player"]]
    assert [list(s.values.values()) for s in steps] == episode["values"].tolist()
    counts = [[s.events.count(name) for name in SPEC.event_names] for s in steps[1:]]
    assert counts == episode["events"][1:].tolist()  # the new game included
    # a LogicNet that looks around the player is told his view pixel before each step
    places = episode["player"][:-1] - episode["camera"][:-1]
    assert game.logicnet.players == [tuple(p) for p in places.tolist()]
    views = MapViews({k: v[None] for k, v in episode.items()}, SPEC, PACMAN.sprite_mask)
    hud = SPEC.hud_height
    for t in range(1, len(episode["frames"])):
        batch = views.views(np.zeros(1, int), np.array([t]))
        last = to_unit(torch.from_numpy(episode["frames"][t - 1]))[None]
        moves = (episode["camera"][t] - episode["camera"][t - 1])[None]
        base, extra = generator_inputs(
            last, batch["canvas"], batch["known"], hud, moves, batch["sprites"]
        )
        base = blank_hud(base, torch.ones(1, dtype=torch.bool), hud)  # digits from tokens
        played_base, played_extra, _ = generator.seen[t - 1]
        assert torch.equal(played_extra, extra), t
        assert torch.equal(played_base, base), t
    known = [extra[0, 3] > 0 for _, extra, _ in generator.seen]
    assert max(k.float().mean() for k in known) > 0.8  # coming back shows what was seen
    # each step's chance draws (one per ghost) are told to both networks and reported
    draws = [s.chance for s in steps[1:]]
    assert generator.told == game.logicnet.told == draws
    assert {len(d) for d in draws} == {2} and len(set(draws)) > 50
    assert max(max(d) for d in draws) < 12
    _, _, again = play(episode)
    assert [s.chance for s in again[1:]] == draws  # drawn from the game's seeded noise


def test_a_new_game_puts_the_eaten_pellets_back_in_the_map_before_its_frame_is_drawn(episode):
    """Play (checked above to give the generator the views training sees) and training
    restore the map where the rules bring the pellets back: the view of the new game's
    first frame shows them where the seeker had eaten them."""
    (t,) = np.flatnonzero(episode["events"][:, SPEC.event_names.index("new_game")])
    assert SPEC.event("new_game").restores_world and SPEC.event("level_cleared").restores_world
    stale = dataclasses.replace(
        SPEC, events=tuple(dataclasses.replace(e, restores_world=False) for e in SPEC.events)
    )
    at = np.zeros(1, int), np.array([t])
    episodes = {k: v[None] for k, v in episode.items()}
    view = MapViews(episodes, SPEC, PACMAN.sprite_mask).views(*at)
    before = MapViews(episodes, stale, PACMAN.sprite_mask).views(*at)
    back = (view["canvas"][0] != before["canvas"][0]).any(-1)
    assert back.sum() >= 10 * 16  # ten eaten pellet tiles at least
    frame = episode["frames"][t]
    shown = back & ~PACMAN.sprite_mask(frame)[SPEC.hud_height :]
    assert shown.sum() >= 10 * 16  # not under a sprite: the frame shows them back
    np.testing.assert_array_equal(view["canvas"][0][shown], frame[SPEC.hud_height :][shown])


def test_context_frames_moved_by_the_camera_moves_play_tells_line_up_with_the_next_frame(episode):
    _, generator, _ = play(episode)
    transitions = TransitionSampler({k: v[None] for k, v in episode.items()}, 4)
    network = FrameDiT(hidden_size=32, depth=1, num_heads=2, hud_height=SPEC.hud_height)
    misplaced = {"aligned": 0, "as shown": 0}
    for t in range(1, len(episode["frames"])):
        batch = transitions.gather(np.zeros(1, int), np.array([t]))
        assert np.array_equal(generator.moves[t - 1].numpy(), batch["context_moves"]), t
        context = stack_context(to_unit(batch["context"]))
        aligned = network.align(context, torch.as_tensor(batch["context_moves"]))
        walls = np.array(PACMAN.read_frame(batch["target"][0].numpy()).tiles) == WALL
        for name, frames in (("aligned", aligned), ("as shown", context)):
            for frame in to_uint8(frames.unflatten(1, (4, 3)))[0].numpy():
                tiles = np.array(PACMAN.read_frame(frame).tiles)  # None where revealed
                misplaced[name] += int(((tiles == WALL) != walls)[tiles != None].sum())  # noqa: E711
    assert misplaced["aligned"] == 0 and misplaced["as shown"] > 1000, misplaced


def test_an_aligned_observer_reads_the_outcome_where_the_frame_before_shows_it(episode):
    """An `aligned` observer gets each step's outcome moved against the step's camera move,
    so its walls lie where the frame before showed them (deaths and clamps included)."""
    transitions = TransitionSampler({k: v[None] for k, v in episode.items()}, 2)
    misplaced = {}
    for aligned in (True, False):
        observer = LogicNet(
            context_frames=2, num_actions=len(SPEC.actions), event_names=SPEC.event_names,
            chance=SPEC.chance, hud_height=SPEC.hud_height, observes=True, aligned=aligned,
        )  # fmt: skip
        seen = []
        observer.forward = lambda context, *args, seen=seen, **kwargs: seen.append(context)
        misplaced[aligned] = 0
        for t in range(1, len(episode["frames"])):
            logicnet_logits(observer, transitions.gather(np.zeros(1, int), np.array([t])))
            before, outcome = to_uint8(seen[-1].unflatten(1, (2, 3)))[0].numpy()
            walls = np.array(PACMAN.read_frame(before).tiles) == WALL
            tiles = np.array(PACMAN.read_frame(outcome).tiles)  # None where revealed
            misplaced[aligned] += int(((tiles == WALL) != walls)[tiles != None].sum())  # noqa: E711
    assert misplaced[True] == 0 and misplaced[False] > 1000, misplaced
    with pytest.raises(ValueError, match="needs observes"):
        LogicNet(aligned=True)
    game, _, steps = play(episode, aligned_observer=True)  # play tells it the record's move
    assert [s.camera for s in steps] == [tuple(c) for c in episode["camera"]]
    assert len(game.observer.inputs) == len(steps) - 1 and game.redrawn == 0
    for frames in game.observer.inputs:
        before, outcome = to_uint8(frames.unflatten(1, (2, 3)))[0].numpy()
        walls = np.array(PACMAN.read_frame(before).tiles) == WALL
        tiles = np.array(PACMAN.read_frame(outcome).tiles)
        assert not ((tiles == WALL) != walls)[tiles != None].any()  # noqa: E711


def test_the_camera_runs_with_the_numerical_module_alone(episode):
    game, _, steps = play(episode, spatial=False)
    assert game.modules == ("numerical",)
    assert [s.camera for s in steps] == [tuple(c) for c in episode["camera"]]


def test_without_start_positions_there_is_no_spatial_module(episode):
    generator = Replay(episode["frames"], SPEC)
    logicnet = EngineEvents(episode["events"], SPEC)
    game = GenerativeGame(generator, SPEC, episode["frames"][:1], logicnet=logicnet)
    assert game.available == ("numerical",)
    assert game.reset(0).camera is None
    with pytest.raises(MaagError, match="needs the player's start and the world's bounds"):
        GenerativeGame(generator, SPEC, episode["frames"][:1], logicnet=logicnet, spatial=True)
    with pytest.raises(MaagError, match=r"start bounds have shape \(2, 4\), not \(1, 4\)"):
        GenerativeGame(
            generator, SPEC, episode["frames"][:1], logicnet=logicnet,
            start_players=episode["player"][:1], start_bounds=np.zeros((2, 4)),
        )  # fmt: skip


def tiny_full_game(**starts):
    from maag.models.dit import FrameDiT
    from maag.models.logicnet import LogicNet

    torch.manual_seed(0)
    tokens = DigitTokenizer(SPEC)
    generator = FrameDiT(
        hidden_size=32, depth=1, num_heads=2, extra_channels=4, hud_height=8,
        num_actions=len(SPEC.actions), cond_vocab_size=tokens.vocab_size,
        num_cond_tokens=tokens.num_tokens,
    )  # fmt: skip
    logicnet = LogicNet(event_names=SPEC.event_names, num_actions=len(SPEC.actions), width=8)
    return generator, logicnet


def tiny_model_folder(folder):
    """A tiny full Pac-Man model saved in `folder`; returns the engine's start step."""
    generator, logicnet = tiny_full_game()
    start = maag.make("pacman").reset()
    save_model_folder(
        folder, generator, SPEC, start.frame[None], np.array([start.camera]), 2,
        {"test": True}, logicnet, start_players=np.array([start.player]),
        start_bounds=np.array([start.bounds]),
    )  # fmt: skip
    return start


def test_a_model_folder_keeps_the_start_positions_and_sessions_continue(tmp_path):
    start = tiny_model_folder(tmp_path / "m")
    game = load(tmp_path / "m")
    assert game.available == ("numerical", "spatial")
    first = game.reset(0)
    assert (first.camera, first.player, first.bounds) == (start.camera, start.player, start.bounds)
    game.record.apply(["death"], SPEC.actions.index("left"))  # back home, whatever the move
    assert (game.record.player, game.record.camera) == (start.player, start.camera)
    actions = [3, 3, 1, 4, 2, 0, 3, 3, 1, 1] * 2
    for a in actions:
        game.step(a)
    game.save_session(tmp_path / "s.safetensors")
    expected = [game.step(a) for a in actions]
    other = load(tmp_path / "m")
    other.load_session(tmp_path / "s.safetensors")
    assert other.record.home == start.player
    for a, want in zip(actions, expected, strict=True):
        got = other.step(a)
        assert np.array_equal(got.frame, want.frame)
        assert (got.values, got.camera, got.player) == (want.values, want.camera, want.player)
    # a folder whose start camera is not where the camera follows the player is refused
    generator, logicnet = tiny_full_game()
    save_model_folder(
        tmp_path / "bad", generator, SPEC, start.frame[None], np.array([(0, 0)]), 2,
        {"test": True}, logicnet, start_players=np.array([start.player]),
        start_bounds=np.array([start.bounds]),
    )  # fmt: skip
    with pytest.raises(MaagError, match=r"camera \(0, 0\) is not where pacman's camera follows"):
        load(tmp_path / "bad").reset(0)


def test_export_finds_the_start_positions_from_the_data_seeds(tmp_path):
    from maag.data import Dataset, write_dataset
    from maag.train.export import start_positions

    write_dataset("pacman", "random", 3, 2, tmp_path / "d", seed=7, progress=False)
    dataset = Dataset(tmp_path / "d")
    shard = dataset.load_shard(0)
    frames, cameras = shard["frames"][:, 0], shard["camera"][:, 0]
    players, bounds = start_positions(SPEC, dataset.shards[0]["seeds"], frames, cameras)
    start = maag.make("pacman").reset()
    assert players.tolist() == [list(start.player)] * 3
    assert bounds.tolist() == [list(start.bounds)] * 3
    frames = frames.copy()
    frames[1, 30, 30] ^= 255
    with pytest.raises(MaagError, match="no longer starts episode 1"):
        start_positions(SPEC, dataset.shards[0]["seeds"], frames, cameras)


# -- the spec --------------------------------------------------------------------------


def test_follow_settings_round_trip_and_old_specs_load():
    assert GameSpec.from_dict(json.loads(json.dumps(SPEC.to_dict()))) == SPEC
    old = SPEC.to_dict()
    del old["follow"]
    for event in old["events"]:
        del event["to_start"]
    assert GameSpec.from_dict(old) == dataclasses.replace(
        SPEC, follow=None, events=tuple(dataclasses.replace(e, to_start=False) for e in SPEC.events)
    )
    folder = Path(__file__).parents[1] / "models" / "traveler"
    shipped = json.loads((folder / "model.json").read_text())["spec"]
    assert GameSpec.from_dict(shipped) == get_game("traveler").spec


@pytest.mark.parametrize(
    "change, message",
    [
        ({"follow": Follow(SPEC.follow.moves, (64, 0))}, r"anchor \(64, 0\) is outside the 64x56"),
        ({"follow": Follow(SPEC.follow.moves, (0, -1))}, "outside the 64x56 view"),
        ({"follow": Follow(SPEC.follow.moves[:3], (32, 28))}, "3 entries for 5 actions"),
        ({"moves": ((0, 0),) * 5}, "by moves or follows the player, not both"),
        (
            {"follow": None, "events": (EventSpec("death", to_start=True),)},
            "'death' puts the player back at its start, which needs a camera that follows",
        ),
    ],
)
def test_inconsistent_follow_settings_are_refused(change, message):
    with pytest.raises(MaagError, match=message):
        dataclasses.replace(SPEC, **change)


def test_a_malformed_follow_in_a_file_is_refused():
    spec = SPEC.to_dict()
    spec["follow"] = {"moves": [[0, 0, 1]] * 5, "anchor": [32, 28]}
    with pytest.raises(MaagError, match="malformed game spec"):
        GameSpec.from_dict(spec)
    spec["follow"] = {"moves": [[0, 0]] * 5, "anchor": [32, 99]}
    with pytest.raises(MaagError, match="outside the 64x56 view"):
        GameSpec.from_dict(spec)


def test_a_custom_maze_starts_the_generative_game_in_its_own_world(episode):
    """With a user's maze, reset shows the maze's own start and the record follows the
    player inside that maze's border, as the engine does there; the map knows the maze."""
    engine, agent = PacmanEngine(5, maze=CUSTOM_EXAMPLE), make_agent("pacman", "seeker", 5)
    steps, actions = [engine.reset()], []
    for _ in range(300):
        actions.append(agent.act(steps[-1]))
        steps.append(engine.step(actions[-1]))
    frames = np.stack([s.frame for s in steps])
    events = np.array([[s.events.count(n) for n in SPEC.event_names] for s in steps])
    game = GenerativeGame(
        Replay(frames, SPEC), SPEC, episode["frames"][:1], logicnet=EngineEvents(events, SPEC),
        start_cameras=episode["camera"][:1], sprite_mask=PACMAN.sprite_mask,
        start_players=episode["player"][:1], start_bounds=episode["bounds"],
    )  # fmt: skip
    custom = PACMAN.custom_map(str(CUSTOM_EXAMPLE))
    game.use_custom_map(custom)
    played = [game.reset(0)]
    assert np.array_equal(played[0].frame, steps[0].frame)
    assert steps[0].bounds != tuple(episode["bounds"][0])  # another world than the trained one
    for action in actions:
        played.append(game.step(action))
    assert [s.camera for s in played] == [s.camera for s in steps]
    assert [s.player for s in played] == [s.player for s in steps]
    assert len({s.camera for s in steps}) > 10  # the camera moved about the maze
    known = game.map.retrieve((0, 0), custom.image.shape[:2])[1]
    assert known.all()


def test_the_benchmark_plays_a_custom_maze_with_its_rules_and_map(tmp_path):
    """`maag bench --map`: the engine plays the maze and the referee follows its rules
    (the control row stays perfect), and each model row with the spatial module on starts
    its map from the maze, at the maze's own start."""
    from maag.bench import contenders, run_bench

    results = run_bench("pacman", [], 2, 150, seed=3, progress=False, world=str(CUSTOM_EXAMPLE))
    engine = results["rows"][0]
    assert results["map"] == str(CUSTOM_EXAMPLE) and str(CUSTOM_EXAMPLE) in engine["source"]
    assert engine["numcon"] == engine["spacon"] == engine["actacc"] == 1.0
    start = tiny_model_folder(tmp_path / "m")
    rows = contenders(PACMAN, [str(tmp_path / "m")], ["+numerical", "full"], str(CUSTOM_EXAMPLE))
    assert [r.label for r in rows] == ["engine", "+numerical", "full"]
    numerical, full = rows[1].make(0), rows[2].make(0)
    assert numerical.custom_map is None and "pre-filled" not in rows[1].source
    assert full.custom_map is not None and "pre-filled" in rows[2].source
    own = PacmanEngine(0, maze=CUSTOM_EXAMPLE).reset()
    assert full.reset(0).player == own.player != start.player
    with pytest.raises(MaagError, match="traveler has no custom maps"):
        contenders(maag.games.get_game("traveler"), [], world=str(CUSTOM_EXAMPLE))
