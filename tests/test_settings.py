"""The strict settings layer: params.yaml is read once into typed, frozen settings; bad keys are one-line errors."""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest

from motion.core.settings import SettingsError, Undeclared, UndeclaredSettingError, read_yaml, stage_view
from stages.settings import Settings, declared_params, load_settings, parse_settings

ROOT = Path(__file__).resolve().parents[1]
RAW = read_yaml(ROOT / "params.yaml")


def parsed(mutate) -> Settings:
    raw = copy.deepcopy(RAW)
    mutate(raw)
    return parse_settings(raw, "params.yaml")


def error_of(mutate) -> str:
    with pytest.raises(SettingsError) as info:
        parsed(mutate)
    message = str(info.value)
    assert "\n" not in message and message.startswith("params.yaml: ")
    return message


def test_params_yaml_parses_in_every_profile() -> None:
    for profile in RAW["profiles"]:
        settings = parsed(lambda r, p=profile: r.__setitem__("profile", p))
        assert settings.profile == profile
    assert parsed(lambda r: None).lgtm.model.window == 64


def test_paper_profile_lays_its_values_over_the_base() -> None:
    paper = parsed(lambda r: r.__setitem__("profile", "paper"))
    cpu = parsed(lambda r: None)
    assert (paper.lgtm.model.dim, paper.lgtm.sampling.steps, paper.tmr.train.crop_frames) == (128, 1000, None)
    assert paper.lgtm.sampling.sampler == cpu.lgtm.sampling.sampler  # not overridden: the base value
    assert paper.compute.threads.train_tmr == 0 and paper.compute.threads.embed_texts == cpu.compute.threads.embed_texts
    assert len(paper.evaluate.rows) == 1 and paper.evaluate.rows[-1].guidance_scale == 2.5
    assert (paper.evaluate.curve.items, paper.evaluate.curve.replications, paper.evaluate.replications) == (0, 20, 20)


def test_settings_are_frozen() -> None:
    settings = parsed(lambda r: None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.lgtm.train.lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("mutate, expected", [
    (lambda r: r["lgtm"]["model"].__setitem__("conformer_block", 8), "lgtm.model.conformer_block: unknown key"),
    (lambda r: r["lgtm"]["train"].__setitem__("max_step", 20), "lgtm.train.max_step: unknown key"),
    (lambda r: r["lgtm"]["train"].__setitem__("max_steps", -1), "lgtm.train.max_steps: expected int >= 0, got -1"),
    (lambda r: r["download"]["synthetic"].__setitem__("num_motions", 12.9), "num_motions: expected int, got 12.9"),
    (lambda r: r["tmr"]["train"].__setitem__("epochs", 0), "tmr.train.epochs: expected int >= 1, got 0"),
    (lambda r: r["lgtm"]["train"].pop("lr"), "lgtm.train.lr: missing (float >= 0)"),
    (lambda r: r["features"].__setitem__("fix_root_wrap", "yes"), "features.fix_root_wrap: expected bool, got 'yes'"),
    (lambda r: r["lgtm"]["sampling"].__setitem__("sampler", "ddpm"), "lgtm.sampling.sampler: expected one of"),
    (lambda r: r["lgtm"]["sampling"].__setitem__("steps", 0), "lgtm.sampling.steps: expected int in [1, 1000]"),
    (lambda r: r.__setitem__("profile", "gpu"), "profile: 'gpu' is not a profile"),
    (lambda r: r["profiles"]["paper"]["lgtm"].__setitem__("sampler", "x"), "profiles.paper.lgtm.sampler: overrides"),
    (lambda r: r["captions"].__setitem__("max_frames", 10), "captions: max_frames (10) must exceed min_frames (40)"),
    (lambda r: r["evaluate"]["curve"]["points"][0].__setitem__("stepz", 3),
     "evaluate.curve.points[0].stepz: unknown key"),
    (lambda r: r["lgtm"]["runs"]["lgtm"].__setitem__("variant", "nope"),
     "lgtm.runs.lgtm.variant is 'nope': use one of"),
    (lambda r: r["evaluate"].__setitem__("variants", ["lgtm", "lgtm"]), "evaluate row name(s) lgtm used twice"),
    (lambda r: r.__setitem__("sed", 1), "sed: unknown key"),
])
def test_bad_settings_are_one_line_errors_naming_the_key(mutate, expected: str) -> None:
    if "profiles.paper" in expected:
        original = mutate
        mutate = lambda r: (original(r), r.__setitem__("profile", "paper"))  # noqa: E731
    assert expected in error_of(mutate)


def test_unreadable_params_file_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("lgtm: [unclosed\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(path=bad)
    with pytest.raises(SettingsError, match="file not found"):
        load_settings(path=tmp_path / "absent.yaml")


def test_stage_view_refuses_undeclared_settings() -> None:
    settings = parsed(lambda r: None)
    view = stage_view(settings, {"seed", "lgtm.model", "paths.lgtm"}, "train_lgtm")
    assert view.lgtm.model.dim == 32 and view.paths.lgtm == settings.paths.lgtm and view.seed == 1234
    assert isinstance(view.lgtm.sampling, Undeclared)
    for use in (lambda: view.lgtm.sampling.steps, lambda: int(view.lgtm.train.lr), lambda: f"{view.paths.poses}",
                lambda: view.evaluate.rows[0], lambda: bool(view.captions), lambda: Path(view.paths.features)):
        with pytest.raises(UndeclaredSettingError, match="stage train_lgtm reads params.yaml key"):
            use()


def test_every_stage_view_of_the_real_files_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    for stage in ("download", "poses", "features", "split_texts", "embed_texts", "train_tmr@head", "eval_tmr",
                  "train_lgtm", "evaluate", "prompt_study"):
        assert declared_params(stage), stage
        load_settings(stage)


def test_a_stage_refuses_output_locations_that_would_lose_data(tmp_path: Path) -> None:
    from motion.core.errors import DataError
    from tests.support.params import write_params

    params = write_params(tmp_path, {"paths.texts": str(tmp_path.parent / "outside")})
    with pytest.raises(DataError, match="paths.texts"):
        load_settings("split_texts", path=params)
    write_params(tmp_path, {"paths.assets": "data/cache"})
    with pytest.raises(DataError, match="paths.assets .* overlaps the persistent folder"):
        load_settings("download", path=params)
