"""GR targets against ``gr-targets.md``: exact properties, hand-computed values, cross-checks, codec bounds."""

from __future__ import annotations

import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sardata.errors import GRInputError
from sardata.features.gr import (
    GR_CODECS,
    GR_EPS,
    GR_MAX,
    GR_RADII,
    decode_gr,
    encode_gr,
    gr_maps,
    gr_maps_dense,
    gr_patch_targets,
    patchify_2d,
)


def oracle(x: np.ndarray, radii=GR_RADII) -> np.ndarray:
    """Slow float64 definition: direct window sums over the reflect-padded image + ε (pure numpy)."""
    out = []
    for k in radii:
        p = np.pad(x.astype(np.float64), k, mode="reflect") + GR_EPS
        win = np.lib.stride_tricks.sliding_window_view(p, (2 * k + 1, 2 * k + 1))  # (H, W, 2k+1, 2k+1)
        left, right = win[..., :, : k + 1].sum((-1, -2)), win[..., :, k:].sum((-1, -2))
        top, bottom = win[..., : k + 1, :].sum((-1, -2)), win[..., k:, :].sum((-1, -2))
        out.append(np.sqrt(np.log(left / right) ** 2 + np.log(top / bottom) ** 2))
    return np.stack(out).astype(np.float32)


def speckle(h: int, w: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    img = np.clip(np.sqrt(rng.exponential(0.05, (h, w))), 0, 1)
    return torch.from_numpy(img).float()[None, None]


images = st.integers(18, 80).flatmap(
    lambda h: st.integers(18, 80).flatmap(lambda w: arrays(np.float32, (h, w), elements=st.floats(0, 1, width=32)))
)


@settings(max_examples=40, deadline=None)
@given(st.integers(18, 60), st.integers(18, 60), st.floats(0, 1))
def test_constant_image_is_exactly_zero(h: int, w: int, value: float) -> None:
    assert torch.count_nonzero(gr_maps(torch.full((1, 1, h, w), value))) == 0


@settings(max_examples=40, deadline=None)
@given(images)
def test_corners_zero_and_flips_transposes_commute_bitwise(img: np.ndarray) -> None:
    x = torch.from_numpy(img)[None, None]
    g = gr_maps(x)
    assert g.dtype == torch.float32 and g.shape == (1, 4, *img.shape)
    assert torch.count_nonzero(g[..., [0, 0, -1, -1], [0, -1, 0, -1]]) == 0
    assert torch.equal(gr_maps(x.flip(-1)), g.flip(-1))
    assert torch.equal(gr_maps(x.flip(-2)), g.flip(-2))
    assert torch.equal(gr_maps(x.transpose(-1, -2)), g.transpose(-1, -2))
    assert torch.equal(gr_maps(x.rot90(1, (-2, -1))), g.rot90(1, (-2, -1)))
    assert float(g.min()) >= 0 and float(g.max()) <= GR_MAX and torch.isfinite(g).all()


@settings(max_examples=15, deadline=None)
@given(images)
def test_matches_float64_oracle(img: np.ndarray) -> None:
    np.testing.assert_allclose(gr_maps(torch.from_numpy(img)[None, None])[0].numpy(), oracle(img), atol=1e-6, rtol=0)


@pytest.mark.parametrize("k,expected", [(5, 0.2006707), (9, 0.3639654), (13, 0.5322168), (17, 0.7081851)])
def test_hand_computed_ramp(k: int, expected: float) -> None:
    ramp = (0.01 * torch.arange(48, dtype=torch.float64)).expand(40, 48)[None, None]
    s = GR_RADII.index(k)
    horizontal = gr_maps(ramp.float())[0, s]
    vertical = gr_maps(ramp.transpose(-1, -2).float())[0, s]
    assert torch.allclose(horizontal[:, 24], torch.full((40,), expected), atol=1e-6, rtol=0)
    assert torch.allclose(vertical[24, :], torch.full((40,), expected), atol=1e-6, rtol=0)
    assert expected == pytest.approx(math.log((50 + k) / (50 - k)), abs=1e-7)


def test_not_scale_invariant() -> None:
    ramp = (0.02 * torch.arange(48, dtype=torch.float64)).expand(40, 48)[None, None].float()
    value = float(gr_maps(ramp)[0, 0, 10, 24])
    assert value == pytest.approx(math.log(54 / 44), abs=1e-6) and value == pytest.approx(0.2047944, abs=1e-6)
    assert abs(value - math.log(26.5 / 21.5)) > 1e-3  # the ε-free limit 0.2090918 is NOT what GR gives
    base = float(gr_maps(ramp / 2)[0, 0, 10, 24])
    assert abs(value - base) > 1e-3


@pytest.mark.parametrize("shape", [(128, 129), (177, 178), (224, 224)])
def test_agrees_with_dense_conv(shape: tuple[int, int]) -> None:
    x = torch.cat([speckle(*shape, seed) for seed in range(2)])
    fast = gr_maps(x)
    assert (fast - gr_maps_dense(x.double(), dtype=torch.float64)).abs().max() < 1e-6
    assert (fast - gr_maps_dense(x)).abs().max() < 1e-5  # the float32 reference formulation


def test_batch_independence_bitwise() -> None:
    x = torch.cat([speckle(40, 52, s) for s in range(5)])
    g = gr_maps(x)
    for i in range(5):
        assert torch.equal(gr_maps(x[i : i + 1]), g[i : i + 1])


@pytest.mark.parametrize("shape", [(19, 300), (300, 19), (18, 18)])
def test_extreme_aspect_ratios_match_oracle(shape: tuple[int, int]) -> None:
    """Buffers are shared between the horizontal and vertical passes: both orientations must fit."""
    x = speckle(*shape, seed=3)
    np.testing.assert_allclose(gr_maps(x)[0].numpy(), oracle(x[0, 0].numpy()), atol=1e-6, rtol=0)


def test_chunks_and_kept_workspaces_are_bitwise_consistent() -> None:
    """224² batches run in CPU chunks (the last one shorter) with per-thread kept workspaces: no state leaks."""
    x = torch.cat([speckle(224, 224, s) for s in range(5)])
    other = speckle(40, 52, 9)
    alone = [gr_maps(x[i : i + 1]) for i in range(5)]
    first_other = gr_maps(other)
    batch = gr_maps(x)
    for i in range(5):
        assert torch.equal(batch[i : i + 1], alone[i])
    assert torch.equal(gr_maps(other), first_other)
    assert batch.is_contiguous() and batch.dtype == torch.float32 and batch.device.type == "cpu"


def test_threads_do_not_share_workspaces() -> None:
    xs = [speckle(64 + 8 * (i % 2), 72, i) for i in range(8)]
    expected = [gr_maps(x) for x in xs]
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(gr_maps, xs))
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


def test_input_dtypes_give_identical_maps() -> None:
    x = speckle(48, 56)
    assert torch.equal(gr_maps(x.double()), gr_maps(x))
    assert torch.equal(gr_maps(x.clone().requires_grad_()), gr_maps(x))  # a target: no autograd graph
    half = x.half()
    assert torch.equal(gr_maps(half), gr_maps(half.float()))


@pytest.mark.parametrize(
    "bad,match",
    [
        (torch.full((1, 1, 20, 20), -0.1), r"sample k0: .*min -0\.1"),
        (torch.full((1, 1, 20, 20), 255.0), r"max 255"),
        (torch.full((1, 1, 20, 20), float("nan")), r"finite"),
        (torch.zeros(1, 1, 17, 40), r"larger than 17 px"),
        (torch.zeros(1, 20, 20), r"\(N, 1, H, W\)"),
        (torch.zeros(1, 1, 20, 20, dtype=torch.uint8), r"divide 8-bit"),
    ],
)
def test_bad_inputs_raise(bad: torch.Tensor, match: str) -> None:
    with pytest.raises(GRInputError, match=match):
        gr_maps(bad, keys=["k0"])


def test_patch_target_layout() -> None:
    x = speckle(224, 224)
    t = gr_patch_targets(x, 16)
    g = gr_maps(x)
    assert t.shape == (1, 196, 1024)
    for ph, pw, s, py, px in [(0, 0, 0, 0, 0), (3, 7, 2, 5, 11), (13, 13, 3, 15, 15), (1, 12, 1, 0, 9)]:
        assert t[0, ph * 14 + pw, s * 256 + py * 16 + px] == g[0, s, ph * 16 + py, pw * 16 + px]
    with pytest.raises(GRInputError, match="multiple of patch size"):
        patchify_2d(torch.zeros(1, 4, 30, 32), 16)


@pytest.mark.parametrize("codec", sorted(GR_CODECS))
def test_storage_codec_error_within_documented_bound(codec: str) -> None:
    rng = np.random.default_rng(0)
    maps = np.concatenate([rng.uniform(0, GR_MAX, 200_000), np.linspace(0, GR_MAX, 10_001)]).astype(np.float32)
    stored = encode_gr(maps, codec)
    back = decode_gr(stored)
    err = float(np.abs(back - maps).max())
    assert back.dtype == np.float32 and err <= GR_CODECS[codec]
    if codec != "float32":
        assert err > GR_CODECS[codec] / 2  # the bound is tight, not a loose guess
    assert stored.nbytes == maps.nbytes // (1 if codec == "float32" else 2)


def test_large_image_memory_bounded() -> None:
    """4096² works with at most ~8 full-size float64 planes (134 MB each) above the input."""
    # VmHWM/VmRSS of the fresh process (ru_maxrss would carry over the forking pytest process's peak)
    code = """
import re, torch
torch.set_num_threads(1)
def kb(field):
    return int(re.search(field + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
x = torch.rand(1, 1, 4096, 4096)
from sardata.features.gr import gr_maps
torch.zeros(1).add_(1)  # warm the allocator
base = kb("VmRSS")
g = gr_maps(x)
assert kb("VmHWM") >= base and g.shape == (1, 4, 4096, 4096) and float(g.max()) <= 6.53
print((kb("VmHWM") - base) * 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    plane = 4096 * 4096 * 8
    assert int(out.stdout.strip()) <= 8.5 * plane, f"peak {int(out.stdout) / plane:.1f} float64 planes"


@pytest.mark.gpu
def test_cpu_and_cuda_agree() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = torch.cat([speckle(224, 224, s) for s in range(4)])
    cpu, gpu = gr_maps(x), gr_maps(x.cuda()).cpu()
    assert (cpu - gpu).abs().max() <= 1e-6
    assert torch.equal(gr_maps(x.cuda().flip(-1)).cpu(), gpu.flip(-1))
