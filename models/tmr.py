"""TMR (Petrovich et al., ICCV 2023): text and motion encoders sharing a Gaussian latent space.

Both encoders are ACTOR-style transformers: the input is projected to the latent width, two learned
tokens (mu and logvar) are prepended, a sinusoidal positional encoding is added, and the outputs at
the two tokens parametrise a Gaussian. A transformer decoder turns a latent back into a motion
(time queries = positional encoding of zeros, memory = the latent). Training combines motion
reconstruction from both latents, four KL terms, a cross-modal latent loss and an InfoNCE loss
whose negatives with a too-similar caption are filtered out.

Public API used by later stages: ``load_tmr(folder)``, ``TMR.encode_text(tokens, mask) -> mu`` and
``TMR.encode_motion(features, mask) -> mu`` (features normalised with the part statistics).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from motion.core.errors import DataError
from motion.core.io import atomic_path, write_json

Gaussian = tuple[Tensor, Tensor]  # (mu, logvar)

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class TMRConfig:
    """Hyper-parameters of one TMR model and its loss (defaults: the paper's)."""

    motion_dim: int  # 263 for the whole body, the part's dim otherwise
    token_dim: int  # width of the precomputed text token features
    latent_dim: int = 256
    ff_size: int = 1024
    num_layers: int = 6
    num_heads: int = 4
    dropout: float = 0.1
    activation: str = "gelu"
    lambda_recons: float = 1.0
    lambda_kl: float = 1e-5
    lambda_latent: float = 1e-5
    lambda_contrastive: float = 0.1
    temperature: float = 0.1
    threshold_selfsim: float = 0.80  # on TMR's (cos + 1) / 2 scale: negatives with cosine > 0.6 are dropped

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TMRConfig:
        """Build from a dict, ignoring keys that are not hyper-parameters."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


class PositionalEncoding(nn.Module):
    """Fixed sinusoidal positional encoding added to (B, T, D) sequences, then dropout."""

    def __init__(self, dim: int, dropout: float = 0.1, max_len: int = 5000) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        pe = torch.zeros(max_len, dim)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term[: dim // 2])
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """Add the encoding of positions 0..T-1 to ``x`` (B, T, D)."""
        return self.dropout(x + self.pe[None, : x.shape[1]])


class ActorStyleEncoder(nn.Module):
    """Sequence (B, T, nfeats) + mask -> Gaussian (mu, logvar), each (B, latent_dim)."""

    def __init__(self, nfeats: int, cfg: TMRConfig) -> None:
        super().__init__()
        self.projection = nn.Linear(nfeats, cfg.latent_dim)
        self.tokens = nn.Parameter(torch.randn(2, cfg.latent_dim))  # the mu and logvar tokens
        self.position = PositionalEncoding(cfg.latent_dim, cfg.dropout)
        layer = nn.TransformerEncoderLayer(cfg.latent_dim, cfg.num_heads, cfg.ff_size, cfg.dropout,
                                           cfg.activation, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)

    def forward(self, x: Tensor, mask: Tensor) -> Gaussian:
        """Encode a padded batch; ``mask`` (B, T) is True on valid steps."""
        h = self.projection(x)
        batch = h.shape[0]
        h = torch.cat([self.tokens[None].expand(batch, -1, -1), h], dim=1)
        valid = torch.cat([torch.ones(batch, 2, dtype=torch.bool, device=h.device), mask.bool()], dim=1)
        h = self.transformer(self.position(h), src_key_padding_mask=~valid)
        return h[:, 0], h[:, 1]


class ActorStyleDecoder(nn.Module):
    """Latent (B, latent_dim) + frame mask (B, T) -> motion (B, T, nfeats), zero on padding."""

    def __init__(self, nfeats: int, cfg: TMRConfig) -> None:
        super().__init__()
        self.position = PositionalEncoding(cfg.latent_dim, cfg.dropout)
        layer = nn.TransformerDecoderLayer(cfg.latent_dim, cfg.num_heads, cfg.ff_size, cfg.dropout,
                                           cfg.activation, batch_first=True)
        self.transformer = nn.TransformerDecoder(layer, cfg.num_layers)
        self.final = nn.Linear(cfg.latent_dim, nfeats)

    def forward(self, z: Tensor, mask: Tensor) -> Tensor:
        """Decode one latent per sequence into ``mask.shape[1]`` frames."""
        batch, frames = mask.shape
        queries = self.position(z.new_zeros(batch, frames, z.shape[-1]))
        h = self.transformer(tgt=queries, memory=z[:, None], tgt_key_padding_mask=~mask.bool())
        return self.final(h) * mask[..., None].to(h.dtype)


def kl_divergence(q: Gaussian, p: Gaussian) -> Tensor:
    """KL(q || p) between diagonal Gaussians given as (mu, logvar), averaged over batch and dims."""
    mu_q, logvar_q = q
    mu_p, logvar_p = p
    log_ratio = logvar_q - logvar_p
    return 0.5 * (log_ratio.exp() + (mu_p - mu_q).pow(2) / logvar_p.exp() - 1.0 - log_ratio).mean()


def cosine_similarity_matrix(x: Tensor, y: Tensor) -> Tensor:
    """(N, D) x (M, D) -> (N, M) cosine similarities."""
    return F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T


def filtered_negatives(sentences: Tensor, threshold_selfsim: float) -> Tensor:
    """(B, B) bool: off-diagonal pairs whose caption cosine exceeds 2 * threshold - 1 (not negatives)."""
    selfsim = sentences @ sentences.T
    too_similar = selfsim > 2.0 * threshold_selfsim - 1.0
    return too_similar & ~torch.eye(len(sentences), dtype=torch.bool, device=sentences.device)


def info_nce(text_latents: Tensor, motion_latents: Tensor, temperature: float,
             sentences: Tensor | None = None, threshold_selfsim: float | None = None) -> Tensor:
    """Symmetric InfoNCE on cosine similarities; pairs with too-similar captions are not negatives."""
    logits = cosine_similarity_matrix(text_latents, motion_latents) / temperature
    if sentences is not None and threshold_selfsim is not None:
        logits = logits.masked_fill(filtered_negatives(sentences, threshold_selfsim), float("-inf"))
    labels = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def sample_latent(dist: Gaussian) -> Tensor:
    """Reparametrised sample mu + exp(logvar / 2) * eps."""
    mu, logvar = dist
    return mu + (0.5 * logvar).exp() * torch.randn_like(mu)


class TMR(nn.Module):
    """Text encoder, motion encoder and motion decoder of TMR, with its training losses."""

    def __init__(self, cfg: TMRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.text_encoder = ActorStyleEncoder(cfg.token_dim, cfg)
        self.motion_encoder = ActorStyleEncoder(cfg.motion_dim, cfg)
        self.motion_decoder = ActorStyleDecoder(cfg.motion_dim, cfg)

    def encode_text(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Text token features (B, L, token_dim) + mask (B, L) -> latent mean (B, latent_dim)."""
        return self.text_encoder(tokens, mask)[0]

    def encode_motion(self, features: Tensor, mask: Tensor) -> Tensor:
        """Normalised motion features (B, T, motion_dim) + mask (B, T) -> latent mean (B, latent_dim)."""
        return self.motion_encoder(features, mask)[0]

    def losses(self, batch: dict[str, Tensor], sample: bool = True) -> dict[str, Tensor]:
        """TMR's weighted loss terms on a collated batch; ``loss`` is their sum."""
        cfg = self.cfg
        motion, mask = batch["motion"], batch["motion_mask"]
        text_dist = self.text_encoder(batch["text"], batch["text_mask"])
        motion_dist = self.motion_encoder(motion, mask)
        text_latent = sample_latent(text_dist) if sample else text_dist[0]
        motion_latent = sample_latent(motion_dist) if sample else motion_dist[0]
        recons = (F.smooth_l1_loss(self.motion_decoder(text_latent, mask), motion)
                  + F.smooth_l1_loss(self.motion_decoder(motion_latent, mask), motion))
        standard = (torch.zeros_like(motion_dist[0]), torch.zeros_like(motion_dist[1]))
        kl = (kl_divergence(text_dist, motion_dist) + kl_divergence(motion_dist, text_dist)
              + kl_divergence(motion_dist, standard) + kl_divergence(text_dist, standard))
        latent = F.smooth_l1_loss(text_latent, motion_latent)
        contrastive = info_nce(text_latent, motion_latent, cfg.temperature, batch.get("sentence"),
                               cfg.threshold_selfsim)
        loss = (cfg.lambda_recons * recons + cfg.lambda_kl * kl + cfg.lambda_latent * latent
                + cfg.lambda_contrastive * contrastive)
        return {"loss": loss, "recons": recons, "kl": kl, "latent": latent, "contrastive": contrastive}


def save_tmr(model: TMR, folder: str | Path, extra: dict[str, Any] | None = None) -> None:
    """Write ``model.safetensors`` and ``config.json`` (hyper-parameters plus ``extra``) into ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(folder / MODEL_FILE) as tmp:
        save_file(state, str(tmp))
    write_json(folder / CONFIG_FILE, {"model": asdict(model.cfg), **(extra or {})})


def read_tmr_config(folder: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a trained TMR folder."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise DataError(path, "TMR config is missing", "run `dvc repro train_tmr` (python -m stages.train_tmr <name>)")
    return json.loads(path.read_text(encoding="utf-8"))


def load_tmr(folder: str | Path, device: str | torch.device = "cpu") -> TMR:
    """Load a trained TMR from ``folder`` (model.safetensors + config.json), in eval mode."""
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg = TMRConfig.from_dict(read_tmr_config(folder)["model"])
    weights = folder / MODEL_FILE
    if not weights.is_file():
        raise DataError(weights, "TMR weights are missing", "run `python -m stages.train_tmr <name>`")
    model = TMR(cfg)
    model.load_state_dict(load_file(str(weights), device=str(device)))
    return model.to(device).eval()
