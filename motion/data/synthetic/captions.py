"""Caption phrasing for synthetic motions: HumanML3D caption lines with word/POS tokens, part texts.

Verb phrases come from the action catalogue; ``{walk}`` marks a verb to conjugate (third person,
gerund, or ``{walk:base}``), ``{reps}``, ``{reps_n}``, ``{adv}`` and ``{angle}`` are filled from the
action's parameters. Tokens follow HumanML3D: ``lemma/UPOS`` per word, punctuation dropped, from a
small closed lexicon (an unknown word is an error, so every caption is fully tagged).
"""
from __future__ import annotations

import re

import numpy as np

from motion.data.captions import Caption, complete_part_annotation
from motion.data.synthetic.actions import ACTIONS, Action
from motion.data.synthetic.track import Segment

_DOUBLED = {"run", "jog", "nod", "clap", "step", "squat", "put", "hop", "jab", "swing"}  # final consonant doubles


def conjugate(verb: str, form: str) -> str:
    """``verb`` in ``form``: 'base', '3sg' (walks, touches) or 'ger' (walking, waving, running)."""
    if form == "base":
        return verb
    if form == "3sg":
        return verb + "es" if verb.endswith(("ch", "sh", "s", "x")) else verb + "s"
    if verb in _DOUBLED and verb != "swing":
        return verb + verb[-1] + "ing"
    if verb.endswith("e") and not verb.endswith("ee"):
        return verb[:-1] + "ing"
    return verb + "ing"


def _words(pos: str, text: str) -> dict[str, tuple[str, str]]:
    return {w: (w, pos) for w in text.split()}


# Closed lexicon of every non-verb word the templates use: surface -> (lemma, UPOS).
LEXICON: dict[str, tuple[str, str]] = {
    **_words("DET", "a the both"),
    **_words("PRON", "someone he she that them"),
    **_words("NOUN", "person man woman human leg foot arm hand head shoulder side chest torso fist waist line "
                     "sky floor air place direction way time front body step elbow knee hip thigh forearm neck spine "
                     "pelvis ankle height turn"),
    **{plural: (plural[:-1], "NOUN") for plural in "legs arms hands circles steps knees times degrees elbows hips "
                                                  "thighs forearms ankles shoulders".split()},
    **_words("ADJ", "left right opposite other same upper big few straight bent"),
    **_words("ADV", "forward backward backwards back up down around sideways ahead out over together slowly quickly "
                    "once twice first then high about slightly fully sharply inward"),
    **_words("ADP", "with to at in on of above across from by after"),
    **_words("SCONJ", "while"),
    **_words("CCONJ", "and"),
    **_words("AUX", "is"),
    **_words("INTJ", "hello yes no"),
    **_words("NUM", "two three four five 15 20 25 30 40 45 50 55 60 65 75 90"),
    "raised": ("raise", "VERB"),  # participle ("with the upper arm raised")
}
_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
_REPS = {1: "once", 2: "twice"}
_FIELD = re.compile(r"\{(\w+)(?::(\w+))?\}")


def _fill(template: str, form: str, params: dict, slots: dict | None = None) -> list[tuple[str, str, str]]:
    """Words of a template as (surface, lemma, UPOS): fields filled, verbs conjugated.

    Punctuation stays attached to the preceding word's surface form and gets no token.
    """
    words: list[tuple[str, str, str]] = []
    for piece in re.split(r"(\{\w+(?::\w+)?\})", template):
        match = _FIELD.fullmatch(piece)
        if match is None:
            for raw in piece.split():
                surface = raw.strip(",.")
                if not surface:  # bare punctuation after a field
                    words[-1] = (words[-1][0] + raw, *words[-1][1:])
                    continue
                if surface not in LEXICON:
                    raise ValueError(f"word {surface!r} of caption template {template!r} is not in the POS lexicon")
                words.append((raw, *LEXICON[surface]))
            continue
        name, spec = match.group(1), match.group(2)
        if slots is not None and name in slots:
            words += slots[name]
            continue
        if name == "reps":
            n = params["reps"]
            text = _REPS.get(n, f"{_NUMBER_WORDS[n]} times")
        elif name == "reps_n":
            text = _NUMBER_WORDS[params["reps"]]
        elif name == "adv":
            speed = params.get("speed", 1.0)
            text = "slowly" if speed < 0.88 else "quickly" if speed > 1.15 else ""
        elif name == "angle":
            text = f"by about {params['angle']} degrees"
        else:
            words.append((conjugate(name, spec or form), name, "VERB"))
            continue
        words += _fill(text, form, params)
    return words


def phrase(segment: Segment, variant: int, form: str) -> list[tuple[str, str, str]]:
    """One verb phrase describing ``segment`` (variant index modulo the action's phrasings, both styles)."""
    phrases = ACTIONS[segment.action].all_phrases
    return _fill(phrases[variant % len(phrases)], form, segment.params)


_SUBJECTS = {"male": ("a man", "a person", "someone", "the man"),
             "female": ("a woman", "a person", "someone", "the woman"),
             "neutral": ("a person", "someone", "the person", "a human")}
_PRONOUNS = {"male": "he", "female": "she", "neutral": "the person"}
_TEMPLATES = {  # S subject, P pronoun, A/B phrases (3rd person), A_ger/B_ger gerunds, A_base infinitive
    "single": ("{S} {A}.", "{S} is {A_ger}.", "{S} {start} to {A_base}."),
    "single_standing": ("{S} {A}.", "{S} is {A_ger}.", "{S} {stand} and {A}.", "{S} {A} while {stand:ger} in place."),
    "simultaneous": ("{S} {A} while {B_ger}.", "{S} {A} and {B} at the same time.", "while {A_ger}, {S} {B}.",
                     "{S} is {A_ger} and {B_ger} at the same time."),
    "sequential": ("{S} first {A}, then {B}.", "{S} {A} and then {B}.", "{S} {A}. after that, {P} {B}.",
                   "after {A_ger}, {S} {B}."),
}


def balanced_order(action: Action, rng: np.random.Generator) -> np.ndarray:
    """Indices into ``action.all_phrases`` alternating the styles (end effector / joint rotation), each style in a
    random order and a random style first, so a motion's captions use both and the dataset uses each equally."""
    own = rng.permutation(len(action.phrases))
    joint = len(action.phrases) + rng.permutation(len(action.joint_phrases))
    first, second = (own, joint) if rng.integers(2) == 0 else (joint, own)
    return np.array([i for pair in zip(first, second) for i in pair], dtype=np.int64)


def caption_from_words(words: list[tuple[str, str, str]]) -> Caption:
    """A HumanML3D caption (whole clip: start = end = 0) from (surface, lemma, UPOS) words."""
    text = " ".join(w for w, _, _ in words)
    tokens = " ".join(f"{lemma.lower()}/{pos}" for _, lemma, pos in words)
    return Caption(text, tokens, 0.0, 0.0)


def make_captions(ordered: list[Segment], composition: str, gender: str, rng: np.random.Generator,
                  count: int = 3) -> list[Caption]:
    """``count`` differently worded captions of a motion whose segments are in caption order."""
    kind = composition
    if composition == "single" and not set(ACTIONS[ordered[0].action].parts) & {"left_leg", "right_leg"}:
        kind = "single_standing"
    templates = _TEMPLATES[kind]
    subjects = _SUBJECTS[gender]
    # The first captions walk through different templates and phrasings; later tries are random.
    template_order = rng.permutation(len(templates))
    variant_orders = [balanced_order(ACTIONS[seg.action], rng) for seg in ordered]
    seen: set[str] = set()
    captions: list[Caption] = []
    for attempt in range(100):
        cycled = attempt < len(templates)
        template = templates[template_order[attempt] if cycled else int(rng.integers(len(templates)))]
        slots = {"S": _fill(subjects[int(rng.integers(len(subjects)))], "3sg", {}),
                 "P": _fill(_PRONOUNS[gender], "3sg", {})}
        for name, seg, order in zip("AB", ordered, variant_orders):
            variant = int(order[attempt % len(order)] if cycled else rng.integers(len(order)))
            slots[name] = phrase(seg, variant, "3sg")
            slots[f"{name}_ger"] = phrase(seg, variant, "ger")
            slots[f"{name}_base"] = phrase(seg, variant, "base")
        caption = caption_from_words(_fill(template, "3sg", {}, slots))
        if caption.text not in seen:
            seen.add(caption.text)
            captions.append(caption)
        if len(captions) == count:
            return captions
    raise RuntimeError(f"could not phrase {count} distinct captions for {[s.action for s in ordered]}")


def part_annotation(segments: list[Segment]) -> dict[str, dict[str, str]]:
    """Ground-truth part texts (LGTM's schema): each driven part's action and text, idle elsewhere."""
    annotation: dict[str, dict[str, str]] = {}
    for seg in segments:
        action = ACTIONS[seg.action]
        for part in action.parts:
            annotation[part] = {"action": action.verb, "text": action.part_texts[part]}
    return complete_part_annotation(annotation)
