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
        "A few examples, then a new phrase: the pattern alone tells the model what to do (few-shot prompting), "
        "and it answers with one line of French. Check the French: a small model often gets it wrong.",
        temperature=0.0),
    "code": Template(
        "Code", 'def is_prime(n):\n    """Return True if n is a prime number."""\n', ("\ndef ", "\nclass ", "\n\n\n"),
        "Code is text too: a function header and docstring for the model to continue. See whether it writes the "
        "body or, as a small chat-tuned model may, starts talking about the code instead.", temperature=0.2),
    "story": Template(
        "Story", "Once upon a time, in a small village by the sea,", ("\n\n",),
        "Open-ended text: try temperature 0 (always the same) against 1.2 (more surprising).", temperature=0.9),
}


# -- the MLP page's curated neuron ----------------------------------------------------------------------
# Found by mlp.search_neurons over NUMBER_SEARCH (a token is a member when it is a number), best held-out
# precision among the top candidates of the bundled model: L22.N1293 fires on digits (tests/test_mlp.py
# re-runs the search and checks the neuron on NUMBER_CHECK, sentences the search never saw).
NUMBER_PATTERN = r"\s?\d+"
NUMBER_SEARCH = (
    "In 1998 there were 42 students and 7 teachers in the school.",
    "The train leaves at 9 and arrives at 11, after 120 kilometres.",
    "She bought 3 apples, 12 eggs and 2 loaves of bread for 15 dollars.",
    "Chapter 4 starts on page 87 and ends on page 103.",
    "The temperature dropped to 5 degrees, then rose to 21 by noon.",
    "He was born on 14 March 1879 and died in 1955.",
    "We need 250 grams of flour and 2 cups of milk.",
    "The score was 3 to 1 after 90 minutes.",
    "The cat sat quietly on the warm windowsill.",
    "Once upon a time a princess lived in a castle.",
    "Paris is the capital of France.",
    "They walked along the river and talked about music.",
)
NUMBER_CHECK = (
    "There are 365 days in a year and 24 hours in a day.",
    "Room 12 is on floor 3, next to room 14.",
    "In 2020 about 8 billion people lived on Earth.",
    "Add 4 and 6 to get 10.",
    "The dog barked at the postman all morning.",
    "She opened the window and the birds began to sing.",
)
CURATED_NEURON = {"bundled": (22, 1293, "digits", "There are 365 days in a year and 24 hours in a day.")}


# -- the glossary ---------------------------------------------------------------------------------
# Every technical term the pages mark with ui.term(), in plain words, lower case and without a final full
# stop, so that a page can put the definition in brackets right where the term first appears. The Glossary
# page lists them all; tests/test_glossary.py checks that every marked term is defined here.
GLOSSARY: dict[str, str] = {
    "ablation": "switching a part of the model off (here: setting its output to zero) to see what changes",
    "activation": "the number a neuron puts out for one token",
    "attention": "each token takes a weighted mix of information from itself and the tokens before it",
    "attention head": "one of several attention computations side by side in a block, each with its own "
                      "queries, keys and values, so each can look for something different",
    "attention mask": "a list of 1s and 0s saying which positions are real tokens (1) and which are padding (0)",
    "attention pattern": "the weights one head gives to each earlier token, for every token; each row adds up to 1",
    "attention sink": "a token (usually the first) that many heads put most of their attention on when there "
                      "is nothing useful to look up, a resting place rather than a source of information",
    "bits": "the unit of entropy and KL divergence with base-2 logarithms: 1 bit is as unsure as a fair coin, "
            "n bits as unsure as a choice among 2ⁿ equally likely tokens",
    "block": "one transformer layer: attention, then an MLP, each adding its result to the residual stream; "
             "the model stacks them, numbered from 0",
    "context window": "the most tokens the model can read at once",
    "cosine similarity": "how alike two directions are, from −1 (opposite) through 0 (unrelated) to 1 (the same): "
                         "the dot product divided by both lengths",
    "cross-entropy loss": "the average of −log p(the right answer) over many examples: 0 when always sure and "
                          "right, log n when guessing uniformly among n choices",
    "de-quantise": "turn compressed low-precision numbers (for example 4 bits each) back into ordinary floats",
    "dot product": "multiply two vectors number by number and add the products up: large when they point the "
                   "same way and are long",
    "embedding": "the list of numbers (vector) the model uses for a token, one row of the embedding matrix, "
                 "learned in training",
    "embedding matrix": "the table with one row of numbers for every token in the vocabulary",
    "entropy": "how unsure a probability distribution is: 0 when one token is certain, larger when many "
               "tokens are likely",
    "GGUF": "the file format of llama.cpp, which stores a model's numbers, often quantised (compressed to 4 or "
            "8 bits each), together with its tokenizer",
    "greedy": "always taking the most likely token (what temperature 0 does)",
    "grouped-query attention": "several query heads share one key/value head, so that fewer keys and values "
                               "have to be computed and kept in memory",
    "hook site": "a named place inside the model (such as blocks.3.attn.hook_pattern) where a tool can read "
                 "the numbers passing by, or change them",
    "induction head": "a head that finds an earlier copy of the current token and looks at the token that came "
                      "right after it, so the model can continue a pattern it has seen before in the text",
    "KL divergence": "how different one probability distribution is from another, in bits: 0 when they are "
                     "the same",
    "KV cache": "the keys and values of the tokens already read, kept so that each new token needs only its own "
                "computation",
    "layer": "another word for a block; every page numbers them from 0, and “after block 14” means the "
             "residual stream once block 14 has added its output",
    "learning rate": "how big a step training takes each time it adjusts the parameters",
    "logit": "the raw score the model gives a token before softmax; a higher logit means a more likely token",
    "logit lens": "reading the residual stream after any block as if it were the last one: through the final "
                  "norm and the unembedding",
    "MLP": "the second part of every block: a neural network with one hidden layer of neurons, which works on "
           "each token on its own",
    "nats": "the unit of entropy and loss with natural logarithms; 1 nat is 1.44 bits",
    "neuron": "one hidden unit of an MLP; it reads the token's vector and writes its own direction into the "
              "residual stream, scaled by its activation",
    "overfitting": "a model learning its training examples by heart, so it does better on them and worse on "
                   "new ones",
    "padding": "filler tokens that make shorter prompts as long as the longest, so a batch is a rectangle",
    "parameters": "the numbers the model learned in training (its weights); the model is these numbers and the "
                  "code that uses them",
    "PCA": "principal component analysis: finds the few directions along which a set of vectors differs most, "
           "so they can be drawn on a flat picture",
    "query, key and value": "three vectors computed from each token: the query asks what this token is looking "
                            "for, the key says what a token contains, the value is what it passes on",
    "residual stream": "the running vector of each token: every block reads it and adds its own output to it",
    "rotary positions": "how Llama-style models know word order: each pair of numbers in a query or key is turned "
                        "by an angle that grows with the token's position, each pair at its own speed, so q·k "
                        "depends on how far apart two tokens are",
    "safetensors": "a plain file format for a model's numbers, with a small header naming each tensor; loading "
                   "it runs no code",
    "sampling": "drawing the next token at random, each with its probability",
    "seed": "a number that fixes the random draws, so that the same clicks give the same text again",
    "shape": "how many numbers a part holds along each axis: [9, 576] is 9 tokens with 576 numbers each",
    "softmax": "turns a list of scores into probabilities: e to the power of each score, divided by the sum, so "
               "they are positive and add up to 1",
    "temperature": "divides the logits before softmax: below 1 sharpens the distribution, above 1 flattens it",
    "token": "a piece of text the model reads as one unit (a word, a part of a word or a punctuation mark), "
             "with a number, its id",
    "top-k": "keep only the k most likely tokens before drawing one",
    "top-p": "keep the smallest set of most likely tokens whose probabilities add up to at least p",
    "unembedding": "the last matrix of the model: it turns a token's final vector into one score (logit) for "
                   "every token of the vocabulary",
    "vocabulary": "the fixed list of every token the model knows",
}
