"""The networks (generator, LogicNet) and what they run on."""

from __future__ import annotations

import torch


def bf16_is_fast(device: str | torch.device) -> bool:
    """Whether bf16 autocast speeds matrix products up on `device`: on a GPU, and on a CPU
    with bf16 matrix instructions (AVX-512 BF16 or AMX). On other CPUs (AVX2 only, and
    ARM as PyTorch's checks go) it makes every product about 13x slower than float32."""
    if torch.device(device).type != "cpu":
        return True
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)
