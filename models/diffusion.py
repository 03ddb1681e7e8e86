"""LGTM's diffusion: cosine schedule with 1000 steps, x0 prediction, masked MSE summed over parts, samplers.

Parts travel through the schedulers "packed": the six part tensors concatenated on the last axis in
PART_NAMES order (263 dims in all). Every scheduler update is element-wise, so one update of the
packed tensor equals one update per part.

Classifier-free guidance is optional and off by default (as in the paper): training can drop all
seven text latents of a sample (replacing them by zeros, the "null" condition) with probability
``cond_drop_prob``; sampling mixes x0 = x0(null) + s * (x0(text) - x0(null)) when ``guidance_scale != 1``.

A ``guidance`` hook (e.g. ``models.guidance.MotionGuidance``: constraint guidance, part inpainting) may correct
the predicted clean motion x0 at every step before the scheduler steps with it; without one (the default)
sampling is unchanged.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler
from torch import Tensor, nn

from motion.core.parts import PART_DIMS, PART_NAMES, TEXT_SLOTS
from motion.core.sampling import SAMPLERS, SamplingConfig

NUM_TRAIN_TIMESTEPS = 1000

# A correction of the predicted clean motion at one denoising step:
# (packed x0 (B, window, 263), timestep, valid-frame mask (B, window)) -> corrected packed x0.
X0Guidance = Callable[[Tensor, Tensor, Tensor], Tensor]


def pack_parts(parts: dict[str, Tensor]) -> Tensor:
    """Concatenate part tensors (..., d_part) in PART_NAMES order -> (..., 263)."""
    return torch.cat([parts[p] for p in PART_NAMES], dim=-1)


def unpack_parts(packed: Tensor) -> dict[str, Tensor]:
    """Inverse of pack_parts."""
    return dict(zip(PART_NAMES, torch.split(packed, [PART_DIMS[p] for p in PART_NAMES], dim=-1)))


def training_scheduler() -> DDIMScheduler:
    """The paper's noise schedule: 1000 steps, squaredcos_cap_v2 (cosine), x0 target, no clipping."""
    return DDIMScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, beta_schedule="squaredcos_cap_v2",
                         prediction_type="sample", clip_sample=False, set_alpha_to_one=True, steps_offset=0,
                         timestep_spacing="leading")


def sampling_scheduler(sampler: str, timestep_spacing: str = "trailing") -> DDIMScheduler | DPMSolverMultistepScheduler:
    """A scheduler for inference on the same cosine schedule: 'ddim' or 'dpmsolver++' (2nd-order multistep),
    visiting the timesteps ``timestep_spacing`` picks (``motion.core.sampling.TIMESTEP_SPACINGS``)."""
    if sampler == "ddim":
        return DDIMScheduler.from_config(training_scheduler().config, timestep_spacing=timestep_spacing)
    if sampler == "dpmsolver++":
        return DPMSolverMultistepScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, beta_schedule="squaredcos_cap_v2",
                                           prediction_type="sample", algorithm_type="dpmsolver++", solver_order=2,
                                           thresholding=False, lower_order_final=True,
                                           timestep_spacing=timestep_spacing)
    raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")


def masked_part_mse(pred: dict[str, Tensor], target: dict[str, Tensor], mask: Tensor,
                    num_valid: Tensor | float | None = None) -> Tensor:
    """Sum over parts of the MSE on valid frames, each part averaged over its own dims.

    ``num_valid`` (valid frames in the global batch) lets data-parallel ranks divide their sums by the
    global count, so averaging gradients over ranks equals one big batch; by default it is this batch's.
    """
    m = mask.float()[..., None]
    frames = m.sum() if num_valid is None else num_valid
    loss = m.new_zeros(())
    for p in PART_NAMES:
        loss = loss + (((pred[p].float() - target[p].float()) ** 2) * m).sum() / (frames * PART_DIMS[p])
    return loss


@dataclass
class NoiseDraw:
    """Random quantities of one training step: timesteps (B,), noise (B, T, 263) packed, keep-text flags (B,)."""

    timesteps: Tensor
    noise: Tensor
    keep_text: Tensor


def draw_noise(batch: int, frames: int, generator: torch.Generator, cond_drop_prob: float = 0.0) -> NoiseDraw:
    """Draw t ~ U{0..999} (shared by the parts of a sample), independent noise per part, and CFG drops."""
    t = torch.randint(0, NUM_TRAIN_TIMESTEPS, (batch,), generator=generator)
    noise = torch.randn(batch, frames, sum(PART_DIMS.values()), generator=generator)
    keep = torch.rand(batch, generator=generator) >= cond_drop_prob
    return NoiseDraw(t, noise, keep)


def check_text_latents(text_latents: Tensor) -> None:
    """Every denoiser reads (B, 7, D) text latents in TEXT_SLOTS order: a ValueError naming the shape otherwise."""
    if text_latents.ndim != 3 or text_latents.shape[1] != len(TEXT_SLOTS):
        raise ValueError(f"text_latents must hold {len(TEXT_SLOTS)} latents per sample {TEXT_SLOTS}, "
                         f"got shape {tuple(text_latents.shape)}")


def diffusion_loss(model: nn.Module, x0: dict[str, Tensor], text_latents: Tensor, mask: Tensor, draw: NoiseDraw,
                   scheduler: DDIMScheduler, num_valid: Tensor | float | None = None) -> Tensor:
    """Noise x0 at the drawn timesteps, predict x0 and return the masked MSE summed over parts."""
    device = text_latents.device
    x0_packed = pack_parts(x0)
    t = draw.timesteps.to(device)
    x_t = scheduler.add_noise(x0_packed, draw.noise.to(device, x0_packed.dtype), t)
    text = text_latents * draw.keep_text.to(device, text_latents.dtype)[:, None, None]
    pred = model(unpack_parts(x_t), t, text, mask)
    return masked_part_mse(pred, x0, mask, num_valid)


def predict_x0(model: nn.Module, x_t: Tensor, t: Tensor, text_latents: Tensor, mask: Tensor,
               guidance_scale: float = 1.0) -> Tensor:
    """Packed x0 prediction at one step, with classifier-free guidance when guidance_scale != 1."""
    timesteps = t.expand(x_t.shape[0]).to(x_t.device)
    if guidance_scale == 1.0:
        return pack_parts(model(unpack_parts(x_t), timesteps, text_latents, mask)).to(x_t.dtype)
    both = torch.cat([x_t, x_t])
    texts = torch.cat([text_latents, torch.zeros_like(text_latents)])
    pred = pack_parts(model(unpack_parts(both), timesteps.repeat(2), texts, mask.repeat(2, 1))).to(x_t.dtype)
    cond, uncond = pred.chunk(2)
    return uncond + guidance_scale * (cond - uncond)


def lengths_to_mask(lengths: Tensor, window: int) -> Tensor:
    """Boolean valid-frame mask (B, window) from lengths (B,)."""
    return torch.arange(window, device=lengths.device)[None, :] < lengths[:, None]


@torch.no_grad()
def sample(model: nn.Module, text_latents: Tensor, lengths: Tensor, cfg: SamplingConfig, *,
           generator: torch.Generator | None = None, progress: bool = False, initial_noise: Tensor | None = None,
           zero_padding: bool = True, guidance: X0Guidance | None = None) -> dict[str, Tensor]:
    """Generate normalised part features (B, window, d_part), zero beyond each length, from x_T ~ N(0, I).

    text_latents (B, 7, 256) in TEXT_SLOTS order; lengths (B,) <= the model's window; ``cfg`` names the
    sampler, steps, DDIM eta and guidance scale. Noise is drawn on the CPU from ``generator``, so a seed
    gives the same motions on any device. ``initial_noise`` (B, window, 263) packed replaces the x_T draw
    (e.g. the official goldens' stored noise); ``zero_padding=False`` returns the padded frames as sampled.
    ``guidance`` corrects x0 at every step before the scheduler steps with it (the schedulers predict "sample").
    """
    sampler, steps, eta, guidance_scale = cfg.sampler, cfg.steps, cfg.eta, cfg.guidance_scale
    window = model.cfg.window
    device = text_latents.device
    was_training = model.training
    model.eval()
    if int(lengths.max()) > window or int(lengths.min()) < 1:
        raise ValueError(f"lengths must lie in 1..{window} (the model's window), got {lengths.tolist()}")
    if steps < 1 or steps > NUM_TRAIN_TIMESTEPS:
        raise ValueError(f"steps must lie in 1..{NUM_TRAIN_TIMESTEPS}, got {steps}")
    scheduler = sampling_scheduler(sampler, cfg.timestep_spacing)
    scheduler.set_timesteps(steps)
    mask = lengths_to_mask(lengths.to(device), window)
    dtype = text_latents.dtype
    shape = (len(lengths), window, sum(PART_DIMS.values()))
    if initial_noise is not None and tuple(initial_noise.shape) != shape:
        raise ValueError(f"initial_noise must have shape {shape}, got {tuple(initial_noise.shape)}")
    x = (torch.randn(shape, generator=generator) if initial_noise is None else initial_noise).to(device, dtype)
    timesteps = scheduler.timesteps
    if progress:
        from tqdm import tqdm
        timesteps = tqdm(timesteps, desc=f"{sampler} sampling", unit="step")
    for t in timesteps:
        x0 = predict_x0(model, x, t, text_latents, mask, guidance_scale)
        if guidance is not None:
            x0 = guidance(x0, t, mask)
        if sampler == "ddim":
            noise = None
            if eta > 0:
                noise = torch.randn(x.shape, generator=generator).to(device, dtype)
            x = scheduler.step(x0, t, x, eta=eta, variance_noise=noise).prev_sample
        else:
            x = scheduler.step(x0, t, x).prev_sample
    model.train(was_training)
    return unpack_parts(x * mask[..., None].to(x.dtype) if zero_padding else x)

