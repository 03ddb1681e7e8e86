"""Text embeddings: the cache, the folder format, the TextEmbeddings API, and the real encoders."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from motion.core.errors import DataError
from motion.core.settings import SettingsError
from motion.text.cache import ArrayCache
from motion.text.embeddings import (
    EncoderSettings,
    TextEmbeddings,
    embed_with_cache,
    encoder_settings,
    make_encoder,
    write_embeddings,
)
from stages.settings import parse_settings
from tests.support.params import real_params, settings_with


class CountingEncoder:
    """A deterministic stand-in encoder: one token per word, records what it was asked to encode."""

    name = "counting"
    cache_id = "counting:v1"
    token_dim = 4
    sentence_dim = 3

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts):
        self.seen += texts
        tokens = [np.full((len(t.split()), 4), len(t), dtype=np.float32) for t in texts]
        sentences = np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)
        return tokens, sentences / np.linalg.norm(sentences, axis=1, keepdims=True)


def test_cache_encodes_only_new_texts_and_folder_roundtrips(tmp_path):
    encoder = CountingEncoder()
    cache = ArrayCache(tmp_path / "cache")
    assert embed_with_cache(["a b", "c", "a b"], encoder, cache, batch_size=1, progress=False) == 2
    cache = ArrayCache(tmp_path / "cache")  # reopened from disk
    assert embed_with_cache(["c", "d e f", "a b"], encoder, cache, progress=False) == 1
    assert list(dict.fromkeys(encoder.seen)) == ["a b", "c", "d e f"]  # each batch is filled up to batch_size

    write_embeddings(tmp_path / "emb", ["d e f", "c", "a b"], cache, encoder)
    emb = TextEmbeddings.load(tmp_path / "emb")
    assert emb.texts == ["a b", "c", "d e f"] and len(emb) == 3
    assert (emb.token_dim, emb.sentence_dim) == (4, 3)
    assert emb.tokens("d e f").shape == (3, 4) and emb.tokens("d e f").dtype == np.float32
    assert np.all(emb.tokens("d e f") == 5)
    assert emb.sentences(["c", "a b"]).shape == (2, 3)
    np.testing.assert_allclose(np.linalg.norm(emb.sentences(emb.texts), axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(emb.sentence("c"), emb.sentences(["c"])[0])
    assert "c" in emb and "zzz" not in emb
    with pytest.raises(KeyError, match="rerun embed_texts"):
        emb.tokens("zzz")


def test_float32_tokens_keep_every_bit_and_have_their_own_cache(tmp_path):
    """embed_texts.token_dtype float32 (the official TMRs' input): unrounded tokens, a separate cache folder."""
    from models.text_latents import TokenSource
    from stages.embed_texts import cache_folder

    class Fine(CountingEncoder):
        def encode(self, texts):
            tokens, sentences = super().encode(texts)
            return [t + np.float32(1e-4) for t in tokens], sentences

    encoder = Fine()
    assert cache_folder(encoder.cache_id, np.dtype("float16")) != cache_folder(encoder.cache_id, np.dtype("float32"))
    for dtype in (np.float16, np.float32):
        cache = ArrayCache(tmp_path / np.dtype(dtype).name, dtype)
        embed_with_cache(["a b"], encoder, cache, progress=False)
        write_embeddings(tmp_path / f"emb_{np.dtype(dtype).name}", ["a b"], ArrayCache(cache.folder, dtype), encoder,
                         dtype)
    exact = TextEmbeddings.load(tmp_path / "emb_float32")
    rounded = TextEmbeddings.load(tmp_path / "emb_float16")
    assert exact.token_dtype == np.float32 and rounded.token_dtype == np.float16
    assert np.array_equal(exact.tokens("a b"), np.full((2, 4), 3 + np.float32(1e-4), np.float32))
    assert not np.array_equal(rounded.tokens("a b"), exact.tokens("a b"))
    assert len(ArrayCache(tmp_path / "float16", np.float32)) == 0  # float16 shards are not served as float32
    new = TokenSource(tmp_path / "emb_float32", lambda: encoder)("c d")  # a new text, rounded like the stored ones
    assert new.dtype == np.float32 and np.array_equal(new, np.full((2, 4), 3 + np.float32(1e-4), np.float32))


def real_encoder(**changes: str) -> EncoderSettings:
    """The real params' encoder settings (embed_texts stage view, compute.device) with ``changes``."""
    settings = settings_with({}, stage="embed_texts")
    return dataclasses.replace(encoder_settings(settings.embed_texts, settings.compute.device), **changes)


def test_settings_name_missing_and_unknown_keys() -> None:
    raw = real_params()
    section = raw["embed_texts"]
    with pytest.raises(SettingsError, match=r"^params.yaml: embed_texts.batch_size: missing \(int >= 1\)"):
        parse_settings({**raw, "embed_texts": {k: v for k, v in section.items() if k != "batch_size"}})
    with pytest.raises(SettingsError, match=r"^params.yaml: embed_texts.clip.chekpoint: unknown key "
                                            r"-- fix: embed_texts.clip has: checkpoint, pretrained$"):
        parse_settings({**raw, "embed_texts": {**section, "clip": {**section["clip"], "chekpoint": "x.pt"}}})
    with pytest.raises(SettingsError, match=r"params.yaml: compute.device: expected one of 'auto' \| 'cpu' \| "
                                            r"'cuda', got 'gpu'"):
        settings_with({"compute.device": "gpu"})


def test_unknown_encoder_and_missing_folder_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="embed_texts.encoder"):
        make_encoder(real_encoder(encoder="word2vec"))
    with pytest.raises(DataError, match="embed_texts"):
        TextEmbeddings.load(tmp_path)
    with pytest.raises(DataError, match="checkpoint is missing"):
        make_encoder(real_encoder(encoder="clip", clip_checkpoint=str(tmp_path / "none.pt")))


def test_distilbert_absent_from_cache_is_a_clear_error():
    with pytest.raises(DataError, match="Hugging Face cache"):  # offline: nothing is downloaded
        make_encoder(real_encoder(encoder="distilbert", distilbert_name="lgtm-test/no-such-distilbert"))


def test_minilm_features_are_per_token_and_semantic():
    import torch

    torch.set_num_threads(1)
    encoder = make_encoder(real_encoder(encoder="minilm"))
    tokens, sentences = encoder.encode(["a person walks forward", "someone is walking ahead", "does nothing"])
    assert encoder.token_dim == encoder.sentence_dim == 384 and encoder.cache_id == "minilm:all-MiniLM-L6-v2"
    assert tokens[0].shape == (6, 384)  # [CLS] a person walks forward [SEP]
    np.testing.assert_allclose(np.linalg.norm(sentences, axis=1), 1.0, rtol=1e-5)
    assert sentences[0] @ sentences[1] > sentences[0] @ sentences[2] + 0.2
    again, _ = encoder.encode(["a person walks forward"])  # padding of other texts does not change features
    np.testing.assert_allclose(again[0], tokens[0], atol=1e-4)


@pytest.mark.slow
def test_clip_loads_a_saved_checkpoint(tmp_path):
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    torch.save(model.state_dict(), tmp_path / "vitb32.pt")
    encoder = make_encoder(real_encoder(encoder="clip", clip_checkpoint=str(tmp_path / "vitb32.pt")))
    tokens, sentences = encoder.encode(["a person jumps", "a person waves the right hand twice"])
    assert (encoder.token_dim, encoder.sentence_dim) == (512, 512)
    assert tokens[0].shape == (5, 512)  # <start> a person jumps <end>
    reference = model.encode_text(open_clip.get_tokenizer("ViT-B-32")(["a person jumps"]), normalize=True)
    np.testing.assert_allclose(sentences[0], reference[0].detach().numpy(), atol=1e-5)
    torch.save({"bad": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(DataError, match="state_dict"):
        make_encoder(real_encoder(encoder="clip", clip_checkpoint=str(tmp_path / "bad.pt"))).encode(["a"])
