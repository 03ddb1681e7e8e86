"""``python -m tools.switch_source``: the one switch between the trained and the released models."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from motion.core.errors import DataError
from motion.core.settings import SettingsError
from tests.support.params import PARAMS_FILE, real_params, with_overrides

REPO = Path(__file__).resolve().parents[1]
SWITCHED = {"models.source", "models.lgtm", "models.runs", "models.tmr", "models.evaluator",
            "embed_texts.encoder", "embed_texts.token_dtype",
            "lgtm.sampling.timestep_spacing"}


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.splitlines(), after.splitlines()
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b) if x != y]


def test_switching_writes_the_five_keys_in_place_and_back(tmp_path: Path) -> None:
    from stages.settings import load_settings
    from tools.switch_source import main

    params = tmp_path / "params.yaml"
    original = PARAMS_FILE.read_text(encoding="utf-8")
    params.write_text(original, encoding="utf-8")
    main(["official", "--params", str(params)])
    settings = load_settings(path=params)
    assert (settings.models.source, settings.models.lgtm, settings.models.tmr) == \
        ("official", "data/official/lgtm", "data/official/tmr")
    assert (settings.embed_texts.encoder, settings.embed_texts.token_dtype) == ("distilbert", "float32")
    changed = changed_lines(original, params.read_text(encoding="utf-8"))
    assert len(changed) == len(SWITCHED)
    for old, new in changed:  # same key, same comment in the same column
        assert old.split(":")[0] == new.split(":")[0] and old.index("#") == new.index("#")
        assert old[old.index("#"):] == new[new.index("#"):]
    main(["trained", "--params", str(params)])
    assert params.read_text(encoding="utf-8") == original


def test_the_experiment_options_make_the_same_switch_through_dvc(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    """``dvc exp run $(... --set-args)``: DVC's own ``-S`` code gives the file the command writes."""
    from dvc.utils.hydra import apply_overrides

    from tools.switch_source import main

    written, via_dvc = tmp_path / "written.yaml", tmp_path / "dvc.yaml"
    for file in (written, via_dvc):
        file.write_text(PARAMS_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    main(["official", "--params", str(written)])
    capsys.readouterr()
    main(["official", "--params", str(via_dvc), "--set-args"])
    args = capsys.readouterr().out.split()
    assert args[::2] == ["-S"] * len(SWITCHED) and {a.split("=")[0] for a in args[1::2]} == SWITCHED
    apply_overrides(via_dvc, args[1::2])
    assert yaml.safe_load(via_dvc.read_text()) == yaml.safe_load(written.read_text())


def test_the_switched_file_makes_the_consumers_depend_on_the_import(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    (tmp_path / "params.yaml").write_text(PARAMS_FILE.read_text())
    subprocess.run([sys.executable, "-m", "tools.switch_source", "official", "--params", "params.yaml"],
                   cwd=tmp_path, check=True, capture_output=True, env={"PYTHONPATH": str(REPO)})
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    graph = subprocess.run([sys.executable, "-m", "dvc", "dag", "--dot", "evaluate"], cwd=tmp_path, check=True,
                           capture_output=True, text=True).stdout
    assert '"import_official" -> "evaluate"' in graph and "train_" not in graph and "eval_tmr" not in graph


def test_a_half_made_official_switch_names_the_command() -> None:
    from stages.settings import parse_settings

    official = {"models": {"source": "official", "lgtm": "data/official/lgtm", "runs": "data/official/lgtm",
                           "tmr": "data/official/tmr", "evaluator": "data/official/tmr"}}
    with pytest.raises(SettingsError, match="models.source is official but embed_texts.encoder is minilm, the released "
                                            "TMRs read distilbert: run python -m tools.switch_source official"):
        parse_settings(with_overrides(official))
    with pytest.raises(SettingsError, match="embed_texts.token_dtype is float16, the released TMRs read float32"):
        parse_settings(with_overrides({**official, "embed_texts.encoder": "distilbert"}))
    parse_settings(with_overrides({"embed_texts.encoder": "clip"}))  # the trained source takes any encoder
    broken = real_params()
    broken["sources"]["official"]["models"]["source"] = "trained"
    with pytest.raises(SettingsError, match="sources.official.models.source is trained: set it to official"):
        parse_settings(broken)
    del broken["sources"]["official"]
    with pytest.raises(SettingsError, match="sources has trained: give exactly trained and official"):
        parse_settings(broken)


def test_bad_files_are_one_line_errors_and_stay_as_they_were(tmp_path: Path) -> None:
    from tools.switch_source import switch

    params = tmp_path / "params.yaml"
    raw = real_params()
    text = yaml.safe_dump(raw, sort_keys=False).replace(
        "models:\n  source: trained\n  lgtm: data/lgtm/lgtm\n  runs: data/lgtm\n  tmr: data/tmr\n"
        "  evaluator: data/evaluator\n",
        "models: {source: trained, lgtm: data/lgtm/lgtm, runs: data/lgtm, tmr: data/tmr, evaluator: data/evaluator}\n")
    assert "models: {source" in text
    params.write_text(text)
    with pytest.raises(DataError, match=r"models.source is not a one-line `key: value` -- fix: write models.source "
                                        "in block style"):
        switch(params, "official")
    assert params.read_text() == text
    raw["sources"]["official"]["embed_texts"]["encoder"] = "clip"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    before = params.read_text()
    done = subprocess.run([sys.executable, "-m", "tools.switch_source", "official", "--params", str(params)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "sources.official.embed_texts.encoder is clip: the released TMRs read distilbert" in done.stderr
    assert params.read_text() == before
    del raw["sources"]
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(DataError, match="sources.official is missing"):
        switch(params, "official")
