"""Offline rule-based splitter: a caption -> six body-part texts, without any language model.

A caption is cut into clauses at temporal words ("then", "while", "after", ...), commas and
"and" before a new verb. Each clause's parts come from the body parts it names as movers
("raises his right arm"; a part after "to/on/above/at ..." is a target, not a mover) and from its
verbs, which imply parts ("walk" -> legs and torso, since LGTM keeps the root trajectory in the
torso; "wave" -> arms; "dance" -> everything). Left/right words pick one limb. A part's text is
the clause that moves it (subject stripped, verb in the third person), clauses joined by their
temporal word; untouched parts are idle.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from motion.core.parts import PART_NAMES
from motion.data.captions import IDLE
from motion.text.schema import PartAnnotation

ARMS = ("left_arm", "right_arm")
LEGS = ("left_leg", "right_leg")
HEAD = ("head",)
TORSO = ("torso",)
LOCOMOTION = LEGS + TORSO
ALL = PART_NAMES
FALLBACK_PARTS = PART_NAMES  # parts given the whole caption when nothing in it is recognised

# Body-part nouns -> the part they move (left/right chosen by a side word when the part is a limb).
BODY_NOUNS: dict[str, tuple[str, ...]] = {
    **{w: ARMS for w in ("hand", "hands", "arm", "arms", "elbow", "elbows", "wrist", "wrists", "shoulder",
                         "shoulders", "finger", "fingers", "fist", "fists", "palm", "palms", "forearm",
                         "forearms", "thumb", "thumbs", "biceps", "bicep", "hand's", "hands'", "limb", "limbs")},
    **{w: LEGS for w in ("foot", "feet", "leg", "legs", "knee", "knees", "ankle", "ankles", "toe", "toes",
                         "heel", "heels", "thigh", "thighs", "shin", "shins", "calf", "calves", "tiptoes", "tiptoe")},
    **{w: HEAD for w in ("head", "neck", "face", "chin", "eyes", "nose", "mouth", "ear", "ears", "gaze")},
    **{w: TORSO for w in ("torso", "waist", "hip", "hips", "chest", "trunk", "spine", "belly", "stomach",
                          "abdomen", "pelvis", "butt", "buttocks", "core", "body", "abs", "backside")},
}
SINGULAR_LIMBS = {"hand", "arm", "elbow", "wrist", "shoulder", "finger", "fist", "palm", "forearm", "thumb",
                  "foot", "leg", "knee", "ankle", "toe", "heel", "thigh", "shin", "calf", "bicep", "limb"}
# "back" is a body part only after a possessive or adjective ("his back", "lower back"); else a direction.
BACK_OWNERS = {"his", "her", "their", "its", "the", "lower", "upper", "small", "own", "one's"}

# Gait verbs: the legs carry the body, and the root's trajectory lives in LGTM's torso part. With
# ``gait_torso=False`` they move the legs only, as in LGTM's few-shot example ("walking" -> legs).
GAIT_WORDS = """walk run jog sprint march stroll stride step hop skip jump leap limp sneak tiptoe shuffle skate trot
        gallop pace wander sidestep strafe move go come approach retreat advance backpedal travel proceed hurdle
        bounce zigzag circle return hike scoot trudge prance dash rush hurry tread enter exit leave veer cross
        creep ride"""
GAIT_VERBS = frozenset(GAIT_WORDS.split())

# Verb lemma -> parts it moves when the clause names no body part for it (each verb in one class).
_VERB_CLASSES: tuple[tuple[tuple[str, ...], str], ...] = (
    (LOCOMOTION, GAIT_WORDS),
    (LOCOMOTION, """turn pivot spin squat crouch kneel sit rise get lie lay fall stoop duck dodge land slide
        stumble trip stagger waddle mount descend ascend stop wobble reverse straddle shift balance lower bob pose
        dive plop sink collapse recover lunge"""),
    (ARMS + LEGS + TORSO, """dance exercise workout fight wrestle spar climb crawl swim cartwheel flip somersault
        roll ski skateboard surf celebrate imitate mimic practice train warm cheer twirl box kickbox
        shadowbox tumble burpee yoga jig jumpingjacks"""),
    (ARMS + TORSO, "stretch"),
    (TORSO + LEGS, "react"),
    (TORSO + HEAD, "bow hide cower flinch vomit hiccup"),
    (TORSO, "lean bend twist arch hunch tilt slouch curl sway wiggle thrust gyrate swivel tip slump rotate jerk"),
    (LEGS, "kick stomp stamp trample roundhouse pedal"),
    (HEAD, """nod look glance gaze stare watch smell talk speak shout sing laugh peek peer sniff yawn sneeze cough
        listen observe scan search"""),
    (ARMS, """wave clap throw toss catch pick grab grasp reach lift raise push pull punch jab hold carry drink eat
        point swing flap stir wipe wash scratch rub pat touch type write draw paint hug salute applaud juggle row
        paddle spread extend knock pour conduct dribble shoot swat fold hit strike slap gesture beckon signal give
        hand take put place set drop brush comb open close shake use sweep dig chop saw hammer clean dust cover
        block collect check answer call feed fish cast aim bat serve scoop shovel drag press tug yank squeeze
        pinch grip clutch rest hang shrug smash pass pitch bowl fling hurl lob chuck snap flick flail wag
        shoo hail fan mix knit sew cut slice stab poke tickle steady support adjust fix operate wield wring
        massage shield protect guard defend bring remove release let offer show display receive accept send
        play strum drum bang pound tap launch flex cradle rock smoke button zip tie scrub mop vacuum
        rake stack load unload spray dial clasp wind crank transfer swap retrieve stroke separate apply plug
        blow uppercut shove sort gather arrange tidy unscrew screw bump tpose"""),
)
VERB_PARTS: dict[str, tuple[str, ...]] = {v: parts for parts, words in _VERB_CLASSES for v in words.split()}
# Verbs whose parts are their object when they have one ("raises his right arm" moves the right arm only).
OBJECT_VERBS = {"raise", "lift", "lower", "move", "shake", "rotate", "circle", "swing", "cross", "bend", "stretch",
                "extend", "flex", "tilt", "turn", "twist", "shift", "put", "place", "wiggle", "roll", "spread",
                "open", "close", "hold", "bring", "curl", "straighten", "tap", "drop", "keep", "use", "sway",
                "flap", "wag", "swivel", "pump", "jerk", "bob", "point", "stick", "throw", "kick", "stomp",
                "stamp", "clap", "fold", "arch", "hunch", "tuck", "reach", "rock"}
# Verbs whose object is touched rather than moved ("touches his knee" moves an arm, not the knee).
TARGET_VERBS = {"touch", "scratch", "rub", "pat", "wipe", "slap", "hit", "cover", "brush", "massage", "clean",
                "wash", "grab", "clutch", "grasp", "hug", "shield", "protect", "hold", "tap", "poke", "tickle",
                "punch", "kick", "strike", "squeeze", "pinch", "dust", "reach", "scrub", "feel", "grip"}
# A body part after one of these (skipping determiners) is a place, not a mover ("hands above his head").
TARGET_PREPS = {"to", "on", "onto", "above", "over", "behind", "at", "towards", "toward", "near", "around",
                "across", "against", "into", "under", "below", "beneath", "beside", "between", "by", "past",
                "along", "of", "off", "upon", "from", "in", "through", "underneath", "atop", "before"}
DETERMINERS = {"his", "her", "their", "its", "the", "a", "an", "one", "each", "other", "own", "both", "one's",
               "opposite", "upper", "lower", "left", "right", "two", "either", "this", "that", "same", "my",
               "your", "whole", "entire", "full", "of", "top", "side", "front", "and", "or", "small"}
LIGHT_VERBS = {"do", "perform", "make", "execute", "take", "give", "attempt", "complete", "have"}
# Verbs in the passive ("gets pushed") describe a reaction of the whole body's support, not an action.
PASSIVE_MARKERS = {"gets", "get", "got", "getting", "is", "was", "being", "beeing", "been", "are", "were"}
# Arm verbs that always take both hands ("claps" after "waves the right hand" still uses both).
BIMANUAL = {"clap", "applaud", "hug", "juggle", "row", "paddle", "fold", "cross", "spread", "shrug", "flap",
            "wring", "cradle", "rub", "stretch", "catch", "carry", "push", "pull", "lift"}
STATIC_VERBS = {"stand", "wait", "remain", "stay", "pause", "idle", "rest", "stop", "freeze"}

# Words that join clauses, by the temporal relation they express.
SEQUENTIAL = {"then", "afterwards", "afterward", "after", "before", "finally", "next", "later", "until",
              "thereafter", "eventually", "lastly", "subsequently", "again"}
SIMULTANEOUS = {"while", "whilst", "as", "when", "during", "meanwhile", "simultaneously", "whereas"}
SUBJECT_WORDS = {"a", "an", "the", "this", "that", "one", "person", "man", "woman", "human", "figure", "guy",
                 "individual", "character", "someone", "somebody", "subject", "people", "he", "she", "they",
                 "lady", "boy", "girl", "child", "kid", "actor", "it", "body", "stick", "avatar", "player",
                 "model", "dancer", "athlete", "men", "women", "persons", "gentleman", "male", "female",
                 "and", "then", "also", "now", "first", "firstly", "initially", "again", "who", "slowly_"}
AUXILIARIES = {"is", "are", "was", "were", "be", "been", "being", "has", "have", "had",
               "will", "would", "can", "could", "seems", "seem", "appears", "appear", "begins", "begin",
               "starts", "start", "started", "began", "proceeds", "proceed", "continues", "continue", "tries",
               "try", "keeps", "keep", "to", "then", "and", "gets"}
IRREGULAR = {"ran": "run", "sat": "sit", "stood": "stand", "threw": "throw", "thrown": "throw", "caught": "catch",
             "took": "take", "taken": "take", "went": "go", "gone": "go", "came": "come", "fell": "fall",
             "fallen": "fall", "lying": "lie", "lay": "lie", "laid": "lay", "held": "hold", "swung": "swing",
             "knelt": "kneel", "got": "get", "bent": "bend", "put": "put", "hit": "hit", "leapt": "leap",
             "rose": "rise", "risen": "rise", "spun": "spin", "struck": "strike", "drew": "draw", "drawn": "draw",
             "ate": "eat", "drank": "drink", "shook": "shake", "shaken": "shake", "swam": "swim", "wrote": "write",
             "dug": "dig", "brought": "bring", "set": "set", "cut": "cut", "let": "let", "stuck": "stick",
             "slid": "slide", "gave": "give", "given": "give", "saw": "saw", "did": "do", "does": "do",
             "goes": "go", "dove": "dive", "crept": "creep", "strode": "stride", "flung": "fling",
             "fought": "fight", "swept": "sweep", "kept": "keep", "left": "leave"}
# Direction phrases after which "left"/"right" is a direction, not a limb ("turns to the left").
DIRECTION_LEAD = {"to", "towards", "toward", "the", "turns", "turn", "turning", "turned", "facing", "face",
                  "faces", "its", "on", "from", "far", "slightly", "rotates", "rotating", "spins", "pivots",
                  "veers", "looks", "looking", "glances", "his", "her", "their", "leans", "leaning", "moves",
                  "moving", "steps", "stepping", "walks", "walking", "runs", "running", "jumps", "jumping",
                  "hops", "shuffles", "shifts", "goes", "sidesteps", "bends", "tilts", "twists", "sways"}


def _lemma(word: str) -> str:
    """A verb's base form by small suffix rules and a list of irregular forms (``running`` -> ``run``)."""
    if word in IRREGULAR:
        return IRREGULAR[word]
    if word in VERB_PARTS:
        return word
    candidates: list[str] = []
    if word.endswith("ing") and len(word) > 4:
        stem = word[:-3]
        candidates += [stem, stem + "e"]
        if len(stem) > 2 and stem[-1] == stem[-2]:
            candidates.append(stem[:-1])
        if stem.endswith("y"):
            candidates.append(stem[:-1] + "ie")
    elif word.endswith("ied") and len(word) > 4:
        candidates.append(word[:-3] + "y")
    elif word.endswith("ed") and len(word) > 3:
        stem = word[:-2]
        candidates += [stem, stem + "e", word[:-1]]
        if len(stem) > 2 and stem[-1] == stem[-2]:
            candidates.append(stem[:-1])
    elif word.endswith("ies") and len(word) > 4:
        candidates.append(word[:-3] + "y")
    elif word.endswith("es") and len(word) > 3:
        candidates += [word[:-2], word[:-1]]
    elif word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        candidates.append(word[:-1])
    for c in candidates:
        if c in VERB_PARTS or c in STATIC_VERBS or c in LIGHT_VERBS:
            return c
    return word


def third_person(lemma: str) -> str:
    """Present tense, third person singular of a verb lemma (``walk`` -> ``walks``)."""
    if lemma in ("go", "do"):
        return lemma + "es"
    if lemma.endswith(("s", "sh", "ch", "x", "z")):
        return lemma + "es"
    if lemma.endswith("y") and len(lemma) > 1 and lemma[-2] not in "aeiou":
        return lemma[:-1] + "ies"
    return lemma + "s"


def _is_verb(word: str) -> bool:
    """Whether a word is a form of a known motion verb (nouns such as ``hand`` are excluded)."""
    if word in BODY_NOUNS or word in ("left", "right", "back", "forward", "forwards", "up", "down"):
        return False
    lemma = _lemma(word)
    return lemma in VERB_PARTS or lemma in STATIC_VERBS


# Multi-word connectives, rewritten to one temporal word before clause splitting.
PHRASES = {"in the end": "finally", "at the end": "finally", "at last": "finally", "after that": "then",
           "after which": "then", "followed by": "then", "at the same time": "simultaneously",
           "in the meantime": "meanwhile", "and then": ", then", "right after": "then", "as well as": "and",
           "in order to": "to", "a couple of": "two", "a few": "few", "t pose": "tpose", "t-pose": "tpose",
           "jumping jacks": "jumpingjacks", "jumping jack": "jumpingjacks", "star jumps": "jumpingjacks",
           "peron": "person", "hand side": "side", "preson": "person", "persn": "person", "perosn": "person"}


# Tokens made by PHRASES, written back as words in part texts.
DISPLAY = {"jumpingjacks": "jumping jacks", "tpose": "t-pose"}


def tokenize(caption: str) -> list[str]:
    """Lower-case word tokens; commas, semicolons and full stops are kept as clause marks."""
    text = " " + caption.lower().replace("’", "'") + " "
    for phrase, word in PHRASES.items():
        text = re.sub(rf"(?<![a-z]){re.escape(phrase)}(?![a-z])", word, text)
    # a posture word describing the subject is not an action ("the standing person kicks")
    text = re.sub(r"\b(?:standing|sitting|seated|kneeling|crouching|young|old|tall|short) "
                  r"(person|man|woman|figure|human|guy|individual|subject|character)\b", r"\1", text)
    text = re.sub(r"\bit's\b", "its", text)
    text = re.sub(r"'s\b", "", text)
    text = re.sub(r"[^a-z0-9,;.'\s-]", " ", text)
    text = re.sub(r"([,;.])", r" \1 ", text)
    text = text.replace("-", " ")
    return text.split()


@dataclass
class Clause:
    """A stretch of a caption with one temporal relation to the clause before it."""

    words: list[str]
    relation: str = "and"  # "then" | "while" | "and": how it follows the previous clause
    unsided: set[str] = field(default_factory=set)  # limbs ("arm", "leg") given both sides only by a verb's default
    static: bool = False  # the clause only says the body stays still ("stands still")


def _starts_verb_phrase(words: list[str], i: int) -> bool:
    """Whether the words from ``i`` open a new predicate (a subject, an auxiliary or a motion verb)."""
    j = i
    while j < len(words) and words[j] in ("then", "also", "slowly", "quickly", "again", "finally", "he", "she",
                                          "they", "it", "the", "a", "person", "man", "woman", "is", "are",
                                          "was", "begins", "starts", "proceeds", "to", "continues"):
        j += 1
    return j < len(words) and _is_verb(words[j]) and words[j] not in ("left", "right")


def _bare_verb(words: list[str]) -> bool:
    """Whether a clause so far is a lone verb that shares the next verb's object ("raises and lowers his leg")."""
    content = [w for w in words if w not in SUBJECT_WORDS and w not in AUXILIARIES]
    if len(content) != 1 or not _is_verb(content[0]):
        return False
    lemma = _lemma(content[0])
    return lemma in OBJECT_VERBS or VERB_PARTS.get(lemma) == ARMS


def split_clauses(words: list[str]) -> list[Clause]:
    """Cut a tokenised caption into clauses at temporal words, clause marks and 'and' + new verb."""
    clauses: list[Clause] = []
    current: list[str] = []
    relation = "and"

    def close(next_relation: str) -> None:
        nonlocal current, relation
        if any(w not in SUBJECT_WORDS and w not in AUXILIARIES for w in current):
            clauses.append(Clause(current, relation))
            relation = next_relation
        elif next_relation != "and":
            relation = next_relation
        current = []

    i = 0
    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in (",", ";", "."):
            close("then" if nxt in SEQUENTIAL else "while" if nxt in SIMULTANEOUS else "and")
        elif w in SEQUENTIAL and (w not in ("after", "before", "until", "again") or _starts_verb_phrase(words, i + 1)
                                  or nxt in ("that", "which", "this", "a", "the", "he", "she", "they")):
            if w == "after" and nxt == "that":
                i += 1
            close("then")
        elif w in SIMULTANEOUS and (w != "as" or _starts_verb_phrase(words, i + 1) or nxt in ("he", "she", "they")):
            close("while")
        elif w in ("and", "but", "or", "so", "plus") and _starts_verb_phrase(words, i + 1) and not _bare_verb(current):
            close("then" if nxt == "then" else "and")
        elif (w.endswith("ing") and _is_verb(w) and current and any(_is_verb(c) for c in current)
              and current[-1] not in AUXILIARIES and current[-1] not in DETERMINERS
              and not current[-1].endswith("ing") and current[-1] not in ("while", "when", "by", "without")
              and _lemma(current[-1]) not in STATIC_VERBS | {"keep", "stop", "finish", "go", "start", "begin"}):
            close("while")
            current.append(w)
        else:
            current.append(w)
        i += 1
    close("and")
    return clauses


def _strip_subject(words: list[str]) -> list[str]:
    """Drop the leading subject, auxiliaries and fillers ("a person is then ...")."""
    i = 0
    while i < len(words) and (words[i] in SUBJECT_WORDS or words[i] in AUXILIARIES):
        i += 1
    return words[i:] if i < len(words) else words


def _side_of(words: list[str], i: int) -> set[str] | None:
    """The side(s) named just before the noun at ``i`` ("left", "right", "both", "left and right")."""
    sides: set[str] = set()
    j = i - 1
    while j >= 0 and words[j] in DETERMINERS | {"and", "or"} and i - j <= 5:
        if words[j] in ("left", "right"):
            sides.add(words[j])
        elif words[j] in ("both", "two", "each"):
            sides.update(("left", "right"))
        j -= 1
    return sides or None


def _is_target(words: list[str], i: int, verbs: list[tuple[int, str]], part: tuple[str, ...]) -> bool:
    """Whether the body part at ``i`` is a place or object touched, not the part that moves."""
    j = i - 1
    while j >= 0 and words[j] in DETERMINERS and words[j] not in ("of",):
        j -= 1
    if j >= 0 and words[j] in TARGET_PREPS:
        if words[j] in ("on", "onto", "upon") and part == LEGS:  # "stands on his left leg": support leg
            return False
        if words[j] in ("in", "into") and part == ARMS:  # "holds a cup in his left hand"
            return False
        return True
    if j >= 0 and _is_verb(words[j]) and _lemma(words[j]) in TARGET_VERBS:
        if not set(part) <= set(VERB_PARTS.get(_lemma(words[j]), ())):
            return True  # "touches his knee": the knee is touched
        # "touches the right shoulder with the left hand": the shoulder is touched, the left hand moves
        return any(words[k] == "with" and any(w in BODY_NOUNS for w in words[k + 1:k + 5])
                   for k in range(i + 1, len(words)))
    return False


def clause_parts(clause: Clause, gait_torso: bool = True) -> tuple[set[str], str]:
    """The parts a clause moves and its action verb (lemma); empty when nothing is recognised."""
    words = _strip_subject(clause.words)
    verbs = _verbs(words)
    if verbs and _is_passive(clause.words, words[verbs[0][0]]):
        verbs = [(verbs[0][0], "react")] + verbs[1:]  # "gets pushed": the body reacts
    movers: set[str] = set()
    limb_sides: dict[tuple[str, ...], set[str]] = {}
    for i, w in enumerate(words):
        part = BODY_NOUNS.get(w)
        if w == "back" and i > 0 and words[i - 1] in BACK_OWNERS and not (i + 1 < len(words) and words[i + 1] in
                                                                           ("and", "forth", "to", "into")):
            part = TORSO
        if w == "body" and i > 0 and words[i - 1] in ("whole", "entire", "full"):
            part = ALL
        elif w == "body" and i > 0 and words[i - 1] == "lower":
            part = LOCOMOTION
        if part is None or _is_target(words, i, verbs, part):
            continue
        if part in (ARMS, LEGS):
            sides = _side_of(words, i)
            if sides is None and w in SINGULAR_LIMBS:
                sides = {"left", "right"}
            sides = sides or {"left", "right"}
            limb_sides.setdefault(part, set()).update(sides)
            movers.update(f"{s}_{part[0].split('_')[1]}" for s in sides)
        else:
            movers.update(part)

    verb_parts: set[str] = set()
    main = verbs[0][1] if verbs else ""
    for i, lemma in verbs:
        implied = VERB_PARTS.get(lemma, ())
        if lemma == "stand" and words[i + 1:i + 2] in (["up"], ["back"]):
            implied = LOCOMOTION  # standing up is a motion; standing (still) is not
        if lemma in GAIT_VERBS and not gait_torso:
            implied = LEGS
        if implied in (LOCOMOTION, LEGS, TORSO) and _has_object(words, i):
            implied = ARMS  # "moves the chair", "turns the handle": the hands do it
        verb_parts.update(implied)
    first_mover = min((i for i, w in enumerate(words) if w in BODY_NOUNS), default=len(words))
    if movers and verbs and (main in OBJECT_VERBS or main in STATIC_VERBS or _object_is_body(words, verbs[0][0])
                             or first_mover < verbs[0][0]):
        verb_parts = set()  # the named parts are the movers ("raises his arm", "right hand goes up")
    clause.unsided = set()
    for limb in (ARMS, LEGS):
        kind = limb[0].split("_")[1]
        if limb in limb_sides:
            verb_parts -= set(limb)
        elif verb_parts & set(limb) == set(limb):
            side = _bare_side(words) if len(verbs) == 1 else None
            if side and VERB_PARTS.get(main) in (ARMS, LEGS) and VERB_PARTS[main] == limb:
                verb_parts -= {f"{'right' if side == 'left' else 'left'}_{kind}"}
            elif VERB_PARTS.get(main) == limb and main not in BIMANUAL:
                clause.unsided.add(kind)
    parts = movers | verb_parts
    clause.static = bool(verbs) and not parts and all(v in STATIC_VERBS for _, v in verbs)
    action = main or (words[0] if words else "move")
    return parts, action


# Words after a verb that are not its object: directions, adverbs, prepositions, particles.
NOT_OBJECT = {"forward", "forwards", "backward", "backwards", "back", "left", "right", "around", "round", "up",
              "down", "away", "sideways", "aside", "in", "out", "to", "towards", "toward", "into", "onto", "on",
              "off", "over", "under", "through", "across", "along", "quickly", "slowly", "fast", "briskly",
              "clockwise", "counterclockwise", "anticlockwise", "straight", "diagonally", "again", "then", "and",
              "while", "with", "from", "at", "by", "still", "himself", "herself", "themselves", "itself", "once",
              "twice", "several", "few", "times", "steps", "step", "distance", "way", "direction", "side",
              "sides", "place", "slightly", "about", "the", "a", "an", "some", "of", "upward", "upwards",
              "downward", "downwards", "front", "behind", "circle", "circles", "half", "full", "both", "one",
              "two", "three", "four", "five", "six", "his", "her", "their", "its", "like", "as", "if", "for",
              "normally", "carefully", "gently", "high", "low", "far", "further", "more", "less", "other",
              "degrees", "90", "180", "360", "body", "position", "line", "path", "room", "floor", "ground",
              "stairs", "ladder", "slope", "hill", "tpose", "pose", "stance", "legs", "knees", "feet",
              "whole", "entire", "upright", "during", "until", "before", "after",
              "quarter", "lap", "laps", "motion", "movement", "manner", "pace", "speed", "fashion", "zigzag",
              "jump", "run", "walk", "forth", "outward", "inward", "east", "west", "north", "south", "there"}


ARTICLES = {"the", "a", "an", "his", "her", "their", "its", "this", "that", "my", "your", "some", "another"}


def _verbs(words: list[str]) -> list[tuple[int, str]]:
    """Positions and lemmas of motion verbs (a word after a determiner or preposition is a noun).

    Light verbs ("does a kick", "takes a step") hand over to the verb named by their object.
    """
    nouny = (TARGET_PREPS - {"to"}) | ARTICLES

    def nominal(i: int) -> bool:
        if i > 0 and words[i - 1] in nouny:
            return True
        return i > 1 and words[i - 2] in ARTICLES and not _is_verb(words[i - 1]) and words[i - 1] not in ("and", "or")

    found = [(i, _lemma(w)) for i, w in enumerate(words) if _is_verb(w) and not nominal(i)]
    light = [i for i, w in enumerate(words) if _lemma(w) in LIGHT_VERBS or w in ("doing", "does", "did", "making",
                                                                                 "performs", "performing", "takes")]
    if light:
        nouns = [(i, _lemma(w)) for i, w in enumerate(words) if i > light[0] and _is_verb(w) and nominal(i)]
        found = sorted(set(found + nouns[:1]))
        if any(i > light[0] for i, _ in found):  # "takes two steps": the step is the action, not the taking
            found = [(i, v) for i, v in found if i != light[0]]
    return found


def _is_passive(clause_words: list[str], verb: str) -> bool:
    """Whether the verb form appears in the passive ("gets pushed", "is hit") in the clause."""
    for i, w in enumerate(clause_words[1:], 1):
        if w == verb and clause_words[i - 1] in PASSIVE_MARKERS and (w.endswith("ed") or w in IRREGULAR):
            return _lemma(w) not in STATIC_VERBS
    return False


def _has_object(words: list[str], i: int) -> bool:
    """Whether the verb at ``i`` takes a non-body object ("moves the chair") rather than a direction."""
    j = i + 1
    while j < len(words) and words[j] in ("the", "a", "an", "some", "his", "her", "their", "its", "this", "that"):
        j += 1
    if j == i + 1 or j >= len(words):  # no determiner: only explicit nouns count as objects
        return j < len(words) and words[j] in ("object", "objects", "item", "items", "thing", "box", "ball",
                                               "chair", "table", "door", "wheel", "handle", "rope", "bag")
    w = words[j]
    return w not in NOT_OBJECT and w not in BODY_NOUNS and not _is_verb(w) and w not in (",", ".", ";")


def _object_is_body(words: list[str], i: int) -> bool:
    """Whether the verb at ``i`` is directly followed by a body part as its object ("spins his arms")."""
    j = i + 1
    while j < len(words) and words[j] in DETERMINERS - {"of", "and"}:
        j += 1
    return j < len(words) and (words[j] in BODY_NOUNS or (words[j] == "back" and j > i + 1))


def _bare_side(words: list[str]) -> str | None:
    """A left/right word naming a limb with no body noun ("kicks with the left", "punches right")."""
    for i, w in enumerate(words):
        if w in ("left", "right"):
            nxt = words[i + 1] if i + 1 < len(words) else ""
            prev = words[i - 1] if i > 0 else ""
            if nxt in BODY_NOUNS or nxt in ("and", "or") or (nxt == "side" and words[i + 2:i + 3] != ["of"]):
                continue
            if nxt == "side" and i + 2 < len(words) and words[i + 2] == "of":
                return w  # "touches the left side of the head": the left hand does
            if prev in DIRECTION_LEAD and prev not in ("his", "her", "their"):
                continue
            return w
    return None


def _clause_text(clause: Clause) -> str:
    """The clause as a part text: subject stripped, first verb in the third person present."""
    words = _strip_subject(clause.words)
    words = [w for w in words if w not in (",", ";", ".")]
    while words and words[-1] in ("and", "or", "but", "then", "while", "as", "to"):
        words = words[:-1]
    if words and _is_passive(clause.words, words[0]):
        words = ["gets"] + words
    elif words and (_is_verb(words[0]) or _lemma(words[0]) in LIGHT_VERBS) and words[0] not in ("left", "right"):
        words = [third_person(_lemma(words[0]))] + words[1:]
    return " ".join(DISPLAY.get(w, w) for w in words)


def split_caption(caption: str, fallback: bool = True, gait_torso: bool = True) -> PartAnnotation:
    """Split one whole-body caption into LGTM's six part annotations (idle where nothing moves).

    With ``fallback``, a caption in which no part or known verb is recognised gives every part the
    whole caption (as LGTM does for captions its language model could not split); without, it is all idle.
    ``gait_torso`` gives walking, running, stepping and jumping to the torso as well as the legs.
    """
    clauses = split_clauses(tokenize(caption))
    texts: dict[str, list[tuple[str, str]]] = {p: [] for p in PART_NAMES}
    actions: dict[str, str] = {}
    previous_action = ""
    one_side: dict[str, str] = {}  # limb kind -> the single side the caption has named so far
    still = False
    for clause in clauses:
        parts, action = clause_parts(clause, gait_torso)
        still = still or clause.static
        if not parts:
            continue
        for kind in ("arm", "leg"):
            sides = {p for p in parts if p.endswith(kind)}
            if kind in clause.unsided and kind in one_side:
                parts -= sides - {f"{one_side[kind]}_{kind}"}  # "raises the left hand and waves": the left one
            elif len(sides) == 1:
                one_side[kind] = next(iter(sides)).split("_")[0]
            elif sides:
                one_side.pop(kind, None)
        if not any(_is_verb(w) for w in clause.words) and previous_action:
            action = previous_action
        previous_action = action
        text = _clause_text(clause)
        for p in PART_NAMES:
            if p in parts:
                texts[p].append((clause.relation, text))
                actions.setdefault(p, DISPLAY.get(action, action))
    if fallback and not actions and clauses and not still:
        text = " then ".join(_clause_text(c) for c in clauses)
        first = _strip_subject(clauses[0].words)[0]
        return {p: {"action": _lemma(first), "text": text} if p in FALLBACK_PARTS else dict(IDLE)
                for p in PART_NAMES}
    out: PartAnnotation = {}
    for p in PART_NAMES:
        if not texts[p]:
            out[p] = dict(IDLE)
            continue
        joined = texts[p][0][1]
        for relation, text in texts[p][1:]:
            joined += {"then": " then ", "while": " while ", "and": " and "}[relation] + text
        out[p] = {"action": actions[p], "text": joined}
    return out
