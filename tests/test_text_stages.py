"""The split_texts and embed_texts stages end to end on a tiny project in a temporary folder."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from motion.core.parts import PART_NAMES
from motion.text.embeddings import TextEmbeddings
from stages import embed_texts, split_texts
from tests.support.llm import FakeServer
from tests.support.stores import write_caption_files

CAPTIONS = {
    "000001": "a person walks forward while waving the right hand#a/DET#0.0#0.0\nsomeone jumps#x#0.0#0.0\n",
    "M000001": "a person walks forward while waving the left hand#a/DET#0.0#0.0\nsomeone jumps#x#0.0#0.0\n",
    "000002": "a man kicks with his left leg#x#0.0#0.0\n",
}


@pytest.fixture
def project(tmp_path, stage_params):
    """A project folder with caption files and the real params; returns a function to override them."""
    write_caption_files(tmp_path / "data/poses", CAPTIONS)
    walk = {"action": "walk", "text": "walks forward"}
    idle = {"action": "idle", "text": "does nothing"}
    truth = {"000001_0": {"head": idle, "left_arm": idle, "right_arm": {"action": "wave", "text": "waves"},
                          "torso": walk, "left_leg": walk, "right_leg": walk}}
    (tmp_path / "data/poses/part_texts.json").write_text(json.dumps(truth))
    base = {"seed": 1, "split_texts.backend": "rules", "embed_texts.encoder": "minilm",
            "compute.threads.embed_texts": 1}

    def update(overrides=None):
        stage_params({**base, **(overrides or {})})

    update()
    return update


def test_split_then_embed_with_defaults(project, tmp_path):
    split_texts.main()
    table = pd.read_parquet(tmp_path / "data/texts/part_texts.parquet")
    assert list(table["seg_id"]) == ["000001_0", "000001_1", "000002_0", "M000001_0", "M000001_1"]
    assert {f"{p}_{f}" for p in PART_NAMES for f in ("action", "text")} <= set(table.columns)
    row = table.set_index("seg_id").loc["M000001_0"]
    assert row["left_arm_action"] == "wave" and row["right_arm_action"] == "idle" and row["backend"] == "rules"
    export = json.loads((tmp_path / "data/texts/body_part_annotations.json").read_text())
    assert export["000002_0"]["left_leg"]["action"] == "kick" and set(export["000002_0"]) == set(PART_NAMES)
    report = json.loads((tmp_path / "data/texts/report.json").read_text())
    assert report["ground_truth"]["f1"] == 1.0 and report["non_idle_share"] == 1.0

    embed_texts.main()
    emb = TextEmbeddings.load(tmp_path / "data/embeddings")
    wanted = set(table["caption"]) | {t for p in PART_NAMES for t in table[f"{p}_text"]}
    assert set(emb.texts) == wanted and "does nothing" in emb
    assert emb.tokens("someone jumps").shape[1] == 384 and emb.sentences(sorted(wanted)).shape == (len(wanted), 384)
    first = (tmp_path / "data/embeddings/tokens.npy").read_bytes()

    # a new caption: only it (and its new part texts) are encoded; the rest comes from the cache
    write_caption_files(tmp_path / "data/poses", {**CAPTIONS, "000003": "a person nods#x#0.0#0.0\n"})
    split_texts.main()
    embed_texts.main()
    emb2 = TextEmbeddings.load(tmp_path / "data/embeddings")
    assert "a person nods" in emb2 and "nods" in emb2
    assert emb2.tokens("someone jumps").tobytes() == emb.tokens("someone jumps").tobytes()
    assert len(first) < (tmp_path / "data/embeddings/tokens.npy").stat().st_size


def test_llm_backend_stage_records_failures_and_falls_back(project, tmp_path):
    with FakeServer({"someone jumps": ["garbage"]}) as server:
        llm = {"split_texts.backend": "llm", "split_texts.llm.base_url": server.url, "split_texts.llm.model": "m",
               "split_texts.llm.timeout_s": 2, "split_texts.llm.backoff_s": 0.01}
        project({**llm, "split_texts.llm.max_retries": 1})
        split_texts.main()
        report = json.loads((tmp_path / "data/texts/report.json").read_text())
        assert report["llm"]["failed"] == 1 and report["llm"]["failures"][0]["caption"] == "someone jumps"
        table = pd.read_parquet(tmp_path / "data/texts/part_texts.parquet").set_index("seg_id")
        assert table.loc["000001_1", "backend"] == "rules (llm failed)"
        assert table.loc["000002_0", "backend"] == "llm" and table.loc["000002_0", "left_arm_text"] == "waves"
        requests = len(server.requests)
        project({**llm, "split_texts.on_failure": "error", "split_texts.llm.max_retries": 0})
        with pytest.raises(SystemExit, match="could not be split"):
            split_texts.main()
        assert [r["caption"] for r in server.requests[requests:]] == ["someone jumps"]  # the rest is cached


def test_missing_inputs_exit_with_one_line(project, tmp_path):
    with pytest.raises(SystemExit, match="run dvc repro split_texts"):
        embed_texts.main()
    project({"split_texts.backend": "gpt"})
    with pytest.raises(SystemExit, match=r"^split_texts: \S*params.yaml: split_texts.backend: expected one of "
                                         r"'rules' \| 'llm', got 'gpt'$"):
        split_texts.main()
