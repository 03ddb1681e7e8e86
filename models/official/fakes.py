"""Full-size fakes in the official file formats, built from the paper key/shape lists (``*_paper_keys.tsv``).

No real weights exist offline; these fakes prove the paper-size path: an official-layout Lightning
``.ckpt`` whose state_dict has exactly the listed keys, shapes, dtypes and aliases (random values,
sinusoidal position tables, positive BatchNorm variances), and an official TMR run folder
(``config.json`` + ``last_weights/*.pt``). The configuration is derived from the shapes; only the
head count, which no shape shows, is read from the list's header.
"""
from __future__ import annotations

import ast
import json
import pathlib
import re
from pathlib import Path

import torch
from torch import Tensor

from models.conformer import sinusoidal_positions
from motion.core.io import atomic_path
from motion.core.parts import FEATURE_DIM, PART_DIMS, PART_NAMES


def _read_tsv(path: Path) -> tuple[str, list[dict[str, str]]]:
    """(header comment text, rows as dicts keyed by the column line)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = " ".join(line.lstrip("# ") for line in lines if line.startswith("#"))
    body = [line for line in lines if line and not line.startswith("#")]
    columns = body[0].split("\t")
    rows = [dict(zip(columns, line.split("\t") + [""] * (len(columns) - line.count("\t") - 1))) for line in body[1:]]
    return header, rows


def _heads(header: str, path: Path) -> int:
    found = re.search(r"(\d+) heads", header)
    if not found:
        raise ValueError(f"{path}: header names no head count ('<n> heads'); it cannot be derived from shapes")
    return int(found.group(1))


def _value(key: str, shape: tuple[int, ...], dtype: str, generator: torch.Generator) -> Tensor:
    if dtype == "int64":
        return torch.zeros(shape, dtype=torch.int64)
    if key.endswith(".pe"):
        return sinusoidal_positions(shape[-2], shape[-1])[None]
    if key.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=generator)
    return 0.05 * torch.randn(shape, generator=generator)


def write_fake_lgtm_checkpoint(tsv: str | Path, out: str | Path, seed: int = 0) -> Path:
    """An official-layout Lightning checkpoint with the keys/shapes of ``lgtm_paper_keys.tsv`` at ``out``."""
    tsv, out = Path(tsv), Path(out)
    header, rows = _read_tsv(tsv)
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, Tensor] = {}
    for row in rows:
        shape = tuple(ast.literal_eval(row["shape"]))
        alias = row.get("alias_of", "").strip()
        state[row["key"]] = state[alias] if alias else _value(row["key"], shape, row["dtype"], generator)
    blocks = {m.group(1) for k in state if (m := re.search(r"conformer_blocks\.(\d+)\.", k))}
    layers = {m.group(1) for k in state if (m := re.search(r"frame_attentions\.layers\.(\d+)\.", k))}
    emb = next(k for k in state if k.endswith("emb_self_attn.out_proj.weight"))
    hyper = {"body_part_feature_dims": {p: int(state[f"part_motion_encoders.{p}.input_projection.weight"].shape[1])
                                        for p in PART_NAMES},
             "max_frames": int(state[emb].shape[0]),
             "latent_dim": int(state["time_embedding.time_embedding.linear_1.weight"].shape[0]),
             "num_conformer_blocks": len(blocks), "num_attention_layers": len(layers), "num_heads": _heads(header, tsv),
             "num_time_steps": 1000, "activation_fn": "silu", "dropout": 0.1, "learning_rate": 1e-4,
             "tmr_dir": pathlib.PosixPath("third_packages/TMR")}
    checkpoint = {"epoch": 0, "global_step": 0, "pytorch-lightning_version": "2.1.3", "state_dict": state,
                  "hparams_name": "kwargs", "hyper_parameters": hyper}
    with atomic_path(out) as tmp:
        torch.save(checkpoint, tmp)
    return out


def official_tmr_config(part: str, nfeats: int, latent: int, ff: int, layers: int, heads: int) -> dict:
    """A config.json as TMR's train.py writes it (the keys the loader reads, with the part in the data paths)."""
    data_path = "datasets/annotations/humanml3d" if part == "whole_body" else \
        f"datasets/annotations/body_part/humanml3d/{part}"
    sizes = {"latent_dim": latent, "ff_size": ff, "num_layers": layers, "num_heads": heads, "dropout": 0.1,
             "activation": "gelu"}
    return {"data": {"path": data_path, "motion_loader": {"nfeats": nfeats}},
            "model": {"_target_": "src.model.TMR",
                      "motion_encoder": {"_target_": "src.model.ACTORStyleEncoder", "nfeats": nfeats, "vae": True,
                                         **sizes},
                      "text_encoder": {"_target_": "src.model.ACTORStyleEncoder", "nfeats": 768, "vae": True, **sizes},
                      "motion_decoder": {"_target_": "src.model.ACTORStyleDecoder", "nfeats": nfeats, **sizes},
                      "vae": True, "lmd": {"recons": 1.0, "latent": 1e-5, "kl": 1e-5, "contrastive": 0.1},
                      "lr": 1e-4, "temperature": 0.1, "threshold_selfsim": 0.8, "threshold_selfsim_metrics": 0.95},
            "run_dir": f"outputs/tmr_{part}"}


def write_fake_tmr_folder(tsv: str | Path, out: str | Path, seed: int = 0,
                          part: str | None = None) -> tuple[Path, str]:
    """An official TMR run folder with the keys/shapes of ``tmr_paper_keys.tsv``; returns (folder, part).

    ``part`` re-targets the list to another part (only the nfeats-dependent shapes change); by default
    the part named in the list's header.
    """
    tsv, out = Path(tsv), Path(out)
    header, rows = _read_tsv(tsv)
    named = re.search(r"part TMR \((\w+), nfeats (\d+)\)", header)
    source_part = named.group(1) if named else "whole_body"
    part = part or source_part
    source_dim = int(named.group(2)) if named else FEATURE_DIM
    nfeats = FEATURE_DIM if part == "whole_body" else PART_DIMS[part]
    generator = torch.Generator().manual_seed(seed)
    files: dict[str, dict[str, Tensor]] = {}
    for row in rows:
        shape = tuple(nfeats if d == source_dim and ("projection" in row["key"] or "final_layer" in row["key"])
                      and "motion" in row["file"] else d for d in ast.literal_eval(row["shape"]))
        files.setdefault(row["file"], {})[row["key"]] = _value(row["key"], shape, row["dtype"], generator)
    text = files["last_weights/text_encoder.pt"]
    latent = int(text["tokens"].shape[1])
    ff = int(text["seqTransEncoder.layers.0.linear1.weight"].shape[0])
    layers = len({m.group(1) for k in text if (m := re.search(r"layers\.(\d+)\.", k))})
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(official_tmr_config(part, nfeats, latent, ff, layers,
                                                                    _heads(header, tsv)), indent=4))
    for name, state in files.items():
        with atomic_path(out / name) as tmp:
            torch.save(state, tmp)
    return out, part


def official_tmr_keys(state: dict[str, Tensor]) -> dict[str, dict[str, Tensor]]:
    """A ``models.tmr.TMR`` state_dict split into the three official weight files with official key names."""
    files: dict[str, dict[str, Tensor]] = {}
    for key, value in state.items():
        module, rest = key.split(".", 1)
        prefix = "seqTransDecoder" if module == "motion_decoder" else "seqTransEncoder"
        rest = re.sub(r"^transformer\.", prefix + ".", rest)
        rest = re.sub(r"^final\.", "final_layer.", rest)
        files.setdefault(f"last_weights/{module}.pt", {})[rest] = value.detach().clone()
    return files


def write_small_official_tmr(out: str | Path, part: str, latent_dim: int, ff_size: int = 32, num_layers: int = 1,
                             num_heads: int = 2, seed: int = 0) -> Path:
    """A small random TMR of ``part`` in the official run-folder layout (for the TMRs the goldens do not cover)."""
    from models.tmr import TMR, TMRConfig

    out = Path(out)
    nfeats = FEATURE_DIM if part == "whole_body" else PART_DIMS[part]
    torch.manual_seed(seed)
    model = TMR(TMRConfig(motion_dim=nfeats, token_dim=768, latent_dim=latent_dim, ff_size=ff_size,
                          num_layers=num_layers, num_heads=num_heads))
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(official_tmr_config(part, nfeats, latent_dim, ff_size, num_layers,
                                                                    num_heads), indent=4))
    for name, state in official_tmr_keys(model.state_dict()).items():
        with atomic_path(out / name) as tmp:
            torch.save(state, tmp)
    return out
