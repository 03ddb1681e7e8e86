"""What ``params.yaml`` holds: the typed, frozen schema of every pipeline setting, read once.

``load_settings()`` reads the file (``$LGTM_PARAMS`` or ``params.yaml``), lays the selected profile
over the base values and checks every key against the dataclasses below (``motion.core.settings``):
an unknown, missing or mistyped key is a one-line error naming the key and the file. The values
live only in ``params.yaml``; these classes carry types, bounds and documentation, no defaults.

``load_settings("train_lgtm")`` returns the stage's view: settings the stage does not declare in its
dvc.yaml ``params`` raise :class:`~motion.core.settings.UndeclaredSettingError` when read, so DVC
tracks everything a stage uses (tests/test_structure.py checks the declarations themselves).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from motion.core.settings import (
    NonNegative,
    Positive,
    Probability,
    Range,
    SettingsError,
    apply_profile,
    build,
    read_yaml,
    stage_view,
    to_dict,
)

PARAMS_FILE = Path("params.yaml")
DVC_FILE = Path("dvc.yaml")

PosInt = Annotated[int, Positive]
NonNegInt = Annotated[int, NonNegative]
PosFloat = Annotated[float, Range(0, None)]
Prob = Annotated[float, Probability]
Device = Literal["auto", "cpu", "cuda"]
SamplerName = Literal["ddim", "dpmsolver++"]
Policy = Literal["error", "skip"]


# ----------------------------------------------------------------------------- shared sections


@dataclass(frozen=True)
class Paths:
    """Where every stage reads and writes (dvc.yaml interpolates these)."""

    amass: str
    annotations: str
    assets: str
    poses: str
    features: str
    texts: str
    embeddings: str
    tmr: str
    tmr_eval: str
    evaluator: str
    lgtm: str
    evaluate: str
    prompt_study: str
    metrics: str
    cache: str


@dataclass(frozen=True)
class Threads:
    """torch CPU threads per stage (0 = torch's default); pinned because float results depend on them."""

    poses: NonNegInt
    embed_texts: NonNegInt
    train_tmr: NonNegInt
    eval_tmr: NonNegInt
    train_lgtm: NonNegInt
    evaluate: NonNegInt
    prompt_study: NonNegInt


@dataclass(frozen=True)
class Processes:
    """Independent runs of a stage trained side by side, one process each (1 = one after the other)."""

    train_tmr: PosInt  # a TMR's conditioner and evaluator runs (2: one per core on the 2-core default)
    train_lgtm: PosInt  # the LGTM runs (lgtm.runs)
    evaluate: PosInt   # the generated sets of the evaluation (planned first, then generated side by side)


@dataclass(frozen=True)
class Compute:
    """Device, threads and processes."""

    device: Device
    threads: Threads
    processes: Processes


@dataclass(frozen=True)
class Captions:
    """Caption spans the models learn from: spans outside [min_frames, max_frames) are skipped."""

    min_frames: PosInt
    max_frames: PosInt

    def __post_init__(self) -> None:
        if self.max_frames <= self.min_frames:
            raise ValueError(f"max_frames ({self.max_frames}) must exceed min_frames ({self.min_frames})")


# ----------------------------------------------------------------------------- data stages


@dataclass(frozen=True)
class Synthetic:
    """The embedded synthetic AMASS-format dataset."""

    num_motions: PosInt


@dataclass(frozen=True)
class AmassLocal:
    """AMASS archives (or extracted folders) on this machine."""

    archive_dir: str
    link: bool


@dataclass(frozen=True)
class AmassRemote:
    """Resumable downloads of AMASS archives (credentials from environment variables only)."""

    base_url: str
    auth: Literal["none", "basic", "bearer", "cookie", "form"]
    username_env: str
    password_env: str
    token_env: str
    archives: list[Any]
    download_dir: str
    retries: NonNegInt
    backoff_s: PosFloat
    timeout_s: PosFloat


@dataclass(frozen=True)
class AssetItem:
    """One published asset fetched with gdown."""

    gdrive_id: str
    sha256: str
    extract: bool
    url: str = ""


@dataclass(frozen=True)
class Assets:
    """Optional published assets (Google Drive)."""

    enabled: bool
    cache_dir: str
    retries: NonNegInt
    items: dict[str, AssetItem]


@dataclass(frozen=True)
class Download:
    """Stage download."""

    source: Literal["synthetic", "amass_local", "amass_remote"]
    humanml3d_dir: str
    dataset_folders: dict[str, str]
    synthetic: Synthetic
    amass_local: AmassLocal
    amass_remote: AmassRemote
    assets: Assets


@dataclass(frozen=True)
class Poses:
    """Stage poses (``min_frames`` is also the features stage's clip minimum)."""

    body_model: Literal["builtin", "smplh"]
    smplh_dir: str
    target_fps: PosInt
    min_frames: PosInt
    batch_frames: PosInt
    on_missing: Policy
    on_invalid: Policy
    cache: bool


@dataclass(frozen=True)
class Features:
    """Stage features."""

    feet_threshold: PosFloat
    fix_root_wrap: bool
    batch_frames: PosInt
    cache: bool


@dataclass(frozen=True)
class Rules:
    """The offline rules splitter."""

    fallback: bool
    gait_torso: bool


@dataclass(frozen=True)
class LLM:
    """An OpenAI-compatible chat-completions endpoint."""

    base_url: str
    model: str
    api_key_env: str
    temperature: PosFloat
    max_tokens: PosInt
    timeout_s: PosFloat
    max_retries: NonNegInt
    backoff_s: PosFloat
    max_backoff_s: PosFloat
    concurrency: PosInt
    json_mode: bool


@dataclass(frozen=True)
class SplitTexts:
    """Stage split_texts."""

    backend: Literal["rules", "llm"]
    on_failure: Literal["rules", "error"]
    rules: Rules
    llm: LLM


@dataclass(frozen=True)
class Clip:
    """open_clip ViT-B-32 weights."""

    checkpoint: str
    pretrained: str


@dataclass(frozen=True)
class DistilBert:
    """DistilBERT from the Hugging Face cache."""

    name: str


@dataclass(frozen=True)
class EmbedTexts:
    """Stage embed_texts."""

    encoder: Literal["minilm", "clip", "distilbert"]
    batch_size: PosInt
    clip: Clip
    distilbert: DistilBert
    token_dtype: Literal["float16", "float32"]


# ----------------------------------------------------------------------------- TMR


@dataclass(frozen=True)
class TMRModel:
    """TMR encoder/decoder sizes."""

    latent_dim: PosInt
    ff_size: PosInt
    num_layers: PosInt
    num_heads: PosInt
    dropout: Prob


@dataclass(frozen=True)
class TMRTrain:
    """TMR optimisation."""

    epochs: PosInt
    batch_size: PosInt
    lr: PosFloat
    weight_decay: PosFloat
    num_workers: NonNegInt
    checkpoint_every: PosInt
    val_batch_size: PosInt
    crop_frames: PosInt | None


@dataclass(frozen=True)
class TMRLoss:
    """TMR's loss weights and contrastive settings."""

    lambda_recons: PosFloat
    lambda_kl: PosFloat
    lambda_latent: PosFloat
    lambda_contrastive: PosFloat
    temperature: PosFloat
    threshold_selfsim: Prob


@dataclass(frozen=True)
class TMREval:
    """Retrieval protocols of eval_tmr."""

    threshold: Prob
    batch_size: PosInt
    repeats: PosInt
    shuffle_seed: NonNegInt


@dataclass(frozen=True)
class TMREvaluatorRuns:
    """The evaluator TMRs (trained by ``train_tmr@<encoder>`` beside each conditioning one): the same encoders
    on the same training split, with their own seed (params ``seed`` + ``seed``), never used to condition a
    model."""

    seed: PosInt


@dataclass(frozen=True)
class TMR:
    """Stages train_tmr@<encoder> (a conditioner and an evaluator each) and eval_tmr."""

    encoders: list[str]
    evaluator: TMREvaluatorRuns
    one_per_motion: bool
    model: TMRModel
    train: TMRTrain
    loss: TMRLoss
    eval: TMREval


# ----------------------------------------------------------------------------- LGTM


@dataclass(frozen=True)
class LGTMModel:
    """LGTM denoiser sizes (text_dim comes from the TMR latents)."""

    dim: PosInt
    conformer_blocks: PosInt
    attention_layers: PosInt
    heads: PosInt
    ff_expansion: PosInt
    kernel_size: PosInt
    optimizer_ff: PosInt
    smoothnet_hidden: PosInt
    smoothnet_res_hidden: PosInt
    smoothnet_blocks: NonNegInt
    dropout: Prob
    window: PosInt
    channel_attention: bool
    conv_norm: Literal["layer", "batch"]
    baseline_layers: PosInt                    # the whole_body architecture (variant baseline) only


@dataclass(frozen=True)
class Variant:
    """One trained variant of the evaluation: LGTM, or LGTM trained without one component, or the baseline.

    The ablation switches live only here (not in ``lgtm.model``), so every ablation is a model trained
    without its component, under the same data, steps and seeds as the full model.
    """

    texts: Literal["parts", "caption"]         # caption: the whole caption in all seven slots, in training and test
    architecture: Literal["lgtm", "whole_body"]  # whole_body: the MDM-style baseline (models.baseline)
    full_body_attention: bool                  # false: the "no_optimizer" ablation (part streams decoded directly)
    smoothnet: bool                            # false: the "no_smoothnet" ablation


@dataclass(frozen=True)
class Run:
    """One training run of ``train_lgtm`` (``paths.lgtm``/<run>): a variant and its seed (``seed`` + ``seed``)."""

    variant: str
    seed: NonNegInt


@dataclass(frozen=True)
class LGTMTrain:
    """LGTM optimisation (``max_steps`` > 0 overrides ``epochs``)."""

    batch_size: PosInt
    epochs: PosInt
    max_steps: NonNegInt
    lr: PosFloat
    weight_decay: PosFloat
    warmup_steps: NonNegInt
    cond_drop_prob: Prob
    val_every: PosInt
    checkpoint_every: PosInt
    log_every: PosInt
    num_workers: NonNegInt
    precision: Literal["auto", "fp32", "bf16", "fp16"]


@dataclass(frozen=True)
class Sampling:
    """How motions are drawn from a trained LGTM."""

    sampler: SamplerName
    steps: Annotated[int, Range(1, 1000)]
    eta: Annotated[float, Range(0, 1)]
    guidance_scale: Annotated[float, Range(0, None)]
    timestep_spacing: Literal["trailing", "leading"]


@dataclass(frozen=True)
class LGTM:
    """Stage train_lgtm (and the sampling defaults of generation, evaluation and the study)."""

    text_latents: Literal["tmr", "random"]
    model: LGTMModel
    variants: dict[str, Variant]
    runs: dict[str, Run]
    train: LGTMTrain
    sampling: Sampling

    def __post_init__(self) -> None:
        for name, run in self.runs.items():
            if run.variant not in self.variants:
                raise ValueError(f"lgtm.runs.{name}.variant is {run.variant!r}: use one of lgtm.variants "
                                 f"({', '.join(self.variants)})")
        seen: dict[tuple[str, int], str] = {}
        for name, run in self.runs.items():
            other = seen.setdefault((run.variant, run.seed), name)
            if other != name:
                raise ValueError(f"lgtm.runs.{name} repeats lgtm.runs.{other} (variant {run.variant}, seed "
                                 f"{run.seed}): give it another seed")


# ----------------------------------------------------------------------------- evaluation and study


@dataclass(frozen=True)
class EvalRow:
    """One generated row of the evaluation table: a sampler setting (and conditioning) of the model.

    Fields left out keep ``lgtm.sampling``'s value (sampling) or the default named here (None).
    """

    name: str
    sampler: SamplerName
    steps: Annotated[int, Range(1, 1000)]
    multimodality: bool | None = None  # None: no MultiModality for this row
    conditioning: Literal["parts", "whole_body"] | None = None  # None: the six part texts
    guidance_scale: Annotated[float, Range(0, None)] | None = None
    eta: Annotated[float, Range(0, 1)] | None = None
    timestep_spacing: Literal["trailing", "leading"] | None = None

    def as_written(self) -> dict[str, Any]:
        """The row's keys as params.yaml gives them (recorded in the results)."""
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class T2M:
    """Guo et al.'s evaluator files (off while checkpoint is empty)."""

    checkpoint: str
    glove_dir: str
    meta_dir: str


@dataclass(frozen=True)
class CurvePoint:
    """One point of the sampler curve: a sampler and its number of steps."""

    name: str
    sampler: SamplerName
    steps: Annotated[int, Range(1, 1000)]


@dataclass(frozen=True)
class Curve:
    """The sampler curve of evaluate: FID / R-precision vs steps of models.lgtm, in the evaluator space."""

    items: NonNegInt             # test items it draws from (0 = all): a seeded subset, the same for every point
    replications: PosInt
    reference: str               # the point whose FID CI the others are held against (the most steps)
    points: list[CurvePoint]

    def __post_init__(self) -> None:
        names = [p.name for p in self.points]
        if self.points and self.reference not in names:
            raise ValueError(f"evaluate.curve.reference {self.reference!r} is not a point: use one of "
                             f"{', '.join(names)}")


@dataclass(frozen=True)
class Evaluate:
    """Stage evaluate."""

    protocol: Literal["lgtm", "guo"]  # lgtm: caption-level (max_captions, generation_seeds); guo: motion items
    variants: list[str]          # trained variants (lgtm.variants), one row each over all their runs
    sampling: SamplingOverrides  # the variant rows' sampling: lgtm.sampling with these fields replaced
    batch_size: PosInt
    compare: list[list[str]]
    max_captions: NonNegInt
    replications: PosInt
    generation_seeds: PosInt
    diversity_times: PosInt
    mm_texts: NonNegInt
    mm_repeats: PosInt
    mm_times: PosInt
    rows: list[EvalRow]
    curve: Curve
    t2m: T2M


@dataclass(frozen=True)
class SamplingOverrides:
    """Overrides of ``lgtm.sampling`` (unset fields keep its values)."""

    sampler: SamplerName | None = None
    steps: Annotated[int, Range(1, 1000)] | None = None
    eta: Annotated[float, Range(0, 1)] | None = None
    guidance_scale: Annotated[float, Range(0, None)] | None = None
    timestep_spacing: Literal["trailing", "leading"] | None = None

    def over(self, base: Sampling) -> Sampling:
        """``base`` with the fields set here replaced."""
        from dataclasses import replace

        return replace(base, **{k: v for k, v in vars(self).items() if v is not None})


@dataclass(frozen=True)
class StudyGuidance:
    """The prompt study's guided arm."""

    strength: PosFloat  # >= 0
    iterations: PosInt
    sweep: list[float]
    sweep_samples: PosInt


@dataclass(frozen=True)
class PromptStudy:
    """Stage prompt_study."""

    pairs: str
    samples: PosInt
    batch_size: PosInt
    noise_seed: NonNegInt
    sampling: SamplingOverrides
    split: Literal["", "rules", "llm", "none"]
    n_permutations: PosInt
    alpha: Annotated[float, Range(0, 0.5)]
    guidance: StudyGuidance
    tmr_encoder: str
    video_sample: NonNegInt
    embed_video_mb: PosFloat


@dataclass(frozen=True)
class Models:
    """Which models the consumers (evaluate, prompt_study, tools.generate) use, and where they are.

    ``lgtm`` is the one LGTM that generation and the prompt study use; ``runs`` the folder of the LGTM runs the
    evaluation compares (trained: ``paths.lgtm``, one ``<run>/`` per ``lgtm.runs`` entry; official: the released
    model's folder, a single row); ``tmr`` the TMRs that condition LGTM; ``evaluator`` the TMRs that score it
    (trained: ``paths.evaluator``, never used to condition a model; official: the released TMRs, labelled as
    the conditioning space). They are spelled out (not derived from ``source``) because dvc.yaml interpolates
    them into the consumers' deps: DVC then runs train_* (trained) or import_official (official) for them.
    """

    source: Literal["trained", "official"]
    lgtm: str
    runs: str
    tmr: str
    evaluator: str


@dataclass(frozen=True)
class Official:
    """Released weights imported by stages.import_official (docs/official.md)."""

    checkpoint: str
    tmr_dir: str
    tmr_folders: dict[str, str]
    mean: str
    std: str
    tmr_stats: str
    text_model: str
    out: str


@dataclass(frozen=True)
class TokenFeatures:
    """The token features a model source reads: ``embed_texts.encoder`` and ``embed_texts.token_dtype``."""

    encoder: Literal["minilm", "clip", "distilbert"]
    token_dtype: Literal["float16", "float32"]


@dataclass(frozen=True)
class SourceSampling:
    """The sampling setting a model source brings: the official code's DDIM visits "leading" timesteps."""

    timestep_spacing: Literal["trailing", "leading"]


@dataclass(frozen=True)
class SourceLGTM:
    """``lgtm`` keys of a source switch."""

    sampling: SourceSampling


@dataclass(frozen=True)
class SourceSwitch:
    """One entry of params ``sources``: the values ``python -m tools.switch_source NAME`` writes into params.yaml.

    A switch of model source is written into the file (not laid over it at read time like a profile) because
    dvc.yaml interpolates ``models.lgtm``/``models.tmr`` into the consumers' deps, and DVC reads the file as is.
    """

    models: Models
    embed_texts: TokenFeatures
    lgtm: SourceLGTM


SOURCES = ("trained", "official")  # the values of models.source; params ``sources`` has one switch for each
OFFICIAL_TOKENS = {"encoder": "distilbert", "token_dtype": "float32"}  # what the released TMR text encoders read


# ----------------------------------------------------------------------------- the whole file


@dataclass(frozen=True)
class Settings:
    """Everything params.yaml holds, after the profile is applied."""

    profile: str
    profiles: dict[str, Any]
    seed: NonNegInt
    compute: Compute
    captions: Captions
    paths: Paths
    download: Download
    poses: Poses
    features: Features
    split_texts: SplitTexts
    embed_texts: EmbedTexts
    tmr: TMR
    lgtm: LGTM
    evaluate: Evaluate
    prompt_study: PromptStudy
    models: Models
    sources: dict[str, SourceSwitch]
    official: Official

    def __post_init__(self) -> None:
        check_model_folders(self.models, self.paths, self.official, self.lgtm.runs)
        check_evaluation(self.evaluate, self.lgtm)
        check_sources(self.sources, self.models, self.embed_texts)

    def pipeline_lgtm(self) -> str:
        """The trained LGTM of generation, the prompt study and the studio: ``models.lgtm`` with the trained source,
        else the first run of ``lgtm.runs`` under ``paths.lgtm``."""
        if self.models.source == "trained":
            return self.models.lgtm
        return str(Path(self.paths.lgtm) / next(iter(self.lgtm.runs)))


def _same(a: str, b: str) -> bool:
    return Path(a) == Path(b)


def check_model_folders(models: Models, paths: Paths, official: Official, runs: dict[str, Run]) -> None:
    """Catch a half-made switch: trained models are the train stages' outputs (``models.runs`` = ``paths.lgtm``
    and ``models.lgtm`` one of its runs, ``models.tmr`` = ``paths.tmr``, ``models.evaluator`` =
    ``paths.evaluator``); released ones are anything but those folders (normally ``<official.out>/...``)."""
    released = {"lgtm": str(Path(official.out) / "lgtm"), "runs": str(Path(official.out) / "lgtm"),
                "tmr": str(Path(official.out) / "tmr"), "evaluator": str(Path(official.out) / "tmr")}
    trained = {"runs": paths.lgtm, "tmr": paths.tmr, "evaluator": paths.evaluator}
    for key in ("runs", "tmr", "evaluator"):
        value = getattr(models, key)
        if models.source == "trained" and not _same(value, trained[key]):
            raise ValueError(f"models.source is trained but models.{key} is {value}, not paths."
                             f"{'lgtm' if key == 'runs' else key} ({trained[key]}): set models.{key}: {trained[key]}")
        if models.source == "official" and _same(value, trained[key]):
            raise ValueError(f"models.source is official but models.{key} is a trained folder: "
                             f"set models.{key}: {released[key]}")
    lgtm = Path(models.lgtm)
    if models.source == "trained" and not (_same(str(lgtm.parent), paths.lgtm) and lgtm.name in runs):
        raise ValueError(f"models.source is trained but models.lgtm is {models.lgtm}, not a run of lgtm.runs under "
                         f"paths.lgtm: set models.lgtm: {Path(paths.lgtm) / next(iter(runs), 'lgtm')}")
    if models.source == "official" and not _same(models.lgtm, models.runs):
        raise ValueError(f"models.source is official but models.runs is {models.runs}, not models.lgtm: "
                         f"set models.runs: {models.lgtm}")


def check_evaluation(evaluate: Evaluate, lgtm: LGTM) -> None:
    """Every evaluated variant exists and has a run; rows and curve points do not reuse a variant's name."""
    for name in evaluate.variants:
        if name not in lgtm.variants:
            raise ValueError(f"evaluate.variants names {name!r}: use one of lgtm.variants ({', '.join(lgtm.variants)})")
        if not any(run.variant == name for run in lgtm.runs.values()):
            raise ValueError(f"evaluate.variants names {name!r}, which no lgtm.runs entry trains: add a run")
    names = [*evaluate.variants, *(r.name for r in evaluate.rows), "real"]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(f"evaluate row name(s) {', '.join(clash)} used twice (variants, rows and real share "
                         "one table)")


def check_sources(sources: dict[str, SourceSwitch], models: Models, embed_texts: EmbedTexts) -> None:
    """``sources`` has one switch per model source, each naming its own, the official one with the token features
    the released TMRs read; with the official source those are in use (a half-made switch names the command)."""
    if sorted(sources) != sorted(SOURCES):
        raise ValueError(f"sources has {', '.join(sorted(sources)) or 'nothing'}: give exactly {' and '.join(SOURCES)}")
    for name, switch in sources.items():
        if switch.models.source != name:
            raise ValueError(f"sources.{name}.models.source is {switch.models.source}: set it to {name}")
    for key, wanted in OFFICIAL_TOKENS.items():
        if getattr(sources["official"].embed_texts, key) != wanted:
            raise ValueError(f"sources.official.embed_texts.{key} is {getattr(sources['official'].embed_texts, key)}: "
                             f"the released TMRs read {wanted}, set it to {wanted}")
        if models.source == "official" and getattr(embed_texts, key) != wanted:
            raise ValueError(f"models.source is official but embed_texts.{key} is {getattr(embed_texts, key)}, the "
                             f"released TMRs read {wanted}: run python -m tools.switch_source official (or set it)")


def params_file() -> Path:
    """The params file in use: ``$LGTM_PARAMS`` or ``params.yaml`` in the working folder."""
    return Path(os.environ.get("LGTM_PARAMS") or PARAMS_FILE)


def parse_settings(raw: dict[str, Any], file: str | Path = PARAMS_FILE) -> Settings:
    """Settings from an already-read params mapping (profile applied, every key checked)."""
    return build(Settings, apply_profile(raw, file), file)


def declared_params(stage: str, dvc_file: str | Path = DVC_FILE, params: dict[str, Any] | None = None) -> set[str]:
    """The dotted params keys that ``stage`` (``train_tmr@head`` or ``train_tmr``) lists in dvc.yaml.

    In a ``foreach`` instance (``train_tmr@head``) ``${key}`` is the instance's key and ``${item.<field>}``
    its entry's field in the dict the stage loops over (read from ``params``, the raw params file), as DVC
    resolves them."""
    dvc_file = Path(dvc_file)
    stages = (yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}).get("stages", {})
    name, _, key = stage.partition("@")
    if name not in stages:
        raise SettingsError(dvc_file, f"stages.{name}", "no such stage", f"one of: {', '.join(stages)}")
    spec = stages[name].get("do", stages[name])
    keys: set[str] = set()
    for entry in spec.get("params") or []:
        if isinstance(entry, str):
            keys.add(entry)
        else:  # {file: [keys]}: another params file; only params.yaml is read here
            for file, listed in entry.items():
                if Path(file).name == PARAMS_FILE.name:
                    keys.update(listed or [])
    if key:
        item = _foreach_item(stages[name].get("foreach"), key, params)
        keys = {_resolve_item(k, key, item) for k in keys}
    return keys


def _foreach_item(foreach: Any, key: str, params: dict[str, Any] | None) -> Any:
    """The entry ``key`` of a stage's ``foreach`` (``${a.b}`` looked up in ``params``), or None for a list."""
    if not (isinstance(foreach, str) and foreach.startswith("${") and params is not None):
        return None
    node: Any = params
    for part in foreach[2:-1].split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node.get(key) if isinstance(node, dict) else None


def _resolve_item(declared: str, key: str, item: Any) -> str:
    """``declared`` with ``${key}`` and ``${item.<field>}`` replaced as DVC does for a foreach instance."""
    out = declared.replace("${key}", key)
    if isinstance(item, dict):
        for field_name, value in item.items():
            out = out.replace("${item." + field_name + "}", str(value))
    return out


def load_settings(stage: str | None = None, path: str | Path | None = None) -> Settings:
    """Read and check the params file; with ``stage``, the view limited to that stage's declared params."""
    path = Path(path) if path else params_file()
    raw = read_yaml(path)
    settings = parse_settings(raw, path)
    if stage is None:
        return settings
    check_outputs(settings, path.resolve().parent)
    return stage_view(settings, declared_params(stage, dvc_file_for(path), raw), stage)


def settings_or_exit(stage: str, view: bool = True) -> Settings:
    """:func:`load_settings` for a stage's main: a bad params file ends the process with its one-line message.

    ``view=False`` for commands outside dvc.yaml (they see every setting).
    """
    from motion.core.errors import DataError

    try:
        return load_settings(stage if view else None)
    except DataError as error:
        raise SystemExit(f"{stage.split('@')[0]}: {error}") from None


def check_outputs(settings: Settings, root: Path) -> None:
    """Refuse output locations that would lose data (outside the workspace, overlapping the cache, another
    output or git-tracked files) before any stage touches the disk (``motion.core.workspace``)."""
    from motion.core.workspace import check_output_paths

    paths = to_dict(settings.paths)
    persistent = {"download.amass_remote.download_dir": settings.download.amass_remote.download_dir,
                  "download.assets.cache_dir": settings.download.assets.cache_dir}
    check_output_paths(paths, paths["cache"], root, persistent=persistent, in_place=("metrics",))


def dvc_file_for(params: Path) -> Path:
    """The dvc.yaml that declares the stages: beside the params file, in the working folder, or this project's."""
    for candidate in (params.parent / DVC_FILE, DVC_FILE, Path(__file__).resolve().parents[1] / DVC_FILE):
        if candidate.is_file():
            return candidate
    raise SettingsError(DVC_FILE, "", "file not found", "run from the project root")
