"""SmoothNet (Zeng et al. 2022): a temporal MLP applied independently to every channel's series over time.

LGTM applies it once to the whole training window (196 frames) at the end of the Full-Body
Optimizer. Padded frames are zeroed on the way in, so valid outputs depend only on valid frames
(``mask_padding=False`` reproduces the official model, which mixes padded content into every frame).
"""
from __future__ import annotations

from torch import Tensor, nn


class SmoothNetResBlock(nn.Module):
    """Residual block: Linear(h, r) -> Dropout -> LeakyReLU(0.2) -> Linear(r, h) -> Dropout -> LeakyReLU(0.2), + x."""

    def __init__(self, hidden: int, res_hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(hidden, res_hidden), nn.Dropout(dropout), nn.LeakyReLU(0.2),
            nn.Linear(res_hidden, hidden), nn.Dropout(dropout), nn.LeakyReLU(0.2),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block with its identity shortcut."""
        return x + self.net(x)


class SmoothNet(nn.Module):
    """Window MLP over time: Linear(T, hidden) + LeakyReLU(0.1), residual blocks, Linear(hidden, T)."""

    def __init__(self, window: int, hidden: int = 512, res_hidden: int = 256, num_blocks: int = 3,
                 dropout: float = 0.1, mask_padding: bool = True) -> None:
        super().__init__()
        self.window = window
        self.mask_padding = mask_padding
        self.encoder = nn.Sequential(nn.Linear(window, hidden), nn.LeakyReLU(0.1))
        self.blocks = nn.Sequential(*[SmoothNetResBlock(hidden, res_hidden, dropout) for _ in range(num_blocks)])
        self.decoder = nn.Linear(hidden, window)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Smooth x (B, T, ...) along T (the window); mask (B, T) is True on valid frames."""
        if x.shape[1] != self.window:
            raise ValueError(f"SmoothNet needs {self.window} frames (the training window), got {x.shape[1]}")
        shape = x.shape
        if self.mask_padding:
            x = x * mask.reshape(shape[0], shape[1], *([1] * (x.dim() - 2))).to(x.dtype)
        series = x.reshape(shape[0], shape[1], -1).transpose(1, 2)  # (B, channels, T)
        series = self.decoder(self.blocks(self.encoder(series)))
        return series.transpose(1, 2).reshape(shape)
