"""The tile generator (models/tiles.py): tile ids, the loss, the sampler, runs and folders."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from maag.data import write_dataset
from maag.errors import MaagError
from maag.games import pacman
from maag.generative import load
from maag.models.flow import sampler_for, stack_context, to_uint8, to_unit
from maag.models.tiles import TileDiT, TileSampler, tile_loss
from maag.train.export import export_model
from maag.train.generator import GeneratorRecipe, build_generator, train_generator
from maag.transitions import TransitionSampler, load_episodes


@pytest.fixture(scope="module")
def pacman_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("pacman")
    write_dataset("pacman", "seeker", 2, 40, out, seed=2, progress=False)
    return out


def tiny_recipe(data, **overrides) -> GeneratorRecipe:
    return GeneratorRecipe().updated(
        {
            "data": str(data), "tiles": True, "max_tiles": 96, "preset": "XXS",
            "batch_size": 4, "steps": 2, "warmup": 1, "mixed_precision": "no",
            "checkpoint_every": 2, "sample_every": 0, "eval_every": 1000, "log_every": 1,
        } | overrides
    )  # fmt: skip


def tiny_network(data, **overrides) -> TileDiT:
    torch.manual_seed(0)
    recipe = tiny_recipe(data, **overrides)
    return build_generator(recipe, pacman.SPEC, load_episodes(data))


def test_engine_frames_read_as_tile_ids_draw_back_exactly_and_zero_tiles_are_unknown(
    pacman_data,
):
    network = tiny_network(pacman_data)
    frames = torch.from_numpy(load_episodes(pacman_data)["frames"][0, :12])
    ids = network.tile_ids(to_unit(frames))
    assert ids.shape == (12, 256) and int(ids.max()) < int(network.tile_count)
    assert torch.equal(to_uint8(network.draw(ids)), frames)
    blanked = to_unit(frames)
    blanked[:, :, : pacman.SPEC.hud_height] = 0.0  # the HUD band as blank_hud leaves it
    hidden = network.tile_ids(blanked)
    assert (hidden[:, :32] == network.unknown).all()  # the HUD's two rows of 16 tiles
    assert torch.equal(hidden[:, 32:], ids[:, 32:])


def test_the_tile_set_holds_the_huds_digits_at_values_the_data_never_shows(pacman_data):
    from maag.games.common import hud_band

    network = tiny_network(pacman_data)
    band = hud_band(pacman.SPEC, {"score": 98765, "lives": 0})
    frame = np.concatenate([band, load_episodes(pacman_data)["frames"][0, 0, 8:]])[None]
    drawn = to_uint8(network.draw(network.tile_ids(to_unit(torch.from_numpy(frame)))))
    assert np.array_equal(drawn.numpy(), frame)


def test_too_many_distinct_tiles_and_games_without_tiles_are_refused(pacman_data, tmp_path):
    with pytest.raises(MaagError, match="distinct tiles, more than max_tiles 8"):
        tiny_network(pacman_data, max_tiles=8)
    traveler = tmp_path / "traveler"
    write_dataset("traveler", "wanderer", 1, 8, traveler, seed=3, progress=False)
    with pytest.raises(MaagError, match="tiles needs a game drawn on square tiles"):
        train_generator(tiny_recipe(traveler), tmp_path / "run", progress=False)


def test_bf16_trains_in_float32_on_a_cpu_without_bf16_instructions(
    pacman_data, tmp_path, monkeypatch, capsys
):
    """There bf16 autocast makes a step about 13x slower than float32: a recipe's bf16
    trains in float32, and says so. (Where bf16 is fast it is used as asked; accelerate
    takes one precision per process, so that side is not run here.)"""
    import maag.train.loop as loop

    monkeypatch.setattr(loop, "bf16_is_fast", lambda device: False)
    train_generator(
        tiny_recipe(pacman_data, mixed_precision="bf16"), tmp_path / "r", progress=False
    )
    printed = capsys.readouterr().out
    assert "bf16 asked for, but this CPU has no bf16 matrix instructions" in printed
    assert "on cpu, no, 2 episodes" in printed


def test_a_network_adopts_a_new_tile_as_its_nearest_known_one(pacman_data):
    """A tile new to a trained network's set (here the pellet, left out of it) gets the
    next id, and every id-indexed weight copies the rows of the tile the network read it
    as before (its nearest): it reads and scores the new tile as before. Old ids stay."""
    from maag.games.pacman.engine import _TEMPLATES, PELLET
    from maag.train.logicnet import LogicNetRecipe, LogicNetTask

    new_tile = _TEMPLATES[PELLET]
    tiles = tiny_network(pacman_data).tile_array()
    is_new = (tiles == new_tile).all(axis=(1, 2, 3))
    assert is_new.sum() == 1  # the data shows it
    recipe = LogicNetRecipe().updated({"data": str(pacman_data), "tiles": True, "focus": 12})
    logicnet = LogicNetTask().build(recipe, pacman.SPEC)
    generator = tiny_network(pacman_data)
    for network in (generator, logicnet):
        with torch.no_grad():
            for p in network.parameters():
                p.add_(torch.randn_like(p))  # every row its own
        network.set_tiles(tiles[~is_new])
        before = {id(t): t.clone() for t, _ in network.tile_tables()}
        new_frame = to_unit(torch.from_numpy(np.tile(new_tile, (16, 16, 1))[None]))
        nearest = int(network.tile_ids(new_frame)[0, 0])  # what it read the tile as
        assert network.adopt_tiles(tiles) == 1 and network.adopt_tiles(tiles) == 0
        new = len(tiles) - 1
        assert np.array_equal(network.tile_array()[:new], tiles[~is_new])
        assert np.array_equal(network.tile_array()[new], new_tile)
        for table, block in network.tile_tables():
            old = before[id(table)]
            for start in range(0, len(table), block):
                assert torch.equal(table[start + new], old[start + nearest])
                assert torch.equal(table[start : start + new], old[start : start + new])
    inputs = batch_inputs(pacman_data)
    inputs.pop("target")
    tokens = torch.full((4, 256), generator.unknown)
    logits = []
    for tile in (new_tile, tiles[~is_new][nearest]):  # a tile of the base and context painted
        painted = dict(inputs)
        for name in ("base", "context"):
            painted[name] = inputs[name].clone()
            unit = to_unit(torch.from_numpy(tile[None]))[0]  # (3, 4, 4)
            painted[name][..., 20:24, 20:24] = unit.repeat(painted[name].shape[1] // 3, 1, 1)
        logits.append(generator(tokens, torch.ones(4), **painted))
    assert torch.allclose(logits[0], logits[1])
    assert torch.equal(logits[0][..., new], logits[0][..., nearest])


def test_warm_start_keeps_the_sources_ids_and_adds_the_datas_new_tiles(pacman_data, monkeypatch):
    """A run warm-started from a network whose tile set lacks a tile of the data keeps
    the source's ids and appends the new tile (the model's own set, read off the data, is
    copied before the source's weights land in the same buffer)."""
    from maag.games.pacman.engine import _TEMPLATES, PELLET
    from maag.train import loop

    source = tiny_network(pacman_data)
    tiles = source.tile_array()
    is_new = (tiles == _TEMPLATES[PELLET]).all(axis=(1, 2, 3))
    source.set_tiles(tiles[~is_new])  # a network that never saw the tile
    weights = source.state_dict()
    monkeypatch.setattr(loop, "_warm_start_weights", lambda *_: (weights, pacman.SPEC))
    network = tiny_network(pacman_data)  # its set, read off the data, holds the tile
    loop.warm_start(network, "source", pacman.SPEC, "generator")
    assert np.array_equal(network.tile_array(), np.concatenate([tiles[~is_new], tiles[is_new]]))


def batch_inputs(data, count: int = 4) -> dict:
    batch = TransitionSampler(load_episodes(data), 4, seed=0).sample(count)
    context = to_unit(batch["context"])
    return {
        "target": to_unit(batch["target"]),
        "base": context[:, -1],
        "context": stack_context(context),
        "action": batch["action"],
        "corruption": torch.zeros(count),
        "chance": batch["chance"],
    }


def test_a_tiny_tile_generator_learns_a_tiny_batch(pacman_data):
    network = tiny_network(pacman_data)
    inputs = batch_inputs(pacman_data)
    optimizer = torch.optim.AdamW(network.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        noise = torch.Generator().manual_seed(0)  # the same hidden tiles every step
        loss = tile_loss(network, **inputs, generator=noise, one_step_share=1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) / 100
    sampler = sampler_for(network, 1)  # trained at all tiles hidden: the first step
    assert isinstance(sampler, TileSampler)
    inputs.pop("corruption")
    target = inputs.pop("target")
    drawn = sampler.sample(network, **inputs, generator=torch.Generator().manual_seed(0))
    assert torch.equal(network.tile_ids(drawn), network.tile_ids(target))


@pytest.mark.parametrize("steps, extra_passes", [(1, 0), (3, 0), (2, 4)])
def test_sampling_decides_every_tile_from_the_set_the_same_for_a_seed(
    pacman_data, steps, extra_passes
):
    network = tiny_network(pacman_data)
    with torch.no_grad():
        for p in network.parameters():
            p.add_(torch.randn_like(p) * 0.5)  # not the zero init: the logits differ
    inputs = batch_inputs(pacman_data)
    inputs.pop("corruption"), inputs.pop("target")

    def drawn(seed):
        noise = torch.Generator().manual_seed(seed)
        return TileSampler(steps, extra_passes).sample(network, **inputs, generator=noise)

    first = drawn(1)
    ids = network.tile_ids(first)
    assert (ids != network.unknown).all()
    assert torch.equal(network.draw(ids), first)  # every tile one of the set
    assert torch.equal(first, drawn(1))
    assert any(not torch.equal(first, drawn(seed)) for seed in range(2, 6))


class OneGhostNetwork:
    """A stand-in TileDiT over 16 tiles of floor (id 0) or ghost (id 1): while no tile is a
    ghost, each of the first four may be the one ghost (even odds; a move the frames do not
    tell); the others are floor, and once one tile is a ghost, all are."""

    grid, unknown = 4, 2

    def __call__(self, tokens, *_):
        may_be_ghost = torch.arange(16) < 4
        may_be_ghost = may_be_ghost & ~(tokens == 1).any(dim=1, keepdim=True)
        even, sure_floor = torch.tensor([0.0, 0.0]), torch.tensor([0.0, -30.0])
        return torch.where(may_be_ghost[..., None], even, sure_floor)

    def draw(self, ids):
        return ids


@pytest.mark.parametrize("steps", [1, 2])
def test_extra_passes_keep_unsure_tiles_one_at_a_time(steps):
    """Tiles that each may show the one ghost are not all drawn with it in one pass."""

    def ghosts(extra_passes):
        sampler = TileSampler(steps, extra_passes)
        noise = torch.Generator().manual_seed(0)
        ids = sampler.sample(OneGhostNetwork(), torch.zeros(64, 1), None, None, noise)
        return (ids == 1).sum(dim=1), sampler.passes

    at_once, passes = ghosts(0)
    assert passes == steps and (at_once > 1).any()
    one_by_one, passes = ghosts(4)
    assert (one_by_one <= 1).all() and steps < passes <= steps + 4


class EightyTwentyNetwork:
    """A stand-in TileDiT over 16 tiles of 2 x 2 pixels: every tile is id 0 with odds 4 to
    1 against id 1."""

    grid, unknown = 4, 2
    config = SimpleNamespace(tile_size=2)

    def __call__(self, tokens, *_):
        return torch.log(torch.tensor([0.8, 0.2])).expand(*tokens.shape, 2)

    def draw(self, ids):
        return ids


def test_tiles_the_map_knows_are_drawn_sharper():
    """Where the map's view knows every pixel of a tile (the last extra channel +1), the
    tile is drawn at MAPPED_TEMPERATURE, elsewhere at TEMPERATURE: the unlikely tile comes
    out far less often on known ground."""
    extra = torch.zeros(512, 4, 8, 8)
    extra[:, 3] = -1.0
    extra[:, 3, :, :4] = 1.0  # the left two tile columns known
    extra[:, 3, 0, 0] = -1.0  # one pixel unknown: the whole tile counts as unknown
    ids = TileSampler(1, 0).sample(
        EightyTwentyNetwork(), torch.zeros(512, 1), None, None, torch.Generator().manual_seed(0),
        extra=extra,
    ).view(512, 4, 4)  # fmt: skip
    known, unknown = ids[:, :, :2].flatten(), ids[:, :, 2:].flatten()
    assert (known == 1).float().mean() < 0.02  # 0.8 ** 4 : 0.2 ** 4 at 0.25: 0.4%
    assert 0.03 < (unknown == 1).float().mean() < 0.09  # 0.8 ** 2 : 0.2 ** 2 at 0.5: 5.9%
    assert ids[:, 0, 0].eq(1).float().mean() > 0.02  # the tile with an unknown pixel


@pytest.mark.parametrize("player_in_base", [False, True])
def test_a_tile_run_exports_to_a_folder_that_plays_and_saves_its_tile_set(
    pacman_data, tmp_path, player_in_base
):
    run = tmp_path / "run"
    modules = {"numerical": True, "event_tokens": True, "spatial": True, "aligned_context": True}
    modules |= {"player_in_base": player_in_base}
    train_generator(tiny_recipe(pacman_data, **modules), run, progress=False)
    folder = export_model(str(run), str(tmp_path / "m"))
    game = load(folder)
    assert isinstance(game.generator, TileDiT)
    assert game.generator.config.player_tile == (4 if player_in_base else 0)
    trained = tiny_network(pacman_data, **modules)
    assert torch.equal(game.generator.tiles, trained.tiles)
    first = game.reset(seed=3).frame
    frames = [game.step(action).frame for action in (1, 4, 4, 2)]
    for frame in [first, *frames]:
        ids = game.generator.tile_ids(to_unit(torch.from_numpy(frame))[None])
        assert torch.equal(to_uint8(game.generator.draw(ids))[0], torch.from_numpy(frame))
    again = load(folder)
    again.reset(seed=3)
    assert all(
        np.array_equal(again.step(a).frame, f) for a, f in zip((1, 4, 4, 2), frames, strict=True)
    )


def test_the_base_shows_pacman_where_the_next_frame_has_him_when_the_player_is_told(pacman_data):
    from maag.games import get_game
    from maag.spatial import generator_inputs, player_moves
    from maag.transitions import MapViews

    episodes = load_episodes(pacman_data)
    maps = MapViews(episodes, pacman.SPEC, get_game("pacman").sprite_mask)
    batch = TransitionSampler(episodes, 4, seed=1, maps=maps).sample(24)
    hud, size = pacman.SPEC.hud_height, pacman.SPEC.tile[0]
    last = to_unit(batch["context"][:, -1])
    told = np.arange(24) % 3 != 0
    player = player_moves(batch, told)
    inputs = (last, batch["canvas"], batch["known"], hud, batch["camera_move"], batch["sprites"])
    base = to_uint8(generator_inputs(*inputs, player, size)[0]).numpy()
    plain = to_uint8(generator_inputs(*inputs)[0]).numpy()
    for row, (x, y) in enumerate(batch["target_player"].tolist()):
        assert pacman.read_frame(batch["target"][row].numpy()).player == (x // size, y // size)
        if not told[row]:
            assert np.array_equal(base[row], plain[row])
            continue
        box = (slice(hud + y, hud + y + size), slice(x, x + size))
        assert np.array_equal(base[row][box], batch["target"][row].numpy()[box])  # Pac-Man
        outside = np.ones(base.shape[1:3], bool)
        outside[box] = False
        assert np.array_equal(base[row][outside], plain[row][outside])
    assert not np.array_equal(base[told], plain[told])


def test_player_in_base_is_refused_without_the_spatial_module_or_a_followed_player(
    pacman_data, tmp_path
):
    with pytest.raises(MaagError, match="player_in_base needs spatial"):
        tiny_network(pacman_data, player_in_base=True)
    pong = tmp_path / "pong"
    write_dataset("pong", "tracker", 1, 8, pong, seed=3, progress=False)
    with pytest.raises(MaagError, match="pong has no such player"):
        recipe = {"tiles": False, "spatial": True, "player_in_base": True}
        train_generator(tiny_recipe(pong, **recipe), tmp_path / "run", progress=False)
