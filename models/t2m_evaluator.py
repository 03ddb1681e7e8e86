"""Guo et al.'s T2M evaluator (text_mot_match): a GloVe + POS text encoder and a motion encoder, 512-d each.

Network sizes are read from the checkpoint's tensors (``networks_from_state``), never assumed.

Loads the published ``text_mot_match/model/finest.tar`` (keys ``text_encoder``, ``movement_encoder``,
``motion_encoder``), the GloVe vocabulary ``our_vab_{data.npy,words.pkl,idx.pkl}`` and the evaluator's own
feature statistics (``Comp_v6_KLD01/meta/{mean,std}.npy``). Architecture as in T2M's
``networks/modules.py``: MovementConvEncoder (263-4 -> 512, two stride-2 convolutions, i.e. 4 frames per
step), MotionEncoderBiGRUCo (512 -> 1024 bidirectional GRU -> 512) and TextEncoderBiGRUCo (300-d words +
15-way POS one-hot -> 512 bidirectional GRU -> 512). Nothing is downloaded: the user supplies the files.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from motion.core.errors import DataError
from motion.core.io import load_plain_pickle

UNIT_LENGTH = 4
MAX_MOTION_LEN = 196
MAX_TEXT_LEN = 20
WORD_DIM = 300
POS_NAMES = ("VERB", "NOUN", "DET", "ADP", "NUM", "AUX", "PRON", "ADJ", "ADV",
             "Loc_VIP", "Body_VIP", "Obj_VIP", "Act_VIP", "Desc_VIP", "OTHER")
VIP_WORDS = {
    "Loc_VIP": ("left", "right", "clockwise", "counterclockwise", "anticlockwise", "forward", "back", "backward",
                "up", "down", "straight", "curve"),
    "Body_VIP": ("arm", "chin", "foot", "feet", "face", "hand", "mouth", "leg", "waist", "eye", "knee", "shoulder",
                 "thigh"),
    "Obj_VIP": ("stair", "dumbbell", "chair", "window", "floor", "car", "ball", "handrail", "baseball", "basketball"),
    "Act_VIP": ("walk", "run", "swing", "pick", "bring", "kick", "put", "squat", "throw", "hop", "dance", "jump",
                "turn", "stumble", "stop", "sit", "lift", "lower", "raise", "wash", "stand", "kneel", "stroll",
                "rub", "bend", "balance", "flap", "jog", "shuffle", "lean", "rotate", "spin", "spread", "climb"),
    "Desc_VIP": ("slowly", "carefully", "fast", "careful", "slow", "quickly", "happy", "angry", "sad", "happily",
                 "angrily", "sadly"),
}


class MovementConvEncoder(nn.Module):
    """Two stride-2 temporal convolutions: (B, T, 259) -> (B, T // 4, 512) movement features."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(input_size, hidden_size, 4, 2, 1), nn.Dropout(0.2), nn.LeakyReLU(0.2),
            nn.Conv1d(hidden_size, output_size, 4, 2, 1), nn.Dropout(0.2), nn.LeakyReLU(0.2))
        self.out_net = nn.Linear(output_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.out_net(self.main(x.permute(0, 2, 1)).permute(0, 2, 1))


class _BiGRUCo(nn.Module):
    """Linear input embedding, a bidirectional GRU with a learnt initial state, an MLP on both last states."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.input_emb = nn.Linear(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = nn.Sequential(nn.Linear(hidden_size * 2, hidden_size), nn.LayerNorm(hidden_size),
                                        nn.LeakyReLU(0.2), nn.Linear(hidden_size, output_size))
        self.hidden = nn.Parameter(torch.randn(2, 1, hidden_size))

    def _encode(self, x: Tensor, lengths: Tensor) -> Tensor:
        packed = pack_padded_sequence(self.input_emb(x), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed, self.hidden.repeat(1, x.shape[0], 1))
        return self.output_net(torch.cat([last[0], last[1]], dim=-1))


class MotionEncoderBiGRUCo(_BiGRUCo):
    """Movement features (B, T', 512) + lengths (B,) -> motion embedding (B, 512)."""

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        return self._encode(x, lengths)


class TextEncoderBiGRUCo(_BiGRUCo):
    """Word vectors (B, L, 300) + POS one-hots (B, L, 15) + lengths (B,) -> text embedding (B, 512)."""

    def __init__(self, word_size: int, pos_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__(word_size, hidden_size, output_size)
        self.pos_emb = nn.Linear(pos_size, word_size)

    def forward(self, words: Tensor, pos: Tensor, lengths: Tensor) -> Tensor:
        return self._encode(words + self.pos_emb(pos), lengths)


def build_t2m_networks(motion_dim: int = 263) -> dict[str, nn.Module]:
    """The three networks of ``finest.tar`` with T2M's HumanML3D sizes."""
    return {"text_encoder": TextEncoderBiGRUCo(WORD_DIM, len(POS_NAMES), 512, 512),
            "movement_encoder": MovementConvEncoder(motion_dim - 4, 512, 512),
            "motion_encoder": MotionEncoderBiGRUCo(512, 1024, 512)}


NETWORK_KEYS = ("text_encoder", "movement_encoder", "motion_encoder")


def networks_from_state(state: dict, path: str | Path) -> dict[str, nn.Module]:
    """The three networks of a ``finest.tar``-format dict with every size read from its tensors, weights loaded."""
    for key in NETWORK_KEYS:
        if not isinstance(state.get(key), dict):
            raise DataError(path, f"has no {key!r} state_dict", "use T2M's text_mot_match/model/finest.tar")
    text, movement, motion = (state[k] for k in NETWORK_KEYS)
    try:
        nets = {
            "text_encoder": TextEncoderBiGRUCo(text["pos_emb.weight"].shape[0], text["pos_emb.weight"].shape[1],
                                               text["hidden"].shape[-1], text["output_net.3.weight"].shape[0]),
            "movement_encoder": MovementConvEncoder(movement["main.0.weight"].shape[1],
                                                    movement["main.0.weight"].shape[0],
                                                    movement["main.3.weight"].shape[0]),
            "motion_encoder": MotionEncoderBiGRUCo(motion["input_emb.weight"].shape[1], motion["hidden"].shape[-1],
                                                   motion["output_net.3.weight"].shape[0]),
        }
        for key, net in nets.items():
            net.load_state_dict(state[key])
    except (KeyError, RuntimeError) as error:
        raise DataError(path, f"is not a T2M text_mot_match evaluator ({str(error).splitlines()[0][:120]})",
                        "use T2M's text_mot_match/model/finest.tar") from None
    return nets


def read_t2m_checkpoint(checkpoint: str | Path) -> dict[str, nn.Module]:
    """Load ``finest.tar`` safely (weights_only) into networks sized from its tensors."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise DataError(checkpoint, "T2M evaluator checkpoint is missing",
                        "set evaluate.t2m.checkpoint to text_mot_match/model/finest.tar or clear it")
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 -- torch raises many types for foreign or damaged files
        raise DataError(checkpoint, f"is not a readable torch checkpoint ({type(error).__name__})",
                        "download T2M's text_mot_match/model/finest.tar again") from None
    if not isinstance(state, dict):
        raise DataError(checkpoint, "is not a finest.tar-format dict", "use T2M's text_mot_match/model/finest.tar")
    return networks_from_state(state, checkpoint)


class WordVectorizer:
    """GloVe vector and POS one-hot of a ``word/POS`` token (VIP word lists override the POS, as T2M)."""

    def __init__(self, glove_dir: str | Path, prefix: str = "our_vab") -> None:
        folder = Path(glove_dir)
        paths = [folder / f"{prefix}_data.npy", folder / f"{prefix}_words.pkl", folder / f"{prefix}_idx.pkl"]
        for path in paths:
            if not path.is_file():
                raise DataError(path, "GloVe file of the T2M evaluator is missing",
                                "put T2M's glove folder there or clear evaluate.t2m.glove_dir")
        vectors = np.load(paths[0])
        words, index = load_plain_pickle(paths[1]), load_plain_pickle(paths[2])
        self.word2vec = {w: vectors[index[w]].astype(np.float32) for w in words}
        if "unk" not in self.word2vec:
            raise DataError(paths[1], "vocabulary has no 'unk' entry", "use T2M's our_vab files")
        self.vip = {w: key for key, words_ in VIP_WORDS.items() for w in words_}

    def pos_one_hot(self, pos: str) -> np.ndarray:
        """15-way one-hot of a POS tag (unknown tags -> OTHER)."""
        out = np.zeros(len(POS_NAMES), dtype=np.float32)
        out[POS_NAMES.index(pos) if pos in POS_NAMES else POS_NAMES.index("OTHER")] = 1.0
        return out

    def __call__(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        """(300,) word vector and (15,) POS one-hot of ``word/POS``."""
        word, _, pos = token.rpartition("/") if "/" in token else (token, "", "OTHER")
        if word not in self.word2vec:
            return self.word2vec["unk"], self.pos_one_hot("OTHER")
        return self.word2vec[word], self.pos_one_hot(self.vip.get(word, pos))


def caption_tokens(text: str, tokens: str = "") -> list[str]:
    """T2M's token list: the caption's ``word/POS`` tokens (or its lower-cased words tagged OTHER), cut to 20."""
    words = text.lower().replace(".", " ").replace(",", " ").split()
    items = tokens.split() if tokens.strip() else [f"{w}/OTHER" for w in words]
    return ["sos/OTHER"] + items[:MAX_TEXT_LEN] + ["eos/OTHER"]


class T2MEvaluator:
    """Guo's evaluator behind the evaluation interface: encode_texts / encode_motions -> (N, 512)."""

    name = "t2m"

    def __init__(self, networks: dict[str, nn.Module], vectorizer: WordVectorizer, mean: np.ndarray,
                 std: np.ndarray, device: str = "cpu") -> None:
        self.nets = {k: v.to(device).eval() for k, v in networks.items()}
        self.vectorizer = vectorizer
        self.mean, self.std = mean.astype(np.float32), std.astype(np.float32)
        self.device = device
        self.dim = int(self.nets["motion_encoder"].output_net[-1].out_features)

    @classmethod
    def load(cls, checkpoint: str | Path, glove_dir: str | Path, meta_dir: str | Path,
             device: str = "cpu") -> T2MEvaluator:
        """Load ``finest.tar``, the GloVe vocabulary and the evaluator's mean.npy / std.npy."""
        nets = read_t2m_checkpoint(checkpoint)
        stats = []
        for name in ("mean.npy", "std.npy"):
            path = Path(meta_dir) / name
            if not path.is_file():
                raise DataError(path, "T2M evaluator statistics are missing",
                                "set evaluate.t2m.meta_dir to Comp_v6_KLD01/meta")
            stats.append(np.load(path))
        return cls(nets, WordVectorizer(glove_dir), stats[0], stats[1], device)

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str], tokens: Sequence[str] | None = None) -> np.ndarray:
        """Text embeddings (N, 512) from captions and their ``word/POS`` token strings."""
        out = []
        for start in range(0, len(texts), 256):
            chunk = range(start, min(start + 256, len(texts)))
            lists = [caption_tokens(texts[i], tokens[i] if tokens else "") for i in chunk]
            longest = max(len(t) for t in lists)
            words = np.zeros((len(lists), longest, WORD_DIM), np.float32)
            pos = np.zeros((len(lists), longest, len(POS_NAMES)), np.float32)
            for i, items in enumerate(lists):
                for j, tok in enumerate(items + ["unk/OTHER"] * (longest - len(items))):
                    words[i, j], pos[i, j] = self.vectorizer(tok)
            lengths = torch.tensor([len(t) for t in lists])
            out.append(self.embed_word_vectors(torch.from_numpy(words), torch.from_numpy(pos), lengths))
        return np.concatenate(out).astype(np.float64)

    @torch.no_grad()
    def embed_word_vectors(self, words: Tensor, pos: Tensor, lengths: Tensor) -> np.ndarray:
        """Text embeddings (B, dim) of padded word vectors (B, L, 300), POS one-hots (B, L, 15), lengths (B,).

        The GRU runs on the captions sorted by descending length (as T2M's packed sequences need);
        the result is in input order.
        """
        order = torch.argsort(lengths, descending=True, stable=True)
        emb = self.nets["text_encoder"](words[order].to(self.device), pos[order].to(self.device), lengths[order])
        return emb[torch.argsort(order)].cpu().numpy()

    @torch.no_grad()
    def embed_normalised_motions(self, motions: Tensor, lengths: Tensor) -> np.ndarray:
        """Motion embeddings (B, dim) of evaluator-normalised, zero-padded features (B, T, 263) with lengths (B,).

        Lengths are cut to multiples of the unit length (4 frames per movement step); the movement
        convolutions see the padding, the GRU runs on the samples sorted by descending length, and
        the result is in input order.
        """
        steps = lengths // UNIT_LENGTH
        if int(steps.min()) < 1:
            raise ValueError(f"T2M evaluator: motions need >= {UNIT_LENGTH} frames")
        order = torch.argsort(steps, descending=True, stable=True)
        movements = self.nets["movement_encoder"](motions[order][..., :-4].to(self.device))
        emb = self.nets["motion_encoder"](movements, steps[order])
        return emb[torch.argsort(order)].cpu().numpy()

    @torch.no_grad()
    def encode_motions(self, motions: Sequence[np.ndarray]) -> np.ndarray:
        """Motion embeddings (N, 512) of de-normalised HumanML3D features (T >= 4, 263) each."""
        out = []
        for start in range(0, len(motions), 256):
            chunk = [np.asarray(m, np.float32) for m in motions[start:start + 256]]
            lengths = [(len(m) // UNIT_LENGTH) * UNIT_LENGTH for m in chunk]
            if min(lengths) < UNIT_LENGTH:
                raise ValueError(f"T2M evaluator: motions need >= {UNIT_LENGTH} frames")
            # Zero-padded (in normalised space) to T2M's 196 frames: the convolutions see the padding, as in T2M.
            batch = np.zeros((len(chunk), max(MAX_MOTION_LEN, *lengths), chunk[0].shape[1]), np.float32)
            for i, (m, n) in enumerate(zip(chunk, lengths)):
                batch[i, :n] = (m[:n] - self.mean) / self.std
            out.append(self.embed_normalised_motions(torch.from_numpy(batch), torch.tensor(lengths)))
        return np.concatenate(out).astype(np.float64)
