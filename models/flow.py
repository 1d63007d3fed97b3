"""Rectified flow on the residual (next frame - base), with a clean-residual (x0) target.

x_sigma = (1 - sigma) * residual + sigma * noise; the network predicts the residual
itself. At sigma = 1 that prediction is already a frame (one sampler step); more steps
run diffusers' FlowMatchEulerDiscreteScheduler over evenly spaced sigmas.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from diffusers import FlowMatchEulerDiscreteScheduler

from .dit import FrameDiT


def to_unit(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames (..., H, W, 3) -> float (..., 3, H, W) in [-1, 1]."""
    return frames.permute(*range(frames.ndim - 3), -1, -3, -2).float() / 127.5 - 1.0


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """float (..., 3, H, W) in [-1, 1] -> uint8 (..., H, W, 3), rounded and clamped."""
    pixels = ((frames.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return pixels.permute(*range(pixels.ndim - 3), -2, -1, -3)


def stack_context(context: torch.Tensor) -> torch.Tensor:
    """(B, K, 3, H, W) -> (B, 3K, H, W), oldest frame first."""
    return context.flatten(1, 2)


def device_of(network: torch.nn.Module) -> torch.device:
    """Where `network`'s weights are (the CPU for one without any)."""
    weight = next(itertools.chain(network.parameters(), network.buffers()), None)
    return torch.device("cpu") if weight is None else weight.device


def noise_like(shape: torch.Size, generator: torch.Generator, device) -> torch.Tensor:
    """Standard normal noise of `shape` on `device` from `generator` (a CPU generator): drawn
    by it where `device` is the CPU; on an accelerator drawn there, by a generator seeded
    from it (the same noise for the same seed, without drawing millions on the CPU)."""
    if torch.device(device).type == "cpu":
        return torch.randn(shape, generator=generator)
    seed = int(torch.randint(2**62, (1,), generator=generator))
    on_device = torch.Generator(device).manual_seed(seed)
    return torch.randn(shape, generator=on_device, device=device)


def sample_sigma(batch: int, generator: torch.Generator, one_step_share: float = 0.5):
    """Flow times for training: sigma = 1 (the one-step case) for a share, else uniform."""
    sigma = torch.rand(batch, generator=generator)
    return torch.where(torch.rand(batch, generator=generator) < one_step_share, 1.0, sigma)


def training_loss(
    model: FrameDiT,
    target: torch.Tensor,
    base: torch.Tensor,
    context: torch.Tensor,
    action: torch.Tensor,
    corruption: torch.Tensor,
    generator: torch.Generator,
    extra: torch.Tensor | None = None,
    cond_ids: torch.Tensor | None = None,
    one_step_share: float = 0.5,
    weight: torch.Tensor | None = None,
    chance: torch.Tensor | None = None,
    context_moves: torch.Tensor | None = None,
) -> torch.Tensor:
    """MSE between the predicted and the true clean residual, at random flow times;
    `weight` (B, 1, H, W), where given, weighs each pixel (normalised to mean 1)."""
    residual = target - base
    sigma = sample_sigma(target.shape[0], generator, one_step_share).to(target.device)
    noise = noise_like(residual.shape, generator, target.device)
    s = sigma[:, None, None, None]
    noisy = (1 - s) * residual + s * noise
    predicted = model(
        noisy, sigma, base, context, action, corruption, extra, cond_ids, chance, context_moves
    )
    if weight is None:
        return F.mse_loss(predicted.float(), residual)
    weight = weight.to(target.device)
    return ((predicted.float() - residual) ** 2 * weight).mean() / weight.mean()


class FlowSampler:
    """Few-step sampler: base + the residual the generator draws from noise."""

    def __init__(self, steps: int = 1):
        self.scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)
        self.steps = steps

    # no_grad, not inference_mode: inside a training step's autocast (the rollouts' drawings)
    # the weights' low-precision copies are then made once for all passes, not in each one
    @torch.no_grad()
    def sample(
        self,
        model: FrameDiT,
        base: torch.Tensor,
        context: torch.Tensor,
        action: torch.Tensor,
        generator: torch.Generator,
        extra: torch.Tensor | None = None,
        cond_ids: torch.Tensor | None = None,
        steps: int | None = None,
        chance: torch.Tensor | None = None,
        context_moves: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The next frames (B, 3, H, W) in [-1, 1], in `steps` (default `self.steps`) steps."""
        batch, steps = base.shape[0], steps or self.steps
        self.scheduler.set_timesteps(sigmas=torch.linspace(1, 0, steps + 1)[:-1].tolist())
        x = noise_like(base.shape, generator, base.device)
        corruption = torch.zeros(batch, device=base.device)
        for i, t in enumerate(self.scheduler.timesteps):
            sigma = self.scheduler.sigmas[i]
            predicted = model(
                x, sigma.expand(batch).to(base.device), base, context, action, corruption,
                extra, cond_ids, chance, context_moves,
            ).float()  # fmt: skip
            velocity = (x - predicted) / sigma
            x = self.scheduler.step(velocity, t, x).prev_sample
        return (base + x).clamp(-1, 1)


def sampler_for(network: torch.nn.Module, steps: int = 1):
    """The sampler that draws with `network`: a TileSampler for a TileDiT, else a
    FlowSampler; either has `steps` and `sample(network, base, context, action, ...)`."""
    from .tiles import TileDiT, TileSampler

    return TileSampler(steps) if isinstance(network, TileDiT) else FlowSampler(steps)


def loss_for(network: torch.nn.Module):
    """The training loss of `network` (unwrapped): `tiles.tile_loss` for a TileDiT, else
    `training_loss`; both take the same arguments."""
    from .tiles import TileDiT, tile_loss

    return tile_loss if isinstance(network, TileDiT) else training_loss


def generator_class(name: str) -> type:
    """The generator class a saved config's `_class_name` names (FrameDiT or TileDiT)."""
    from .tiles import TileDiT

    return {"FrameDiT": FrameDiT, "TileDiT": TileDiT}.get(name, FrameDiT)
