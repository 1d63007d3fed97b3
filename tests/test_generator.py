"""The generator: shapes, learning, save/load, exact resume, multi-process training, sampling."""

import dataclasses
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import maag
from maag.data import write_dataset
from maag.errors import MaagError
from maag.games import GAMES
from maag.games.common import hud_band, read_hud
from maag.generative import (
    GenerativeGame,
    load,
    save_model_folder,
    shipped_model,
)
from maag.models.dit import FrameDiT
from maag.models.flow import FlowSampler, stack_context, to_unit, training_loss
from maag.palette import Palette, palette_of
from maag.spec import EventSpec
from maag.train.export import export_model
from maag.train.generator import (
    FADE_LOW,
    GeneratorRecipe,
    change_weight,
    fade_last_change,
    mirror,
    train_generator,
    with_random_values,
)
from maag.transitions import TransitionSampler, load_episodes

TINY = {"hidden_size": 32, "depth": 2, "num_heads": 2}


def tiny_model(**overrides):
    torch.manual_seed(0)
    return FrameDiT(**(TINY | overrides))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("traveler")
    write_dataset("traveler", "wanderer", 4, 24, out, seed=3, progress=False)
    return out


def test_shapes_with_and_without_the_module_slots():
    batch = 2
    frames = torch.rand(batch, 3, 64, 64) * 2 - 1
    context = torch.rand(batch, 12, 64, 64) * 2 - 1
    args = (torch.ones(batch), frames, context, torch.tensor([0, 2]), torch.zeros(batch))
    assert tiny_model()(frames, *args).shape == (batch, 3, 64, 64)
    full = tiny_model(extra_channels=4, cond_vocab_size=40, num_cond_tokens=4)
    extra = torch.rand(batch, 4, 64, 64)
    ids = torch.randint(0, 40, (batch, 4))
    assert full(frames, *args, extra=extra, cond_ids=ids).shape == (batch, 3, 64, 64)


def test_an_aligned_generator_sees_each_context_frame_moved_into_the_window_it_draws():
    torch.manual_seed(0)
    context = torch.rand(2, 4, 3, 64, 64) * 2 - 1
    moves = torch.tensor([[[4, 0], [0, -8], [0, 0], [-4, 4]], [[0, 0]] * 4])
    network = tiny_model(hud_height=8, aligned_context=True)
    aligned = network.align(context.flatten(1, 2), moves).unflatten(1, (4, 3))
    assert torch.equal(aligned[:, :, :, :8], context[:, :, :, :8])  # the HUD stays put
    assert torch.equal(aligned[1], context[1])  # no camera move: as it was
    assert torch.equal(aligned[0, 2], context[0, 2])
    # the camera moved 4 px right: the scene 4 px left, the 4 columns it reveals blank
    assert torch.equal(aligned[0, 0, :, 8:, :60], context[0, 0, :, 8:, 4:])
    assert torch.equal(aligned[0, 0, :, 8:, 60:], torch.zeros(3, 56, 4))
    assert torch.equal(aligned[0, 1, :, 16:], context[0, 1, :, 8:56])  # 8 px up: 8 px down
    assert torch.equal(aligned[0, 3, :, 8:60, 4:], context[0, 3, :, 12:, :60])
    # in the forward pass: only with aligned_context, and still moves change nothing
    frames = torch.rand(2, 3, 64, 64) * 2 - 1
    args = (frames, torch.ones(2), frames, context.flatten(1, 2), torch.zeros(2).long())
    args += (torch.zeros(2),)
    still, plain = torch.zeros_like(moves), tiny_model(hud_height=8)
    with torch.no_grad():  # trained networks: no output layer at zero
        for weight in itertools.chain(network.parameters(), plain.parameters()):
            weight.normal_(std=0.05)
        assert torch.equal(network(*args, context_moves=still), network(*args))
        assert not torch.equal(network(*args, context_moves=moves), network(*args))
        assert torch.equal(plain(*args, context_moves=moves), plain(*args))


@pytest.mark.parametrize("network", ["generator", "logicnet"])
def test_chance_draws_start_without_effect_then_steer_the_network(network):
    """A network told the rules' random draws (GameSpec.chance) computes at first what the
    same weights did without them (a warm start from one trained before), and once its
    draw table has learned something, other draws give another output."""
    from maag.models.logicnet import LogicNet

    batch = 2
    frames = torch.rand(batch, 3, 64, 64) * 2 - 1
    context = torch.rand(batch, 12, 64, 64) * 2 - 1
    action = torch.tensor([0, 2])
    configs = ({}, {"chance": (12, 3)})
    if network == "generator":
        plain, told = (tiny_model(**c) for c in configs)
        args = (frames, torch.ones(batch), frames, context, action, torch.zeros(batch))
    else:
        plain, told = (
            LogicNet(context_frames=4, event_names=("a", "b"), width=8, **c) for c in configs
        )
        args = (context, action)
    with torch.no_grad():  # a trained network: no output layer at zero
        for weight in plain.parameters():
            weight.normal_(std=0.05)
    missing, unexpected = told.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["chance_embed.embed.weight"] and not unexpected
    draws, others = torch.tensor([[0, 1], [5, 2]]), torch.tensor([[11, 0], [5, 1]])
    assert torch.equal(plain(*args), told(*args, chance=draws))
    with torch.no_grad():
        told.chance_embed.embed.weight.normal_()
    out, other = told(*args, chance=draws), told(*args, chance=others)
    assert not torch.allclose(out[0], other[0]) and not torch.allclose(out[1], other[1])
    assert torch.equal(out, told(*args, chance=draws.clone()))


@pytest.mark.parametrize("pixel_head", [0, 8])
def test_untrained_generator_copies_its_base(pixel_head):
    """adaLN-Zero and zeroed output layers: before training, next frame == base."""
    model = tiny_model(pixel_head_channels=pixel_head)
    base = torch.rand(1, 3, 64, 64) * 2 - 1
    context = torch.rand(1, 12, 64, 64) * 2 - 1
    out = FlowSampler(2).sample(model, base, context, torch.tensor([1]), torch.Generator())
    assert torch.allclose(out, base, atol=1e-6)
    if pixel_head:  # the head sees the residual, the base and the last two frames
        with torch.no_grad():
            model.pixel_head[-1].weight.normal_(std=0.1)
        moved = FlowSampler(2).sample(model, base, context, torch.tensor([1]), torch.Generator())
        assert not torch.allclose(moved, base, atol=1e-3)


def test_tiny_model_overfits_a_tiny_batch(data):
    episodes = load_episodes(data)
    batch = TransitionSampler(episodes, 4, seed=0).sample(4)
    context = to_unit(batch["context"])
    model = tiny_model(hidden_size=64)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(300):
        noise = torch.Generator().manual_seed(0)  # the same flow times and noise every step
        loss = training_loss(
            model, to_unit(batch["target"]), context[:, -1], stack_context(context),
            batch["action"], torch.zeros(4), noise,
        )  # fmt: skip
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) / 10


def test_model_folder_round_trip_is_bitwise(tmp_path, data):
    model = tiny_model()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)  # not the zero init: every weight matters
    spec = maag.make("traveler").spec
    start = load_episodes(data)["frames"][:2, 0]
    save_model_folder(tmp_path / "m", model, spec, start, np.zeros((2, 2), int), 2, {"note": "t"})
    game = load(tmp_path / "m", game="traveler")
    loaded = game.generator.state_dict()
    assert all(torch.equal(v, loaded[k]) for k, v in model.state_dict().items())
    direct = GenerativeGame(model, spec, start, 2)
    for g in (game, direct):
        g.reset(seed=5)
    for action in (2, 2, 1, 0):
        assert np.array_equal(game.step(action).frame, direct.step(action).frame)


def test_noise_on_the_cpu_is_the_generators_own_stream():
    """`noise_like` draws on the CPU exactly what `torch.randn` draws from the generator (a
    GPU gets noise from a generator seeded by it instead); a network without weights is on
    the CPU."""
    from maag.models.flow import device_of, noise_like

    drawn = noise_like((2, 3), torch.Generator().manual_seed(7), "cpu")
    assert torch.equal(drawn, torch.randn((2, 3), generator=torch.Generator().manual_seed(7)))
    assert device_of(torch.nn.Identity()) == torch.device("cpu")


def test_sampling_is_deterministic_for_a_seed(data):
    model = tiny_model()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    spec = maag.make("traveler").spec
    game = GenerativeGame(model, spec, load_episodes(data)["frames"][:3, 0], 2)

    def rollout(seed):
        frames = [game.reset(seed).frame]
        frames += [game.step(a).frame for a in (2, 2, 2, 1, 0, 1)]
        return np.stack(frames)

    assert np.array_equal(rollout(1), rollout(1))
    assert not np.array_equal(rollout(1)[1:], rollout(2)[1:])


def recipe_for(data, **overrides):
    return GeneratorRecipe().updated(
        {
            "data": str(data), "preset": "XXS", "batch_size": 4, "steps": 6, "warmup": 2,
            "mixed_precision": "no", "checkpoint_every": 3, "sample_every": 0,
            "eval_every": 1000, "log_every": 1,
        } | overrides
    )  # fmt: skip


def test_export_takes_the_logicnet_of_a_shipped_model_folder(tmp_path, data):
    run = tmp_path / "run"
    train_generator(recipe_for(data, steps=1), run, progress=False)
    folder = export_model(str(run), str(tmp_path / "m"), logicnet_run="models/traveler")
    shipped, exported = load("models/traveler").logicnet, load(folder).logicnet
    for name, weight in shipped.state_dict().items():
        assert torch.equal(exported.state_dict()[name], weight), name
    provenance = json.loads((folder / "model.json").read_text())["provenance"]["logicnet"]
    assert provenance["model"] == "models/traveler" and provenance["step"] > 0
    with pytest.raises(MaagError, match="has no LogicNet"):
        export_model(str(run), str(tmp_path / "m2"), logicnet_run="models/traveler-baseline")
    with pytest.raises(MaagError, match="is a pong LogicNet"):
        export_model(str(run), str(tmp_path / "m2"), logicnet_run="models/pong")
    other = tmp_path / "other"  # the shipped folder with its spec changed since
    shutil.copytree("models/traveler", other)
    config = json.loads((other / "model.json").read_text())
    config["spec"]["events"][0]["restores_world"] = True
    (other / "model.json").write_text(json.dumps(config))
    with pytest.raises(MaagError, match=r"other versions of the traveler spec \(events differ\)"):
        export_model(str(run), str(tmp_path / "m2"), logicnet_run=str(other))


@pytest.mark.parametrize("name", sorted(GAMES))
def test_random_values_redraw_the_hud_as_the_engine_draws_it(name):
    spec, engine = GAMES[name].spec, GAMES[name].engine(0)
    steps = [engine.reset(0)] + [engine.step(t % len(spec.actions)) for t in range(1, 32)]
    frames = torch.from_numpy(np.stack([s.frame for s in steps]))
    values = torch.tensor([[s.values[n] for n in spec.value_names] for s in steps])
    redraw = torch.arange(len(steps)) % 4 != 0
    hud = spec.hud_height
    for step in steps:  # what the redraw draws is what the engine draws
        assert np.array_equal(step.frame[:hud], hud_band(spec, step.values))
    new_values, new_frames = with_random_values(
        spec, values, frames, redraw, np.random.default_rng(0)
    )
    assert torch.equal(new_frames[:, hud:], frames[:, hud:])  # only the HUD is drawn anew
    assert torch.equal(new_values[~redraw], values[~redraw])
    assert torch.equal(new_frames[~redraw], frames[~redraw])
    for shown, frame in zip(new_values[redraw].tolist(), new_frames[redraw].numpy(), strict=True):
        assert read_hud(spec, frame) == dict(zip(spec.value_names, shown, strict=True))
    for v, column in zip(spec.values, new_values[redraw].T, strict=True):
        assert v.low <= column.min() and column.max() <= v.high
        if v.high >= 99:  # the leading digit takes many values, not only the data's
            assert len({str(n).zfill(v.digits)[0] for n in column.tolist()}) >= 5


def test_a_faded_context_leaves_some_pixels_of_the_last_frame_as_before_in_its_share_of_rows():
    noise = torch.Generator().manual_seed(0)
    context = torch.rand(64, 4, 3, 16, 16, generator=noise) * 2 - 1
    assert fade_last_change(context, 0.0, noise) is context
    faded = fade_last_change(context, 0.5, noise)
    assert torch.equal(faded[:, :-1], context[:, :-1])  # only the last frame fades
    before, last = context[:, -2], context[:, -1]
    as_last = (faded[:, -1] == last).all(dim=1)  # (B, H, W): each pixel is one or the other
    as_before = (faded[:, -1] == before).all(dim=1)
    assert (as_last | as_before).all()
    left = as_before.flatten(1).float().mean(dim=1)
    rows = left > 0
    assert 16 < rows.sum() < 48  # about half the rows
    assert left.max() < 1 - FADE_LOW + 0.1 and left[rows].std() > 0.1  # a share per row


@pytest.mark.parametrize(
    "augmentation",
    [
        {"numerical": True, "random_values_share": 0.5},
        {"fade_share": 0.5},
        {"rollout_share": 0.5, "rollout_frames": 2},
        {"numerical": True, "spatial": True, "rollout_share": 0.5},
        {"sprite_dropout": 0.5},
    ],
)
def test_a_recipe_with_each_augmentation_trains(tmp_path, data, augmentation):
    run = tmp_path / "run"
    recipe = recipe_for(data, steps=2, **augmentation)
    train_generator(recipe, run, progress=False)
    losses = [
        json.loads(line)["loss"]
        for line in (run / "metrics.jsonl").read_text().splitlines()
        if "loss" in line
    ]
    assert losses and all(np.isfinite(losses))


def test_rolled_rows_carry_the_transitions_into_their_last_context_frames(data):
    episodes = load_episodes(data)
    assert "history" not in TransitionSampler(episodes, 4, seed=0).sample(8)
    batch = TransitionSampler(episodes, 4, seed=0, rollout_share=0.5, rollout_frames=2).sample(64)
    rolled = batch["rolled"]
    assert 16 < rolled.sum() < 48 and len(batch["history"]) == 2
    for lag, transition in zip((2, 1), batch["history"], strict=True):
        assert torch.equal(transition["target"], batch["context"][rolled, -lag])
        assert torch.equal(transition["context"][:, lag:], batch["context"][rolled, : 4 - lag])
    with pytest.raises(MaagError, match="rollout_frames must be at least 1"):
        TransitionSampler(episodes, 4, rollout_share=0.5, rollout_frames=0)


def test_rolled_rows_go_on_from_the_generators_own_drawings(data):
    """An untrained generator copies its base (the last frame): drawn from the data's frames
    before them, the last two context frames of a rolled row both copy the third last."""
    from maag.train.generator import GeneratorTask

    episodes = load_episodes(data)
    batch = TransitionSampler(episodes, 4, seed=1, rollout_share=0.5, rollout_frames=2).sample(32)
    recipe = GeneratorRecipe(preset="XXS", motion_skip=False, rollout_share=0.5, rollout_frames=2)
    task = GeneratorTask()
    model = task.build(recipe, maag.make("traveler").spec)
    task.prepare(episodes, recipe)
    assert task.palette is not None  # traveler is drawn with a palette
    own = task.own_context(model, batch, recipe, torch.Generator().manual_seed(0))
    rolled, context = batch["rolled"], batch["context"]
    assert torch.equal(own[~rolled], context[~rolled])
    assert torch.equal(own[rolled, :2], context[rolled, :2])
    for drawn in (own[rolled, -2], own[rolled, -1]):
        assert torch.equal(drawn, context[rolled, -3])
    assert not torch.equal(own[rolled, -1], context[rolled, -1])  # the wanderer moved


def test_dropped_sprites_are_drawn_nowhere_in_the_last_frame(tmp_path):
    from maag.games import pong
    from maag.transitions import drop_new_sprites

    write_dataset("pong", "tracker", 1, 40, tmp_path, seed=2, progress=False)
    batch = TransitionSampler(load_episodes(tmp_path), 4, seed=0).sample(16)
    rows = torch.arange(16) % 2 == 0
    dropped = drop_new_sprites(batch["context"], rows, pong.sprite_mask)
    assert torch.equal(dropped[~rows], batch["context"][~rows])
    assert torch.equal(dropped[:, :-1], batch["context"][:, :-1])  # only the last frame
    frames = (dropped[rows, -2], dropped[rows, -1], batch["context"][rows, -1])
    for before, last, original in zip(*(f.numpy() for f in frames), strict=True):
        moved = pong.sprite_mask(original) & ~pong.sprite_mask(before)
        assert np.array_equal(last[moved], before[moved])
        assert np.array_equal(last[~moved], original[~moved])
        if pong.read_frame(original).ball != pong.read_frame(before).ball:
            assert pong.read_frame(last).ball is None  # the ball that moved is gone


@pytest.fixture(scope="module")
def pacman_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("pacman")
    write_dataset("pacman", "seeker", 1, 40, out, seed=2, progress=False)
    return out


def test_copied_sprites_show_one_sprite_tile_twice_in_the_last_frames(pacman_data):
    from maag.games import pacman
    from maag.transitions import copy_a_sprite

    batch = TransitionSampler(load_episodes(pacman_data), 4, seed=0).sample(16)
    rows, hud = torch.arange(16) % 2 == 0, pacman.SPEC.hud_height
    noise = torch.Generator().manual_seed(0)
    copied = copy_a_sprite(batch["context"], rows, pacman.sprite_mask, (4, 4), hud, noise)
    assert torch.equal(copied[~rows], batch["context"][~rows])
    assert torch.equal(copied[:, 0], batch["context"][:, 0])  # never the oldest frame
    for new, old in zip(copied[rows].numpy(), batch["context"][rows].numpy(), strict=True):
        changed = (new != old).any(axis=-1)  # (K, H, W)
        place = changed[-1]
        tiles = place[hud:].reshape(14, 4, 16, 4).any(axis=(1, 3))
        assert tiles.sum() == 1  # one tile, on the grid
        r, c = np.argwhere(tiles)[0]
        box = (slice(hud + 4 * r, hud + 4 * r + 4), slice(4 * c, 4 * c + 4))
        assert not pacman.sprite_mask(old[-1])[box].any()  # where no sprite was
        assert pacman.sprite_mask(new[-1])[box].all()  # now a sprite is
        outside = np.ones_like(place)
        outside[box] = False
        assert not (changed & outside).any()  # that tile alone, in every frame
        assert (new[:, box[0], box[1]] == new[-1, box[0], box[1]]).all(axis=(1, 2, 3)).sum() >= 1
        reading, before = pacman.read_frame(new[-1]), pacman.read_frame(old[-1])
        sprites = [
            sum(tile in (pacman.PACMAN, pacman.GHOST) for row in r.tiles for tile in row)
            for r in (reading, before)
        ]
        assert sprites[0] == sprites[1] + 1


def test_a_recipe_with_copied_sprites_trains_where_the_view_scrolls_by_tiles(
    tmp_path, pacman_data, data
):
    run = tmp_path / "run"
    copies = {"numerical": True, "spatial": True, "sprite_copies": 0.5}
    train_generator(recipe_for(pacman_data, steps=2, **copies), run, progress=False)
    losses = [
        json.loads(line)["loss"]
        for line in (run / "metrics.jsonl").read_text().splitlines()
        if "loss" in line
    ]
    assert losses and all(np.isfinite(losses))
    with pytest.raises(MaagError, match="sprite_copies needs a game whose view scrolls by tiles"):
        train_generator(recipe_for(data, sprite_copies=0.5), tmp_path / "other", progress=False)


def test_mirrored_rows_show_the_field_upside_down_with_up_and_down_swapped(tmp_path, data):
    from maag.games import pong

    write_dataset("pong", "tracker", 1, 60, tmp_path / "pong", seed=2, progress=False)
    batch = TransitionSampler(load_episodes(tmp_path / "pong"), 4, seed=0).sample(16)
    rows, hud = torch.arange(16) % 2 == 0, pong.SPEC.hud_height
    context, target, action = mirror(
        batch["context"], batch["target"], batch["action"], rows, pong.GAME.mirrored_actions, hud
    )
    for new, old in ((context, batch["context"]), (target, batch["target"])):
        assert torch.equal(new[~rows], old[~rows])
        assert torch.equal(new[rows, ..., :hud, :, :], old[rows, ..., :hud, :, :])  # the HUD
    assert torch.equal(context[rows, :, hud:], batch["context"][rows, :, hud:].flip(2))
    for frame, original in zip(target[rows].numpy(), batch["target"][rows].numpy(), strict=True):
        shown, before = pong.read_frame(frame), pong.read_frame(original)
        assert shown.values == before.values and shown.ball[0] == before.ball[0]
        assert shown.ball[1] == pong.FIELD_TOP + pong.FIELD_BOTTOM - pong.BALL - before.ball[1]
    swap = {0: 0, 1: 2, 2: 1}  # noop stays, up and down swap
    assert action[rows].tolist() == [swap[a] for a in batch["action"][rows].tolist()]
    assert torch.equal(action[~rows], batch["action"][~rows])
    train_generator(recipe_for(tmp_path / "pong", steps=2, mirror_share=0.5), tmp_path / "run",
                    progress=False)  # fmt: skip
    assert (tmp_path / "run" / "checkpoints" / "latest").exists()
    with pytest.raises(MaagError, match="mirror_share needs a game whose rules read the same"):
        train_generator(recipe_for(data, mirror_share=0.5), tmp_path / "refused", progress=False)


def test_the_generators_worst_drawings_join_the_close_calls(tmp_path, data):
    """`worst_drawn`: with one target of the data shown in inverted colours, the shipped
    Pong generator draws that transition worst of all; a recipe's hard_count adds it to
    the close calls, and is refused without close_call_share."""
    from maag.metrics import worst_drawn
    from maag.train.loop import find_close_calls

    write_dataset("pong", "tracker", 2, 40, tmp_path / "pong", seed=5, progress=False)
    episodes = load_episodes(tmp_path / "pong")
    episodes["frames"] = episodes["frames"].copy()
    episodes["frames"][1, 17] = 255 - episodes["frames"][1, 17]
    planted = 1 * 40 + 17 - 1  # flat index: episode * T + target - 1
    game = maag.load("models/pong")
    worst = worst_drawn(game.generator, episodes, 3, 80, game.sampler.steps, game.tokens)
    assert len(worst) == 3 and worst[0] == planted
    recipe = recipe_for(
        tmp_path / "pong", close_call_share=0.5, close_call_model="models/pong",
        close_call_count=2, hard_count=1, hard_candidates=80,
    )  # fmt: skip
    found = find_close_calls(episodes, recipe)
    assert planted in found and len(found) == 3
    assert planted not in find_close_calls(episodes, recipe.updated({"hard_count": 0}))
    with pytest.raises(MaagError, match="hard_count adds to the close calls"):
        train_generator(recipe_for(data, hard_count=4), tmp_path / "refused", progress=False)


def test_alternatives_train_a_generator_told_its_events_and_an_observer_reading_them(tmp_path):
    from maag.train.logicnet import LogicNetRecipe, train_logicnet

    pong = tmp_path / "pong"
    write_dataset("pong", "tracker", 2, 120, pong, seed=1, progress=False)
    told = {"numerical": True, "event_tokens": True, "alternative_share": 0.5}
    train_generator(recipe_for(pong, steps=2, **told), tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "checkpoints" / "latest").exists()
    observer = {"data": str(pong), "steps": 2, "batch_size": 4, "observes": True}
    observer |= {"aligned": True, "alternative_share": 0.5, "checkpoint_every": 2, "warmup": 1}
    train_logicnet(LogicNetRecipe().updated(observer), tmp_path / "observer", progress=False)
    assert (tmp_path / "observer" / "checkpoints" / "latest").exists()
    for refused, recipe in (
        ("needs numerical and event_tokens", recipe_for(pong, alternative_share=0.5)),
        (
            "alternative_share is for observers",
            LogicNetRecipe().updated({"data": str(pong), "alternative_share": 0.5}),
        ),
        (
            "aligned moves the outcome an observer reads",
            LogicNetRecipe().updated({"data": str(pong), "aligned": True}),
        ),
        (
            "rollout_share is for generators",
            LogicNetRecipe().updated({"data": str(pong), "rollout_share": 0.5}),
        ),
    ):
        train = train_generator if "numerical" in refused else train_logicnet
        with pytest.raises(MaagError, match=refused):
            train(recipe, tmp_path / "refused", progress=False)


def test_interrupted_and_resumed_run_ends_with_the_same_weights(tmp_path, data):
    whole, split = tmp_path / "whole", tmp_path / "split"
    train_generator(recipe_for(data), whole, progress=False)
    train_generator(recipe_for(data, steps=3), split, progress=False)
    train_generator(
        GeneratorRecipe.resumed(split, {"steps": 6}), split, resume=True, progress=False
    )
    for name in ("model", "ema"):
        a = load_file(str(whole / "checkpoints/step-00000006" / f"{name}.safetensors"))
        b = load_file(str(split / "checkpoints/step-00000006" / f"{name}.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_loader_processes_draw_the_batches_of_a_run_the_same_each_time(tmp_path, data):
    """`loader_workers`: forked processes draw the batches (the map's histories built
    first and shared); a run with them trains, and again from the same seed ends with the
    same weights."""
    modules = {"numerical": True, "spatial": True, "rollout_share": 0.5, "loader_workers": 2}
    for run in ("a", "b"):
        train_generator(recipe_for(data, steps=3, **modules), tmp_path / run, progress=False)
    a = load_file(str(tmp_path / "a/checkpoints/step-00000003/ema.safetensors"))
    b = load_file(str(tmp_path / "b/checkpoints/step-00000003/ema.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    losses = [json.loads(line).get("loss") for line in (tmp_path / "a/metrics.jsonl").open()]
    assert all(np.isfinite([x for x in losses if x is not None]))


def test_map_histories_built_ahead_over_processes_give_the_views_built_on_demand(data):
    from maag.games import get_game
    from maag.transitions import MapViews

    episodes = load_episodes(data)
    spec = maag.data.Dataset(data).spec
    ahead = MapViews(episodes, spec, get_game(spec.name).sprite_mask)
    ahead.build_all(processes=2)
    on_demand = MapViews(episodes, spec, get_game(spec.name).sprite_mask)
    assert sorted(ahead.histories) == list(range(len(episodes["frames"])))
    episode, target = np.repeat(np.arange(4), 23), np.tile(np.arange(1, 24), 4)
    for key, view in ahead.views(episode, target).items():
        assert np.array_equal(view, on_demand.views(episode, target)[key]), key
    # the sprites of each last frame, kept from the build, are what the game finds in it
    last = episodes["frames"][episode, target - 1]
    found = np.stack([get_game(spec.name).sprite_mask(frame) for frame in last])
    assert found.any() and np.array_equal(ahead.views(episode, target)["sprites"], found)


def test_a_compiled_run_checkpoints_the_same_weights_as_a_plain_one(tmp_path, data):
    """`maag train --compile`: the same weight names (an export or a resume without
    --compile reads them) and, up to the compiled kernels' rounding, the same values."""
    from maag.train.generator import GeneratorTask
    from maag.train.loop import train

    recipe = recipe_for(data, steps=2, checkpoint_every=2)
    train(GeneratorTask(), recipe, tmp_path / "compiled", progress=False, compile=True)
    train_generator(recipe, tmp_path / "plain", progress=False)
    for name in ("model", "ema"):
        a = load_file(str(tmp_path / "compiled/checkpoints/step-00000002" / f"{name}.safetensors"))
        b = load_file(str(tmp_path / "plain/checkpoints/step-00000002" / f"{name}.safetensors"))
        assert a.keys() == b.keys(), name
        assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a), name


def test_resume_and_restart_mistakes_are_refused(tmp_path, data):
    with pytest.raises(MaagError, match="nothing to resume"):
        train_generator(recipe_for(data), tmp_path / "empty", resume=True, progress=False)
    train_generator(recipe_for(data, steps=3), tmp_path / "run", progress=False)
    with pytest.raises(MaagError, match="already holds checkpoints"):
        train_generator(recipe_for(data, steps=3), tmp_path / "run", progress=False)
    with pytest.raises(MaagError, match=r"min_lr 0\.5 must lie between 0 and lr"):
        train_generator(
            recipe_for(data, decay_lr=True, min_lr=0.5), tmp_path / "high", progress=False
        )
    for field, value, expected in [
        ("checkpoint_every", 0, "checkpoint_every must be 1 or more, got 0"),
        ("log_every", -1, "log_every must be 1 or more, got -1"),
        ("eval_every", -5, "eval_every must be 0 or more, got -5"),
    ]:
        with pytest.raises(MaagError, match=expected):
            train_generator(recipe_for(data, **{field: value}), tmp_path / field, progress=False)
    pong = tmp_path / "pong"
    write_dataset("pong", "tracker", 1, 10, pong, progress=False)
    with pytest.raises(MaagError, match="cannot change \\['lr'\\]"):
        GeneratorRecipe.resumed(tmp_path / "run", {"lr": 0.1, "steps": 9})
    with pytest.raises(MaagError, match="unlike the traveler data"):
        recipe = GeneratorRecipe.resumed(tmp_path / "run", {"data": str(pong), "steps": 6})
        train_generator(recipe, tmp_path / "run", resume=True, progress=False)


def test_broken_model_folders_are_refused(tmp_path, data):
    spec = maag.make("traveler").spec
    folder = save_model_folder(
        tmp_path / "m", tiny_model(), spec, load_episodes(data)["frames"][:1, 0],
        np.zeros((1, 2), int), 1, {},
    )  # fmt: skip
    with pytest.raises(MaagError, match="is a traveler model, not pong"):
        load(folder, game="pong")
    with pytest.raises(MaagError, match="no model folder"):
        load(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    weights = broken / "generator" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(MaagError, match="cannot be loaded"):
        load(broken)
    (broken / "model.json").write_text("{")
    with pytest.raises(MaagError, match="cannot be read"):
        load(broken)


def test_a_game_without_a_shipped_model_is_told_so():
    with pytest.raises(MaagError, match="no generative model is shipped for chess yet"):
        shipped_model("chess")


def test_a_palette_snaps_each_band_to_its_own_colours():
    hud, view = [[24, 24, 40], [255, 255, 255]], [[0, 0, 0], [255, 230, 60], [70, 160, 255]]
    palette = Palette(hud, view)
    frame = np.zeros((4, 2, 3), np.uint8)
    frame[0] = [[10, 5, 0], [200, 200, 210]]  # the HUD band (1 row)
    frame[1] = [[10, 5, 0], [200, 200, 90]]
    frame[2:] = [[60, 150, 240], [70, 160, 255]]
    snapped = palette.snap(frame, hud_height=1)
    assert snapped[0].tolist() == [[24, 24, 40], [255, 255, 255]]  # never a view colour
    assert snapped[1].tolist() == [[0, 0, 0], [255, 230, 60]]  # never the HUD's dark band
    assert (snapped[2:] == [70, 160, 255]).all()
    assert Palette.from_dict(palette.to_dict()).view.tolist() == view
    assert not Palette([], view).fits(8, (2, 3)) and Palette([], view).fits(0, (2, 4))
    for bad in ([[0, 0]], [[0, 0, 256]], [[0.5, 0, 0]], [[0, 0, 0]] * 65):
        with pytest.raises(MaagError, match="palette's view colours"):
            Palette(hud, bad)
    with pytest.raises(MaagError, match="at least one view colour"):
        Palette(hud, [])


def test_a_palette_snaps_a_batch_of_tensors_as_it_snaps_each_frame_in_numpy():
    """One implementation for play's frames (numpy, one at a time) and training's drawings
    (a tensor batch, on the device that drew them): the same colours, ties included."""
    rng = np.random.default_rng(0)
    # bright colours one step apart: a product of pixel and colour rounded to bfloat16 (as
    # autocast would) picks wrong ones
    view = [[0, 0, 0], [0, 0, 2], [200, 200, 200], [201, 200, 200], [200, 201, 199]]
    palette = Palette([[24, 24, 40], [255, 255, 255]], view)
    frames = rng.integers(196, 206, (6, 10, 8, 3), dtype=np.uint8)
    frames[0, 5, 0] = [0, 0, 1]  # as near black as the second colour: the first wins
    one_by_one = np.stack([palette.snap(frame, hud_height=2) for frame in frames])
    assert one_by_one[0, 5, 0].tolist() == [0, 0, 0]
    assert len(np.unique(one_by_one[:, 2:].reshape(-1, 3), axis=0)) == 4  # all but [0, 0, 2]
    with torch.autocast("cpu", torch.bfloat16):  # as in training: the snap stays exact
        batch = palette.snap(torch.from_numpy(frames), hud_height=2)
    assert isinstance(batch, torch.Tensor) and np.array_equal(batch.numpy(), one_by_one)
    assert np.array_equal(palette.snap(frames, hud_height=2), one_by_one)


def test_a_tile_games_palette_snaps_its_view_tile_by_tile():
    """Pac-Man's view is laid out on 4-pixel tiles: its palette holds the tiles the engine
    draws, a drawing snapped to it holds only those (a smudge between two becomes the
    nearer one), engine frames stay as they are, and numpy and tensors agree."""
    engine = maag.make("pacman", seed=3)
    spec, hud = engine.spec, engine.spec.hud_height
    frames = np.stack([engine.reset(seed=3).frame] + [engine.step(a).frame for a in [1, 1, 3] * 4])
    palette = palette_of(iter(frames), hud, spec.tile)
    tiles = palette.tiles
    assert tiles.shape[1:] == (4, 4, 3) and 4 <= len(tiles) <= 8
    drawn_tiles = frames[:, hud:].reshape(-1, 14, 4, 16, 4, 3).transpose(0, 1, 3, 2, 4, 5)
    assert len(np.unique(drawn_tiles.reshape(-1, 48), axis=0)) == len(tiles)
    assert np.array_equal(palette.snap(frames, hud), frames)
    smudged = frames.copy()
    smudged[:, hud : hud + 4, :4] = smudged[:, hud : hud + 4, :4] // 2 + 10  # a faded tile
    smudged[:, hud + 4 :] = np.clip(smudged[:, hud + 4 :].astype(int) + 9, 0, 255)
    snapped = palette.snap(smudged, hud)
    assert np.array_equal(snapped[:, hud + 4 :], frames[:, hud + 4 :])
    corner = snapped[:, hud : hud + 4, :4].reshape(len(frames), 48)
    assert {tuple(t) for t in corner} <= {tuple(t) for t in tiles.reshape(-1, 48)}
    assert np.array_equal(palette.snap(torch.from_numpy(smudged), hud).numpy(), snapped)
    again = Palette.from_dict(json.loads(json.dumps(palette.to_dict())))
    assert np.array_equal(again.tiles, tiles)
    assert palette.fits(hud, spec.view_size) and not palette.fits(hud, (62, 56))
    assert palette_of(iter(frames), hud).tiles is None  # no grid given: colours alone
    noise = np.random.default_rng(0).integers(0, 2, (1, 64, 64, 3), dtype=np.uint8) * 255
    assert palette_of(iter(noise), hud, spec.tile).tiles is None  # too many to be a set
    with pytest.raises(MaagError, match="palette's tiles"):
        Palette(palette.hud, palette.view, tiles[..., :2])


def test_a_model_exported_with_a_palette_draws_only_the_datas_colours(tmp_path, data):
    run = tmp_path / "run"
    train_generator(recipe_for(data), run, progress=False)
    folder = export_model(str(run), str(tmp_path / "m"), palette=True)
    frames = load_episodes(data)["frames"]
    hud = maag.make("traveler").spec.hud_height
    bands = [np.unique(f.reshape(-1, 3), axis=0) for f in (frames[:, :, :hud], frames[:, :, hud:])]
    config = json.loads((folder / "model.json").read_text())
    assert config["palette"] == {"hud": bands[0].tolist(), "view": bands[1].tolist()}
    game = load(folder)
    game.reset(seed=1)
    drawn = np.stack([game.step(a).frame for a in (0, 1, 2, 2, 1)])
    for band, colours in zip((drawn[:, :hud], drawn[:, hud:]), bands, strict=True):
        assert {tuple(c) for c in band.reshape(-1, 3)} <= {tuple(c) for c in colours}
    plain = load(export_model(str(run), str(tmp_path / "plain")))
    plain.reset(seed=1)
    unsnapped = np.stack([plain.step(a).frame for a in (0, 1, 2, 2, 1)]).reshape(-1, 3)
    assert not {tuple(c) for c in unsnapped} <= {tuple(c) for c in np.concatenate(bands)}
    (folder / "model.json").write_text(json.dumps(config | {"palette": [[0, 0, 0]]}))
    with pytest.raises(MaagError, match=r"model\.json: a palette is"):
        load(folder)
    with pytest.raises(MaagError, match="give --palette too"):
        export_model(str(run), str(tmp_path / "t"), tiles=True)
    with pytest.raises(MaagError, match="traveler's view is not laid out on tiles"):
        export_model(str(run), str(tmp_path / "t"), palette=True, tiles=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_two_processes(arguments: list[str], env: dict) -> subprocess.CompletedProcess:
    """`accelerate launch` two CPU processes of `python -m maag ARGUMENTS`; kill all if it hangs."""
    accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
    command = [
        accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()), "-m", "maag", *arguments,
    ]  # fmt: skip
    launcher = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = launcher.communicate(timeout=300)
    finally:
        if launcher.poll() is None:  # kill the launcher and both ranks
            os.killpg(launcher.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(command, launcher.returncode, stdout, stderr)


def test_two_processes_under_accelerate_train_in_sync(tmp_path, data):
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    arguments = [
        "train", "generator", "--data", str(data), "--out", str(tmp_path / "run"),
        "--preset", "XXS", "--steps", "4", "--batch-size", "2", "--checkpoint-every", "2",
        "--sample-every", "0", "--mixed-precision", "no", "--quiet",
    ]  # fmt: skip
    result = launch_two_processes(arguments, env)
    # CI saw rank 0 abort once (SIGABRT) in some twenty runs, not reproduced since: one more
    # try, from scratch, only when a rank was killed by a signal (torchrun: "exitcode : -6").
    if result.returncode != 0 and re.search(r"exitcode\s*: -\d", result.stderr):
        shutil.rmtree(tmp_path / "run", ignore_errors=True)
        result = launch_two_processes(arguments, env)
    # the ranks' own messages come before the launcher's summary of the failure
    assert result.returncode == 0, result.stderr[-8000:]
    stdout = result.stdout
    assert "2 process(es)" in stdout
    assert "2 processes ended with identical weights" in stdout
    checkpoint = tmp_path / "run/checkpoints/step-00000004"
    assert (checkpoint / "rng-rank0.json").exists() and (checkpoint / "rng-rank1.json").exists()


def test_warm_start_copies_matching_weights_and_keeps_new_layers_fresh(tmp_path, data):
    from maag.train.generator import GeneratorTask
    from maag.train.loop import warm_start

    train_generator(recipe_for(data, steps=3), tmp_path / "base", progress=False)
    spec = maag.make("traveler").spec
    numerical = GeneratorTask().build(recipe_for(data, numerical=True, spatial=True), spec)
    fresh_tokens = numerical.cond_embed.weight.clone()
    warm_start(numerical, str(tmp_path / "base"), spec, "generator")
    base = load_file(str(tmp_path / "base/checkpoints/step-00000003/ema.safetensors"))
    state = numerical.state_dict()
    patch = "patch_embed.weight"  # 4 more input channels (the map view), zero at first
    assert all(torch.equal(state[k], v) for k, v in base.items() if k != patch)
    assert torch.equal(state[patch][:, : base[patch].shape[1]], base[patch])
    assert not state[patch][:, base[patch].shape[1] :].any()
    assert torch.equal(numerical.cond_embed.weight, fresh_tokens)
    with pytest.raises(MaagError, match="holds no checkpoint"):
        warm_start(numerical, str(tmp_path / "nothing"), spec, "generator")


def test_warm_start_grows_the_token_tables_for_event_tokens(tmp_path, data):
    """A run with digit tokens starts one with event tokens too: the old token rows and
    positions are copied, the new ones start at zero."""
    from maag.train.generator import GeneratorTask
    from maag.train.loop import warm_start

    train_generator(recipe_for(data, steps=3, numerical=True), tmp_path / "base", progress=False)
    spec = maag.make("traveler").spec
    grown = GeneratorTask().build(recipe_for(data, numerical=True, event_tokens=True), spec)
    warm_start(grown, str(tmp_path / "base"), spec, "generator")
    base = load_file(str(tmp_path / "base/checkpoints/step-00000003/ema.safetensors"))
    state = grown.state_dict()
    for key in ("cond_embed.weight", "cond_pos"):
        old = base[key]
        assert state[key].shape != old.shape
        assert torch.equal(state[key][tuple(slice(0, n) for n in old.shape)], old)
        assert state[key].abs().sum() == old.abs().sum()  # the rest is zero
    # a game that gained an event (appended to its list) starts from one without it, with
    # one more token; events dropped or put before the old ones are another game
    gained = dataclasses.replace(spec, events=(*spec.events, EventSpec("extra")))
    more = GeneratorTask().build(recipe_for(data, numerical=True, event_tokens=True), gained)
    warm_start(more, str(tmp_path / "base"), gained, "generator")
    assert more.cond_pos.shape[1] == grown.cond_pos.shape[1] + 1
    # an event that now restores the world changes the map's views, not the network
    restoring = (dataclasses.replace(spec.events[0], restores_world=True), *spec.events[1:])
    restored = dataclasses.replace(spec, events=restoring)
    warm_start(grown, str(tmp_path / "base"), restored, "generator")
    for events in ((EventSpec("extra"), *spec.events), spec.events[1:]):
        other = dataclasses.replace(spec, events=events)
        with pytest.raises(MaagError, match="another game"):
            warm_start(grown, str(tmp_path / "base"), other, "generator")


def test_warm_start_into_a_deeper_network_computes_what_the_source_does(tmp_path, data):
    """A run starts one with more blocks (recipe `depth`): the blocks it lacks start as the
    identity, so the trunk computes what the source's does; a deeper source is refused."""
    from maag.models.dit import run_trunk
    from maag.train.generator import GeneratorTask
    from maag.train.loop import warm_start

    train_generator(recipe_for(data, steps=3), tmp_path / "base", progress=False)
    spec = maag.make("traveler").spec
    shallow, deep = (GeneratorTask().build(recipe_for(data, depth=d), spec) for d in (0, 4))
    for network in (shallow, deep):
        warm_start(network, str(tmp_path / "base"), spec, "generator")
    assert len(deep.blocks) == 2 * len(shallow.blocks) == 4
    torch.manual_seed(0)
    tokens = torch.randn(2, 16, shallow.config.hidden_size)
    conditions = (torch.rand(2), torch.zeros(2), torch.tensor([0, 1]), None, None)
    with torch.no_grad():
        drawn = [run_trunk(network, tokens, *conditions)[0] for network in (shallow, deep)]
    assert torch.equal(drawn[0], drawn[1])
    train_generator(recipe_for(data, steps=1, depth=4), tmp_path / "deep", progress=False)
    with pytest.raises(MaagError, match="more transformer blocks"):
        warm_start(shallow, str(tmp_path / "deep"), spec, "generator")
    with pytest.raises(MaagError, match="depth must be"):
        GeneratorTask().build(recipe_for(data, depth=-1), spec)


def test_tokens_in_adaln_start_at_zero_and_then_condition_every_block(tmp_path, data):
    """With `tokens_in_adaln` the condition tokens are also summed into the adaLN vector:
    warm-started from a network without it, the trunk computes what the source's does;
    once the new table is not zero the vector depends on the tokens; it needs numerical."""
    from maag.models.dit import run_trunk
    from maag.train.generator import GeneratorTask
    from maag.train.loop import warm_start

    recipe = recipe_for(data, numerical=True, steps=3)
    train_generator(recipe, tmp_path / "base", progress=False)
    spec = maag.make("traveler").spec
    plain, summed = (
        GeneratorTask().build(recipe.updated({"tokens_in_adaln": on}), spec) for on in (False, True)
    )
    for network in (plain, summed):
        warm_start(network, str(tmp_path / "base"), spec, "generator")
    torch.manual_seed(0)
    tokens = torch.randn(2, 16, plain.config.hidden_size)
    cond_ids = torch.zeros(2, plain.config.num_cond_tokens, dtype=torch.long)  # row 0: null
    cond_ids[1] = torch.randint(1, plain.config.cond_vocab_size, (plain.config.num_cond_tokens,))
    conditions = (torch.full((2,), 0.5), torch.zeros(2), torch.zeros(2, dtype=torch.long), None)
    with torch.no_grad():
        drawn = [run_trunk(net, tokens, *conditions, cond_ids) for net in (plain, summed)]
        assert torch.equal(drawn[0][0], drawn[1][0]) and torch.equal(drawn[0][1], drawn[1][1])
        summed.cond_adaln.weight.normal_()
        vectors = [run_trunk(net, tokens, *conditions, cond_ids)[1] for net in (plain, summed)]
    assert torch.equal(vectors[0][0], vectors[0][1])  # without it the tokens only attend
    assert not torch.allclose(vectors[1][0], vectors[1][1])
    with pytest.raises(MaagError, match="tokens_in_adaln needs numerical"):
        GeneratorTask().build(recipe_for(data, tokens_in_adaln=True), spec)


def test_warm_start_from_a_shipped_model_folder(tmp_path, data):
    """init_from may name a model folder (float16 weights): its generator's weights start
    the run, within float16's precision; a folder without that network is refused."""
    from maag.train.generator import GeneratorTask
    from maag.train.loop import warm_start

    train_generator(recipe_for(data, steps=3), tmp_path / "run", progress=False)
    export_model(str(tmp_path / "run"), str(tmp_path / "model"))
    spec = maag.make("traveler").spec
    model = GeneratorTask().build(recipe_for(data), spec)
    warm_start(model, str(tmp_path / "model"), spec, "generator")
    trained = load_file(str(tmp_path / "run/checkpoints/step-00000003/ema.safetensors"))
    state = model.state_dict()
    assert all(state[k].dtype == torch.float32 for k in trained)
    assert all(torch.allclose(state[k], v, rtol=1e-3, atol=1e-4) for k, v in trained.items())
    with pytest.raises(MaagError, match="cannot be read"):
        warm_start(model, str(tmp_path / "model"), spec, "logicnet")
    with pytest.raises(MaagError, match="another game"):
        warm_start(model, str(tmp_path / "model"), maag.make("pong").spec, "generator")


def test_augment_draws_from_the_given_generator_and_redraws_only_rows_told_their_tokens(data):
    """The model-free augmentation (made in the loader processes) is a function of the
    batch and the sampler's generator, and shows random values only to rows with tokens."""
    from maag.train.generator import GeneratorTask

    episodes = load_episodes(data)
    recipe = GeneratorRecipe(
        preset="XXS", numerical=True, token_dropout=0.5, random_values_share=0.5
    )
    task = GeneratorTask()
    task.build(recipe, maag.make("traveler").spec)

    def augmented(seed: int) -> dict:
        batch = TransitionSampler(episodes, 4, seed=0).sample(64)
        return task.augment(batch, recipe, np.random.default_rng(seed))

    first, again, other = augmented(1), augmented(1), augmented(2)
    for key in ("keep_tokens", "values", "target"):
        assert torch.equal(first[key], again[key]), key
    assert not torch.equal(first["keep_tokens"], other["keep_tokens"])
    keep = first["keep_tokens"]
    assert 0 < keep.sum() < len(keep)
    plain = TransitionSampler(episodes, 4, seed=0).sample(64)
    redrawn = (first["values"] != plain["values"]).any(dim=1)
    assert redrawn.any() and not (redrawn & ~keep).any()


def test_moving_weight_puts_the_loss_on_the_pixels_that_change(data):
    from maag.train.generator import GeneratorTask

    episodes = load_episodes(data)
    batch = TransitionSampler(episodes, 4, seed=0).sample(4)
    plain, weighted = (GeneratorRecipe(preset="XXS", moving_weight=w) for w in (1.0, 20.0))
    task = GeneratorTask()
    model = task.build(plain, maag.make("traveler").spec)
    losses = [
        task.loss(model, batch, r, torch.Generator().manual_seed(0), "cpu")
        for r in (plain, weighted)
    ]
    assert losses[0] != losses[1]
    # the weight falls where the target differs from the base the generator starts from
    base = torch.zeros(1, 3, 8, 8)
    target = base.clone()
    target[0, 2, 3:5, 4:6] = 0.5  # a 2x2 sprite in one channel
    target[0, :, 0, 0] = 0.05  # a change under the threshold
    weight = change_weight(target, base, 5.0)
    assert weight.shape == (1, 1, 8, 8)
    assert weight[0, 0, 3:5, 4:6].eq(5).all() and weight.sum() == 64 - 4 + 4 * 5
    # a weight of ones is the plain MSE
    residual = torch.rand(2, 3, 64, 64) * 2 - 1
    args = (residual, torch.zeros(2, 3, 64, 64), torch.zeros(2, 12, 64, 64), torch.tensor([0, 1]))
    plain_loss = training_loss(model, *args, torch.zeros(2), torch.Generator().manual_seed(1))
    ones = torch.ones(2, 1, 64, 64)
    same = training_loss(
        model, *args, torch.zeros(2), torch.Generator().manual_seed(1), weight=ones
    )
    assert torch.allclose(plain_loss, same)


def test_every_shipped_recipe_loads_as_its_networks_recipe():
    """A recipe in train/recipes with a misspelt field fails here, not hours into a run."""
    from maag.train.logicnet import LogicNetRecipe
    from maag.train.loop import RECIPES

    kinds = {"generator": GeneratorRecipe, "logicnet": LogicNetRecipe}
    paths = sorted(RECIPES.glob("*.json"))
    assert paths
    for path in paths:
        recipe = kinds[json.loads(path.read_text())["network"]].load(path.stem)
        assert recipe.data and recipe.steps > 0, path.name


def test_the_rate_warms_up_then_stays_or_falls_along_a_cosine_to_min_lr():
    from maag.train.loop import learning_rate

    steady = GeneratorRecipe(lr=1e-3, warmup=10, steps=110)
    decayed = GeneratorRecipe(lr=1e-3, warmup=10, steps=110, decay_lr=True, min_lr=1e-4)
    for recipe in (steady, decayed):
        assert learning_rate(recipe, 0) == pytest.approx(1e-4)
        assert learning_rate(recipe, 9) == pytest.approx(1e-3)
        assert learning_rate(recipe, 10) == pytest.approx(1e-3)
    assert learning_rate(steady, 109) == pytest.approx(1e-3)
    assert learning_rate(decayed, 60) == pytest.approx(5.5e-4)  # half way: the mean
    assert learning_rate(decayed, 110) == pytest.approx(1e-4)
    rates = [learning_rate(decayed, step) for step in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(rates))
