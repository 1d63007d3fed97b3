"""Trajectory shards: round trip, work splitting, and every way a dataset can be broken."""

import json

import numpy as np
import pytest
from shards import drop_arrays

import maag
from maag.data import ARRAYS, Dataset, episode_seeds, generate_episode, write_dataset
from maag.errors import MaagError
from maag.games import make_agent
from maag.transitions import load_episodes


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    write_dataset("traveler", "wanderer", 5, 30, out, seed=7, episodes_per_shard=2, progress=False)
    return out


def test_round_trip_equals_the_episodes_played(dataset):
    data = Dataset(dataset, game="traveler")
    data.verify()
    assert data.num_episodes == 5 and len(data.shards) == 3
    shard = data.load_shard(1)  # episodes 2 and 3
    for k, index in enumerate((2, 3)):
        episode = generate_episode("traveler", "wanderer", 30, seed=7, index=index)
        for key in ARRAYS:
            assert np.array_equal(shard[key][k], episode[key]), key
    assert shard["values"][0, -1, 0] == shard["events"][0, :, 0].sum()  # score = buildings


def test_split_across_machines_and_workers_gives_the_same_data(tmp_path, dataset):
    for index in range(2):
        write_dataset(
            "traveler", "wanderer", 5, 30, tmp_path, seed=7, episodes_per_shard=2,
            workers=2, shard_index=index, num_shards=2, progress=False,
        )  # fmt: skip
    split, whole = Dataset(tmp_path), Dataset(dataset)
    split.verify()
    assert [s["episodes"] for s in split.shards] == [s["episodes"] for s in whole.shards]
    for a, b in zip(split, whole, strict=True):
        assert all(np.array_equal(a[key], b[key]) for key in ARRAYS)


def test_load_all_reads_the_shards_in_order_and_checks_them(tmp_path, dataset):
    """The training's loading (shards read concurrently) gives what reading them one by one
    gives, and refuses what `verify` refuses."""
    data = Dataset(dataset)
    for loaded, read in zip(data.load_all(threads=3), data, strict=True):
        assert all(np.array_equal(loaded[key], read[key]) for key in ARRAYS)
    copy_dataset(dataset, tmp_path)
    shard = tmp_path / "shard-00001.safetensors"
    shard.write_bytes(shard.read_bytes()[:-1] + b"?")
    with pytest.raises(MaagError, match=r"shard-00001.safetensors is corrupted"):
        load_episodes(tmp_path)
    (tmp_path / "shard-00001.safetensors").unlink()
    with pytest.raises(MaagError, match=r"shard-00001.safetensors is missing"):
        load_episodes(tmp_path)


def test_missing_machine_is_detected(tmp_path):
    write_dataset(
        "traveler", "random", 4, 5, tmp_path, episodes_per_shard=1, shard_index=1,
        num_shards=2, progress=False,
    )  # fmt: skip
    with pytest.raises(MaagError, match=r"lacks episodes 0\.\.0"):
        Dataset(tmp_path).verify()


def copy_dataset(src, dst):
    for path in src.iterdir():
        (dst / path.name).write_bytes(path.read_bytes())
    return dst


def test_flipped_byte_is_named(tmp_path, dataset):
    copy_dataset(dataset, tmp_path)
    shard = tmp_path / "shard-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 1
    shard.write_bytes(bytes(data))
    with pytest.raises(MaagError, match=r"shard-00001.safetensors is corrupted"):
        Dataset(tmp_path).verify()


def test_truncated_and_missing_shards_are_named(tmp_path, dataset):
    copy_dataset(dataset, tmp_path)
    shard = tmp_path / "shard-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(MaagError, match=r"shard-00002.safetensors is truncated"):
        Dataset(tmp_path).verify()
    shard.unlink()
    with pytest.raises(MaagError, match=r"shard-00002.safetensors is missing"):
        Dataset(tmp_path).verify()


def test_manifest_of_another_game_or_garbage_is_refused(tmp_path, dataset):
    with pytest.raises(MaagError, match="is traveler data, expected pong"):
        Dataset(dataset, game="pong")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(MaagError, match="cannot be read"):
        Dataset(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(MaagError, match="not a maag trajectory manifest"):
        Dataset(tmp_path)
    with pytest.raises(MaagError, match="no dataset folder"):
        Dataset(tmp_path / "nowhere")


def test_existing_dataset_is_not_overwritten_by_accident(dataset):
    before = (dataset / "manifest.json").read_bytes()
    with pytest.raises(MaagError, match="already holds a dataset"):
        write_dataset("traveler", "wanderer", 1, 3, dataset, progress=False)
    assert (dataset / "manifest.json").read_bytes() == before


def test_unwritable_output_and_bad_counts_leave_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(MaagError, match="cannot write to"):
        write_dataset("traveler", "wanderer", 1, 3, blocker / "out", progress=False)
    with pytest.raises(MaagError, match="--steps must be at least 1"):
        write_dataset("traveler", "wanderer", 1, 0, tmp_path / "d", progress=False)
    with pytest.raises(MaagError, match="unknown agent"):
        write_dataset("traveler", "seeker", 1, 3, tmp_path / "d", progress=False)
    assert not any((tmp_path / "d").glob("*.safetensors"))


def test_shards_hold_the_engines_alternatives_and_older_shards_none(tmp_path):
    """Pong's alternatives (`Engine.alternative`) are stored per shard and indexed by the
    whole dataset's episodes once loaded; a shard written before them reads as none."""
    write_dataset("pong", "tracker", 3, 200, tmp_path, seed=2, episodes_per_shard=2, progress=False)
    episodes = load_episodes(tmp_path)
    episode, frame = episodes["alt_step"].T
    assert set(episode.tolist()) == {0, 1, 2}
    assert (episodes["alt_events"] != episodes["events"][episode, frame]).any(axis=1).all()
    last = generate_episode("pong", "tracker", 200, seed=2, index=2)
    assert np.array_equal(episodes["alt_frames"][episode == 2], last["alt_frames"])
    assert np.array_equal(frame[episode == 2], last["alt_step"])

    old = tmp_path / "old"
    write_dataset("traveler", "wanderer", 2, 10, old, seed=1, progress=False)
    drop_arrays(old, lambda name: name.startswith("alt_") or name in ("chance", "player"))
    loaded = load_episodes(old)
    assert loaded["alt_step"].shape == (0, 2) and loaded["alt_frames"].shape == (0, 64, 64, 3)
    assert loaded["chance"].shape == (2, 11, 0)  # and none of the rules' random draws
    assert loaded["player"].shape == (2, 11, 0)  # nor player positions


def test_shards_hold_each_steps_chance_draws(tmp_path):
    write_dataset("pacman", "seeker", 2, 60, tmp_path, seed=4, progress=False)
    chance = load_episodes(tmp_path)["chance"]
    assert chance.shape == (2, 61, 2) and not chance[:, 0].any()
    engine_seed, agent_seed = episode_seeds(4, 1)
    engine = maag.make("pacman", seed=engine_seed)
    agent = make_agent("pacman", "seeker", agent_seed)
    step = engine.reset(engine_seed)
    for t in range(1, 61):
        step = engine.step(agent.act(step))
        assert step.chance == tuple(chance[1, t].tolist())


def test_data_in_a_custom_maze_is_the_engine_playing_that_maze(tmp_path):
    """`maag data --map`: each episode is the engine in the user's maze, the manifest names
    the maze by checksum (machines that played other mazes disagree), and a game whose
    engine has no custom worlds, or a maze that cannot be read, is one clear error."""
    from maag.games.pacman import CUSTOM_EXAMPLE, engine_in_maze

    out = tmp_path / "custom"
    write_dataset("pacman", "seeker", 2, 20, out, seed=3, progress=False, world=CUSTOM_EXAMPLE)
    shard = Dataset(out, game="pacman").load_shard(0)
    for index in range(2):
        engine = engine_in_maze(episode_seeds(3, index)[0], str(CUSTOM_EXAMPLE))
        start = engine.reset(episode_seeds(3, index)[0])
        assert np.array_equal(shard["frames"][index, 0], start.frame)
        assert np.array_equal(shard["player"][index, 0], start.player)
    classic = generate_episode("pacman", "seeker", 20, seed=3, index=0)
    assert not np.array_equal(classic["frames"][0], shard["frames"][0, 0])

    other = tmp_path / "other"
    write_dataset(
        "pacman", "seeker", 2, 20, other, seed=3, episodes_per_shard=1, shard_index=1,
        num_shards=2, progress=False,
    )  # fmt: skip
    (other / "manifest-00000-of-00002.json").write_bytes((out / "manifest.json").read_bytes())
    with pytest.raises(MaagError, match=r"disagrees .* on map_sha256"):
        Dataset(other)
    with pytest.raises(MaagError, match="plays its own world only"):
        write_dataset("pong", "tracker", 1, 5, tmp_path / "p", progress=False, world=CUSTOM_EXAMPLE)
    with pytest.raises(MaagError, match="cannot read maze"):
        write_dataset("pacman", "seeker", 1, 5, tmp_path / "m", progress=False, world="/no/maze")
    assert not (tmp_path / "p").exists() and not (tmp_path / "m").exists()
