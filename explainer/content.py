"""Teaching content: the default prompt, word-set presets, analogy and direction examples, prompt templates.

Copy and examples live here, apart from the engine's computations, so that a teacher's material (and the
lessons beside it under assets/lessons/) can change without touching the maths.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PROMPT = "The Eiffel Tower is in the city of"

# Word sets that show structure. `a → b` pairs are drawn as arrows: parallel arrows are the picture
# of "the same direction means the same thing".
MAP_PRESETS: dict[str, str] = {
    "Royalty & gender": "man → woman\nking → queen\nboy → girl\nprince → princess\nfather → mother\n"
                        "brother → sister\nuncle → aunt",
    "Countries & capitals": "France → Paris\nGermany → Berlin\nItaly → Rome\nSpain → Madrid\nJapan → Tokyo\n"
                            "Russia → Moscow\nChina → Beijing\nEgypt → Cairo",
    "Singular & plural": "cat → cats\ndog → dogs\nhouse → houses\ncar → cars\ntree → trees\nbook → books\n"
                         "child → children\nmouse → mice",
    "Verb tenses": "walk → walked\nrun → ran\ngo → went\neat → ate\nsee → saw\nwrite → wrote\ntake → took",
    "Numbers": "one → two → three → four → five → six → seven → eight → nine → ten\ntwenty, hundred, thousand",
    "Colours": "red, orange, yellow, green, blue, purple, pink, brown, black, white, grey",
}

# a − b + c, as (a, b, c)
ANALOGY_PRESETS: dict[str, tuple[str, str, str]] = {
    "king − man + woman": ("king", "man", "woman"),
    "Paris − France + Germany": ("Paris", "France", "Germany"),
    "cats − cat + dog": ("cats", "cat", "dog"),
    "went − go + eat": ("went", "go", "eat"),
    "bigger − big + small": ("bigger", "big", "small"),
    "actor − man + woman": ("actor", "man", "woman"),
    "children − child + mouse": ("children", "child", "mouse"),
    "walked − walk + run": ("walked", "walk", "run"),
    "Tokyo − Japan + Italy (a miss)": ("Tokyo", "Japan", "Italy"),
}

# An axis (pairs from → to) and words to place on it.
DIRECTION_PRESETS: dict[str, tuple[str, str]] = {
    "woman − man": ("man → woman\nboy → girl\nking → queen\nfather → mother\nbrother → sister",
                    "doctor, nurse, engineer, teacher, actor, actress, soldier, dancer, boss, secretary, "
                    "prince, princess, uncle, aunt, son, daughter"),
    "plural − singular": ("cat → cats\ndog → dogs\ncar → cars\nhouse → houses\nbook → books",
                          "apple, apples, bird, birds, mouse, mice, child, children, person, people, "
                          "sheep, news, glasses"),
    "past − present": ("walk → walked\nplay → played\ngo → went\nsee → saw\ntake → took",
                       "run, ran, eat, ate, write, wrote, jump, jumped, sing, sang, is, was, will, yesterday, "
                       "tomorrow"),
    "capital − country": ("France → Paris\nGermany → Berlin\nItaly → Rome\nJapan → Tokyo",
                          "Spain, Madrid, Russia, Moscow, Egypt, Cairo, China, Beijing, London, England, city, "
                          "nation"),
}

# The same word in sentences where it means different things. A GPT reads left to right, so the
# words that give the meaning away come *before* the word followed.
CONTEXT_PRESETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "bank: river or money": ("bank", (
        "We had a picnic on the grassy river bank",
        "The fisherman sat on the muddy bank",
        "She deposited her salary at the bank",
        "To get a mortgage he went to the bank",
    )),
    "model: runway or machine learning": ("model", (
        "On the catwalk at Paris fashion week, the famous model",
        "The photographer took pictures of the fashion model",
        "We trained the neural network language model",
        "The machine learning model",
    )),
}


# -- prompt templates for the Generate page ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    label: str
    text: str
    stop: tuple[str, ...]
    blurb: str
    chat: bool = False
    temperature: float = 0.7      # a sensible starting point for this kind of task


TEMPLATES: dict[str, Template] = {
    "qa": Template(
        "Question & answer", "Q: What is the capital of France?\nA: Paris.\nQ: What is the largest planet?\nA:",
        ("\n",),
        "A pattern the model continues: it answers, then would go on with more questions — the stop string "
        "(a new line) ends it after the answer.", temperature=0.3),
    "chat": Template(
        "Chat, turn by turn", "", (),
        "A chat is one long text: every turn, the whole log is formatted with the model's chat template and fed "
        "back in; the model writes the assistant's next turn and stops at its end-of-turn token.", chat=True,
        temperature=0.3),
    "translate": Template(
        "Translation", "English: cheese\nFrench: fromage\nEnglish: the red house\nFrench: la maison rouge\n"
        "English: good morning\nFrench:", ("\n",),
        "A few examples, then a new phrase: the model picks up the task from the pattern (few-shot prompting).",
        temperature=0.0),
    "code": Template(
        "Code", 'def is_prime(n):\n    """Return True if n is a prime number."""\n', ("\ndef ", "\nclass ", "\n\n\n"),
        "Code is text too: a function header and docstring, and the model writes the body.", temperature=0.2),
    "story": Template(
        "Story", "Once upon a time, in a small village by the sea,", ("\n\n",),
        "Open-ended text: try temperature 0 (always the same) against 1.2 (more surprising).", temperature=0.9),
}
