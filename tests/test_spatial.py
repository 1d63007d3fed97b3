"""The spatial module's map: sparse chunks, the write-back policy, training histories."""

import numpy as np
import pytest

from maag.errors import MaagError
from maag.spatial import MapHistory, SpatialMap


def texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("camera", [(0, 0), (20, 27), (-45, -7), (-3, 30), (-64, -64)])
def test_write_then_retrieve_across_chunk_borders(camera):
    rng = np.random.default_rng(0)
    scene = texture(rng, 40, 50)  # spans several 32 px chunks from any camera
    spatial = SpatialMap()
    spatial.write(scene, camera, step=7)
    canvas, known, last_seen = spatial.retrieve(camera, (40, 50))
    assert canvas.dtype == np.uint8 and known.dtype == bool and last_seen.dtype == np.int32
    np.testing.assert_array_equal(canvas, scene)
    assert known.all() and (last_seen == 7).all()

    # a window shifted by (+10, -5) sees the overlap and nothing else
    x, y = camera
    canvas, known, last_seen = spatial.retrieve((x + 10, y - 5), (40, 50))
    np.testing.assert_array_equal(canvas[5:, :40], scene[:35, 10:])
    assert known[5:, :40].all() and not known[:5].any() and not known[:, 40:].any()
    assert (canvas[~known] == 0).all() and (last_seen[~known] == -1).all()
    assert (last_seen[known] == 7).all()


def test_unknown_pixels_are_reported_unknown():
    spatial = SpatialMap()
    canvas, known, last_seen = spatial.retrieve((-100, 300), (16, 24))
    assert canvas.shape == (16, 24, 3) and not canvas.any()
    assert not known.any() and (last_seen == -1).all()
    assert spatial.num_chunks == 0 and spatial.nbytes == 0


def test_small_drift_is_ignored_big_change_is_written_keep_is_untouched():
    rng = np.random.default_rng(1)
    scene = texture(rng, 20, 20).clip(60, 195)  # room to drift both ways
    spatial = SpatialMap(change_threshold=48)
    spatial.write(scene, (-10, -10), step=0)

    later = scene.copy()
    later[0:5] += 48  # at the threshold: drift, ignored
    later[5:10] -= 20
    later[10:15, :, 1] += 49  # one channel over the threshold: a real change
    keep = np.zeros((20, 20), bool)
    keep[15:, :10] = True  # a sprite over these pixels: not written at all
    later[15:] += 128  # a big change (wraps around), both kept and not kept
    spatial.write(later, (-10, -10), step=3, keep=keep)

    canvas, known, last_seen = spatial.retrieve((-10, -10), (20, 20))
    assert known.all()
    np.testing.assert_array_equal(canvas[:10], scene[:10])
    np.testing.assert_array_equal(canvas[10:15], later[10:15])
    np.testing.assert_array_equal(canvas[15:, 10:], later[15:, 10:])
    np.testing.assert_array_equal(canvas[15:, :10], scene[15:, :10])
    assert (last_seen[~keep] == 3).all() and (last_seen[keep] == 0).all()

    # an unknown pixel under `keep` stays unknown
    fresh = SpatialMap()
    fresh.write(later, (0, 0), step=0, keep=keep)
    _, known, last_seen = fresh.retrieve((0, 0), (20, 20))
    np.testing.assert_array_equal(known, ~keep)
    assert (last_seen[keep] == -1).all()


def test_bad_views_are_refused():
    spatial = SpatialMap()
    with pytest.raises(MaagError, match="uint8"):
        spatial.write(np.zeros((4, 4, 3), np.float32), (0, 0), 0)
    with pytest.raises(MaagError, match="keep must be bool"):
        spatial.write(np.zeros((4, 4, 3), np.uint8), (0, 0), 0, keep=np.zeros((4, 5), bool))


def test_memory_stays_bounded_on_a_long_walk():
    rng = np.random.default_rng(2)
    world = texture(rng, 16, 200)
    spatial = SpatialMap()
    x, direction, held = 0, 1, []
    for step in range(100_000):
        spatial.write(world[:, x : x + 8], (x - 100, 5), step)  # a narrow view over 200 px
        x += direction
        if x in (0, 192):
            direction = -direction
        if step in (1_000, 99_999):
            held.append((spatial.num_chunks, spatial.nbytes))
    assert held[0] == held[1]
    assert held[1][0] == 8 and held[1][1] == 8 * 32 * 32 * (3 + 1 + 4 + 3)  # + first looks
    canvas, known, last_seen = spatial.retrieve((-100, 5), (16, 200))
    np.testing.assert_array_equal(canvas, world)
    assert known.all() and last_seen.max() == 99_999


def test_prefill_shows_up_in_retrieve():
    rng = np.random.default_rng(3)
    image = texture(rng, 10, 40)
    mask = np.zeros((10, 40), bool)
    mask[:, ::3] = True
    spatial = SpatialMap()
    spatial.prefill(image, (-20, 28), mask)
    canvas, known, last_seen = spatial.retrieve((-20, 28), (10, 40))
    np.testing.assert_array_equal(known, mask)
    np.testing.assert_array_equal(canvas[mask], image[mask])
    assert (last_seen == -1).all()
    # prefilled pixels are known: play changes them only by the policy
    spatial.write(image // 2 + 1, (-20, 28), step=0)
    canvas, known, last_seen = spatial.retrieve((-20, 28), (10, 40))
    assert known.all() and (last_seen == 0).all()
    unchanged = mask & (np.abs(image.astype(int) - (image // 2 + 1)).max(axis=-1) <= 48)
    np.testing.assert_array_equal(canvas[unchanged], image[unchanged])


def test_state_dict_round_trips_exactly():
    rng = np.random.default_rng(4)
    spatial = SpatialMap(chunk_size=16, change_threshold=30)
    for step in range(20):
        camera = tuple(int(v) for v in rng.integers(-40, 40, size=2))
        keep = rng.random((12, 20)) < 0.2
        spatial.write(texture(rng, 12, 20), camera, step, keep)
    state = spatial.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    restored = SpatialMap.from_state(state)
    assert restored.chunk_size == 16 and restored.change_threshold == 30
    assert restored.num_chunks == spatial.num_chunks and restored.nbytes == spatial.nbytes
    for a, b in zip(
        spatial.retrieve((-60, -60), (120, 120)),
        restored.retrieve((-60, -60), (120, 120)),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    empty = SpatialMap.from_state(SpatialMap().state_dict())
    assert empty.num_chunks == 0
    with pytest.raises(MaagError, match="malformed"):
        SpatialMap.from_state({k: v for k, v in state.items() if k != "keys"})


def test_restore_puts_every_known_pixel_back_to_its_first_look():
    rng = np.random.default_rng(9)
    level = texture(rng, 24, 40)
    prefilled = np.zeros((24, 40), bool)
    prefilled[:, :20] = True
    spatial = SpatialMap(chunk_size=16)
    spatial.prefill(level, (-8, 4), prefilled)  # a first look of its own
    first = level.copy()
    first[:, 20:] = texture(rng, 24, 20)  # the rest first seen in play
    spatial.write(first, (-8, 4), step=0)
    eaten = first.copy()
    eaten[4:12, 4:36] = 255 - eaten[4:12, 4:36] // 4  # changes the policy takes
    spatial.write(eaten, (-8, 4), step=1)
    canvas, _, _ = spatial.retrieve((-8, 4), (24, 40))
    assert not np.array_equal(canvas, first)
    saved = SpatialMap.from_state(spatial.state_dict())
    for restored in (spatial, saved):  # first looks are kept in sessions too
        restored.restore()
        canvas, known, last_seen = restored.retrieve((-12, 0), (32, 48))
        np.testing.assert_array_equal(canvas[4:28, 4:44], first)
        assert known[4:28, 4:44].sum() == known.sum() == 24 * 40  # nothing else made known
        assert (last_seen[4:28, 4:44] == 1).all()


def random_episode(seed: int, steps: int, size=(20, 24)):
    """Frames of a changing world seen along a random walk: big repaints at random times,
    small drift everywhere, a moving sprite kept out of the map."""
    rng = np.random.default_rng(seed)
    h, w = size
    world = texture(rng, 70, 90)
    origin = np.array([-37, -21])  # world pixel of world[0, 0]
    position = np.array([10, 10])
    scenes, cameras, keeps = [], [], []
    for _ in range(steps):
        position = np.clip(position + rng.integers(-6, 7, size=2), 0, [90 - w, 70 - h])
        for _ in range(rng.integers(0, 3)):  # repaint a small patch
            y, x = rng.integers(0, 66), rng.integers(0, 86)
            world[y : y + 4, x : x + 4] = rng.integers(0, 256, size=3, dtype=np.uint8)
        x, y = position
        scene = world[y : y + h, x : x + w].astype(np.int16)
        scene += rng.integers(-12, 13, size=scene.shape, dtype=np.int16)  # drift
        keep = np.zeros((h, w), bool)
        sy, sx = rng.integers(0, h - 4), rng.integers(0, w - 4)
        keep[sy : sy + 4, sx : sx + 4] = True
        scene[keep] = 0  # the sprite
        scenes.append(scene.clip(0, 255).astype(np.uint8))
        cameras.append(tuple(int(v) for v in origin + position))
        keeps.append(keep)
    return np.stack(scenes), np.array(cameras, np.int32), np.stack(keeps)


@pytest.mark.parametrize("chunk_size", [32, 8])
@pytest.mark.parametrize("restores", [(), (1, 30, 31, 79)])
def test_map_history_matches_the_map_written_step_by_step(chunk_size, restores):
    scenes, cameras, keeps = random_episode(5, steps=80)
    history = MapHistory(scenes, cameras, keeps, chunk_size=chunk_size, restores=restores)
    spatial = SpatialMap(chunk_size=chunk_size)
    rng = np.random.default_rng(6)
    for t in range(len(scenes) + 1):
        windows = [(tuple(cameras[min(t, len(scenes) - 1)]), (20, 24)), ((-50, -30), (90, 110))]
        windows.append((tuple(int(v) for v in rng.integers(-60, 40, size=2)), (13, 37)))
        for camera, size in windows:
            expected = spatial.retrieve(camera, size)
            got = history.view(t, camera, size)
            for e, g in zip(expected, got, strict=True):
                assert e.dtype == g.dtype
                np.testing.assert_array_equal(g, e, err_msg=f"t={t} camera={camera}")
        if t < len(scenes):
            spatial.write(scenes[t], tuple(cameras[t]), t, keeps[t])
        if t + 1 in restores:  # before frame t + 1 is drawn: in view(t + 1) and on
            spatial.restore()


def test_map_history_of_a_scrolling_walk_is_compact():
    """A Traveler-like episode: static scenery, a camera scrolling by 8 px, the player kept
    out at a fixed place in the view. The history holds a fraction of the frames: each pixel's
    changes, and one run per stretch of consecutive steps it was written (about 12 bytes per
    pixel entering the view), never a copy of the map per step."""
    rng = np.random.default_rng(8)
    world = texture(rng, 56, 480)
    keep = np.zeros((56, 64), bool)
    keep[40:48, 32:40] = True
    x, scenes, cameras = 200, [], []
    for _ in range(600):
        x = int(np.clip(x + 8 * rng.integers(-1, 2), 0, 480 - 64))
        scenes.append(world[:, x : x + 64])
        cameras.append((x - 240, 0))
    scenes = np.stack(scenes)
    history = MapHistory(scenes, cameras, [keep] * len(scenes))
    assert history.nbytes < scenes.nbytes / 2
    spatial = SpatialMap()
    for t in range(300):
        spatial.write(scenes[t], cameras[t], t, keep)
    expected = spatial.retrieve(cameras[300], (56, 64))
    for e, g in zip(expected, history.view(300, cameras[300], (56, 64)), strict=True):
        np.testing.assert_array_equal(g, e)


def test_map_history_without_keep_masks_and_at_the_ends():
    scenes, cameras, _ = random_episode(7, steps=10)
    history = MapHistory(scenes, cameras)
    canvas, known, last_seen = history.view(0, tuple(cameras[0]), (20, 24))
    assert not known.any() and not canvas.any() and (last_seen == -1).all()
    spatial = SpatialMap()
    for t in range(10):
        spatial.write(scenes[t], tuple(cameras[t]), t)
    for e, g in zip(
        spatial.retrieve((-40, -25), (80, 100)),
        history.view(10, (-40, -25), (80, 100)),
        strict=True,
    ):
        np.testing.assert_array_equal(g, e)
    with pytest.raises(MaagError, match="as many cameras"):
        MapHistory(scenes, cameras[:5])
    with pytest.raises(MaagError, match=r"restores are frames 1\.\.9"):
        MapHistory(scenes, cameras, restores=[0])
