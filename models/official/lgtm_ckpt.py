"""The released LGTM checkpoint (a PyTorch Lightning ``.ckpt``) as an official-compatible ``models.lgtm.LGTM``.

The file is read with ``torch.load(weights_only=True)`` and an allow-list holding only
``pathlib.PosixPath`` (the official ``hyper_parameters`` store ``tmr_dir`` as a path; no Lightning
class is pickled). The model configuration comes from the file: ``hyper_parameters`` give the
widths and counts, the tensors give the sizes the hyper-parameters do not name (feed-forward
width, SmoothNet sizes, text-latent width), and every tensor is then checked against the model
built from that configuration. Keys are mapped rule by rule onto the project's module names;
the 14 alias keys (the 7 text adapters saved under two names each) and the stored sinusoidal
position tables are verified rather than loaded.

The official model differs from the fixed architecture in four ways, all reproduced through
``LGTMConfig`` options (see ``OFFICIAL_BEHAVIOUR``): the shared 2-unit conformer feed-forward,
BatchNorm in the convolution module, no zeroing of padded frames, and the sorted-stream /
declared-head part wiring.
"""
from __future__ import annotations

import pathlib
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from models.conformer import sinusoidal_positions
from models.lgtm import LGTM, LGTMConfig
from motion.core.errors import DataError
from motion.core.parts import PART_DIMS, PART_NAMES

# The only class the official checkpoint pickles besides tensors and builtins.
ALLOWED_GLOBALS: tuple[Any, ...] = (pathlib.PosixPath, (pathlib.PosixPath, "pathlib.PosixPath"))

# The four official behaviours, as LGTMConfig options.
OFFICIAL_BEHAVIOUR: dict[str, Any] = {"ff_shared": True, "conv_norm": "batch", "mask_padding": False,
                                      "part_order": "official", "channel_attention": True}

_OFFICIAL_FILE_HINT = "pass the official LGTM .ckpt (checkpoints/epoch=196-val_loss=0.3769.ckpt from lgtm.zip)"

_BLOCK = r"part_motion_encoders\.(\w+)\.conformer\.conformer_blocks\.(\d+)\."
_SMOOTH = r"whole_body_attention\.smooth_net\."
# (official key pattern, our key template); the first match wins. None: verified, not loaded.
KEY_RULES: tuple[tuple[str, str | None], ...] = (
    (r"time_embedding\.time_embedding\.(.+)", r"time_embedding.\1"),
    (r"body_part_text_encoders\.(\w+)\.1\.(weight|bias)", r"part_encoders.\1.text_adapter.\2"),
    (r"whole_body_text_encoder\.1\.(weight|bias)", r"full_body_optimizer.text_adapter.\1"),
    (r"part_motion_encoders\.(\w+)\.part_text_encoder\.1\.(weight|bias)", None),  # alias
    (r"whole_body_attention\.global_text_encoder\.1\.(weight|bias)", None),  # alias
    (r"part_motion_encoders\.(\w+)\.input_projection\.(.+)", r"part_encoders.\1.input_projection.\2"),
    (_BLOCK + r"feed_forward\.module\.([014])\.(.+)", r"part_encoders.\1.blocks.\2.ff_in.net.\3.\4"),
    (_BLOCK + r"attn\.position_encoding\.pe", None),  # fixed sinusoidal table
    (_BLOCK + r"attn\.layer_norm_1\.(.+)", r"part_encoders.\1.blocks.\2.frame_attention.norm.\3"),
    (_BLOCK + r"attn\.token_self_attn\.(.+)", r"part_encoders.\1.blocks.\2.frame_attention.attn.\3"),
    (_BLOCK + r"attn\.layer_norm_2\.(.+)", r"part_encoders.\1.blocks.\2.channel_attention.norm.\3"),
    (_BLOCK + r"attn\.emb_self_attn\.(.+)", r"part_encoders.\1.blocks.\2.channel_attention.attn.\3"),
    (_BLOCK + r"conv_module\.module\.0\.(.+)", r"part_encoders.\1.blocks.\2.conv.norm.\3"),
    (_BLOCK + r"conv_module\.module\.2\.(.+)", r"part_encoders.\1.blocks.\2.conv.pointwise_in.\3"),
    (_BLOCK + r"conv_module\.module\.4\.(.+)", r"part_encoders.\1.blocks.\2.conv.depthwise.\3"),
    (_BLOCK + r"conv_module\.module\.5\.(.+)", r"part_encoders.\1.blocks.\2.conv.conv_norm.\3"),
    (_BLOCK + r"conv_module\.module\.7\.(.+)", r"part_encoders.\1.blocks.\2.conv.pointwise_out.\3"),
    (_BLOCK + r"layer_norm\.(.+)", r"part_encoders.\1.blocks.\2.norm.\3"),
    (r"whole_body_attention\.frame_attentions\.layers\.(.+)", r"full_body_optimizer.transformer.layers.\1"),
    (_SMOOTH + r"encoder\.0\.(.+)", r"full_body_optimizer.smoothnet.encoder.0.\1"),
    (_SMOOTH + r"res_blocks\.(\d+)\.linear1\.(.+)", r"full_body_optimizer.smoothnet.blocks.\1.net.0.\2"),
    (_SMOOTH + r"res_blocks\.(\d+)\.linear2\.(.+)", r"full_body_optimizer.smoothnet.blocks.\1.net.3.\2"),
    (_SMOOTH + r"decoder\.(.+)", r"full_body_optimizer.smoothnet.decoder.\1"),
    (r"whole_body_attention\.body_part_output_projections\.(\w+)\.(.+)", r"full_body_optimizer.heads.\1.\2"),
)
_ALIASES: tuple[tuple[str, str], ...] = (
    (r"part_motion_encoders\.(\w+)\.part_text_encoder\.1\.(weight|bias)", r"body_part_text_encoders.\1.1.\2"),
    (r"whole_body_attention\.global_text_encoder\.1\.(weight|bias)", r"whole_body_text_encoder.1.\1"),
)


def safe_torch_load(path: Path, fix: str, allowed: tuple[Any, ...] = ()) -> Any:
    """``torch.load(weights_only=True)`` with ``allowed`` extra globals; every failure is a one-line DataError."""
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 -- torch raises many types for foreign or damaged files
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if found:
            raise DataError(path, f"pickles {found.group(1)}, which is not allowed (only tensors, builtins"
                            f"{''.join(', ' + a.__name__ for a in allowed if isinstance(a, type))} are accepted)",
                            fix) from None
        raise DataError(path, f"is not a readable torch checkpoint (truncated or corrupt: {type(error).__name__})",
                        "download or unzip the file again and check its size") from None


def read_lightning_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load an official Lightning checkpoint safely (weights_only, PosixPath allowed); one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "LGTM checkpoint is missing", _OFFICIAL_FILE_HINT)
    checkpoint = safe_torch_load(path, _OFFICIAL_FILE_HINT, ALLOWED_GLOBALS)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict) \
            or not isinstance(checkpoint.get("hyper_parameters"), dict):
        raise DataError(path, "is not a PyTorch Lightning checkpoint (no state_dict / hyper_parameters)",
                        _OFFICIAL_FILE_HINT)
    return checkpoint


def _tensor(state: dict[str, Tensor], key: str, path: Path) -> Tensor:
    if key not in state:
        raise DataError(path, f"state_dict has no {key!r}: not an official LGTM checkpoint", _OFFICIAL_FILE_HINT)
    return state[key]


def config_from_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> LGTMConfig:
    """The official-compatible LGTMConfig of a checkpoint: hyper_parameters plus sizes read from the tensors."""
    path = Path(path)
    hp, state = checkpoint["hyper_parameters"], checkpoint["state_dict"]
    needed = ("latent_dim", "num_conformer_blocks", "num_attention_layers", "num_heads", "max_frames")
    missing = [k for k in needed if k not in hp]
    if missing:
        raise DataError(path, f"hyper_parameters lack {missing}: not an official LGTM checkpoint", _OFFICIAL_FILE_HINT)
    dims = dict(hp.get("body_part_feature_dims", PART_DIMS))
    if dims != dict(PART_DIMS):
        raise DataError(path, f"body_part_feature_dims {dims} differ from LGTM's partition {dict(PART_DIMS)}",
                        "use a checkpoint trained on HumanML3D's 263-d features")
    if hp.get("activation_fn", "silu") != "silu" or int(hp.get("num_time_steps", 1000)) != 1000:
        raise DataError(path, f"activation_fn {hp.get('activation_fn')!r} / num_time_steps {hp.get('num_time_steps')} "
                        "are not the released settings (silu, 1000)", _OFFICIAL_FILE_HINT)
    block = f"part_motion_encoders.{PART_NAMES[0]}.conformer.conformer_blocks.0."
    smooth = "whole_body_attention.smooth_net."
    res_blocks = {int(m.group(1)) for k in state if (m := re.match(re.escape(smooth) + r"res_blocks\.(\d+)\.", k))}
    cfg = LGTMConfig(
        dim=int(hp["latent_dim"]), conformer_blocks=int(hp["num_conformer_blocks"]),
        attention_layers=int(hp["num_attention_layers"]), heads=int(hp["num_heads"]),
        window=int(hp["max_frames"]), dropout=float(hp.get("dropout", 0.1)),
        ff_hidden=int(_tensor(state, block + "feed_forward.module.1.weight", path).shape[0]),
        kernel_size=int(_tensor(state, block + "conv_module.module.4.weight", path).shape[-1]),
        optimizer_ff=int(_tensor(state, "whole_body_attention.frame_attentions.layers.0.linear1.weight",
                                 path).shape[0]),
        smoothnet_hidden=int(_tensor(state, smooth + "encoder.0.weight", path).shape[0]),
        smoothnet_res_hidden=int(_tensor(state, smooth + "res_blocks.0.linear1.weight", path).shape[0]),
        smoothnet_blocks=len(res_blocks),
        text_dim=int(_tensor(state, "whole_body_text_encoder.1.weight", path).shape[1]),
    )
    return replace(cfg, **OFFICIAL_BEHAVIOUR)


def map_key(key: str) -> tuple[bool, str | None]:
    """(matched, our key or None for verified-only keys) of one official state_dict key."""
    for pattern, template in KEY_RULES:
        if re.fullmatch(pattern, key):
            return True, None if template is None else re.sub(pattern, template, key)
    return False, None


def convert_state_dict(state: dict[str, Tensor], model: LGTM, path: str | Path) -> dict[str, Tensor]:
    """Official state_dict -> ``model``'s state_dict, with full key coverage and shape checks in both directions."""
    path = Path(path)
    expected = model.state_dict()
    out: dict[str, Tensor] = {}
    unknown = []
    for key, value in state.items():
        if "tmr_model" in key:  # the official save drops these; tolerate files that kept them
            continue
        matched, target = map_key(key)
        if not matched:
            unknown.append(key)
            continue
        if target is None:
            _verify_fixed(key, value, state, path)
            continue
        if target not in expected:
            raise DataError(path, f"{key!r} maps to {target!r}, which this config does not have "
                            "(the checkpoint disagrees with its hyper_parameters)", _OFFICIAL_FILE_HINT)
        if tuple(value.shape) != tuple(expected[target].shape):
            raise DataError(path, f"{key!r} has shape {tuple(value.shape)} but the config in its hyper_parameters "
                            f"gives {tuple(expected[target].shape)} (a checkpoint of another config?)",
                            _OFFICIAL_FILE_HINT)
        out[target] = value.to(expected[target].dtype)
    if unknown:
        raise DataError(path, f"{len(unknown)} unexpected state_dict keys, e.g. {unknown[0]!r}", _OFFICIAL_FILE_HINT)
    missing = [k for k in expected if k not in out]
    if missing:
        raise DataError(path, f"{len(missing)} weights are missing, e.g. the official key for {missing[0]!r}",
                        _OFFICIAL_FILE_HINT)
    return out


def _verify_fixed(key: str, value: Tensor, state: dict[str, Tensor], path: Path) -> None:
    """Alias keys must equal their primary key; stored position tables must equal the sinusoidal table."""
    for pattern, template in _ALIASES:
        if re.fullmatch(pattern, key):
            primary = re.sub(pattern, template, key)
            if primary not in state or not torch.equal(state[primary], value):
                raise DataError(path, f"alias {key!r} differs from {primary!r}", _OFFICIAL_FILE_HINT)
            return
    table = sinusoidal_positions(value.shape[-2], value.shape[-1])
    if value.dim() != 3 or not torch.allclose(value[0].float(), table, atol=1e-6):
        raise DataError(path, f"{key!r} is not the sinusoidal position table", _OFFICIAL_FILE_HINT)


def load_official_lgtm(path: str | Path, device: str | torch.device = "cpu") -> LGTM:
    """The released LGTM .ckpt as an official-compatible LGTM in eval mode (dropout off, BatchNorm running stats)."""
    checkpoint = read_lightning_checkpoint(path)
    cfg = config_from_checkpoint(checkpoint, path)
    model = LGTM(cfg)
    model.load_state_dict(convert_state_dict(checkpoint["state_dict"], model, path))
    return model.to(device).eval()
