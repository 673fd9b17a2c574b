"""What the SynthWorld SD stages train and minimise: the VAE wrapper and its reconstruction + KL loss, the
UNet wrapper (noising at random DDPM timesteps) and the Min-SNR-γ epsilon loss with per-cell weights."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trustvl.modeling.synthworld_sd import training_scheduler

__all__ = ["DiffusionLoss", "UNetTrainingModule", "VAELoss", "VAETrainingModule"]


class VAETrainingModule(nn.Module):
    """Wraps an ``AutoencoderKL`` so that one forward returns the reconstruction and the KL term."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        posterior = self.vae.encode(pixel_values).latent_dist
        recon = self.vae.decode(posterior.sample()).sample
        return {"recon": recon, "kl": posterior.kl().mean()}


class VAELoss:
    """L1 + MSE reconstruction plus ``kl_weight`` × KL (a :data:`~trustvl.training.core.LossFn`)."""

    def __init__(self, kl_weight: float) -> None:
        self.kl_weight = kl_weight

    def __call__(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        x = batch["pixel_values"]
        out = model(pixel_values=x)
        recon = out["recon"].float()
        l1 = (recon - x).abs().mean()
        mse = (recon - x).pow(2).mean()
        loss = l1 + mse + self.kl_weight * out["kl"].float()
        return loss, {"l1": l1.detach(), "mse": mse.detach(), "kl": out["kl"].detach().float()}


class UNetTrainingModule(nn.Module):
    """The UNet (trained) with the frozen text tower and the noise schedule: one forward noises scaled
    latents at random timesteps and predicts the noise.

    Returns ``{"pred", "target", "snr"}``; the loss weighting is the loss function's business.
    """

    def __init__(self, unet: nn.Module, text_encoder: nn.Module, scaling_factor: float) -> None:
        super().__init__()
        self.unet, self.text_encoder = unet, text_encoder
        self.text_encoder.requires_grad_(False)
        self.scaling_factor = scaling_factor
        scheduler = training_scheduler()
        self.num_train_timesteps = scheduler.config.num_train_timesteps
        self.register_buffer("alphas_cumprod", scheduler.alphas_cumprod.float(), persistent=False)

    def forward(self, latents: torch.Tensor, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            hidden = self.text_encoder(input_ids)[0]
        x0 = latents * self.scaling_factor
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.num_train_timesteps, (x0.shape[0],), device=x0.device)
        a = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
        pred = self.unet(noisy, t, encoder_hidden_states=hidden).sample
        snr = self.alphas_cumprod[t] / (1 - self.alphas_cumprod[t])
        return {"pred": pred, "target": noise, "snr": snr}


class DiffusionLoss:
    """Epsilon-prediction MSE with Min-SNR-γ weights ``min(snr, γ) / snr`` (γ = 0: plain MSE).

    A batch's optional ``loss_weights`` (``[N, h, w]``) weight each latent cell's squared error (summed over
    channels) before the per-sample mean; the logged ``mse`` is always the unweighted one.
    """

    def __init__(self, min_snr_gamma: float = 5.0) -> None:
        self.gamma = min_snr_gamma

    def __call__(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        out = model(latents=batch["latents"], input_ids=batch["input_ids"])
        err = (out["pred"].float() - out["target"].float()).pow(2)
        mse = err.mean()
        weights_map = batch.get("loss_weights")
        if weights_map is not None:
            err = err * weights_map.to(err.device, err.dtype).unsqueeze(1)
        per_sample = err.mean(dim=(1, 2, 3))
        if self.gamma > 0:
            snr = out["snr"].float()
            weights = snr.clamp(max=self.gamma) / snr
            return (weights * per_sample).mean(), {"mse": mse.detach()}
        return per_sample.mean(), {"mse": mse.detach()}
