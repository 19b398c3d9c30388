"""The URL contract's values on their own (explainer/links.py): prompts round-trip, bad values are mended
with a notice, and the contract's names are the ones lessons and shared links depend on."""

from __future__ import annotations

import base64
import zlib

import pytest

from explainer import links


def test_contract_names_are_the_published_ones():
    published = {"model", "prompt", "max_tokens", "layer", "head", "neuron", "token", "temperature", "top_k",
                 "top_p", "seed", "steps", "tab"}                          # the links issue's contract
    shared_since = {"min_p", "repetition_penalty"}                        # Next token and Generate share them
    player = {"lesson", "step", "present"}                                # the lesson player's, across pages
    compare = {"compare"}                                                 # compare mode's second prompt
    assert set(links.SHARED) == published | shared_since | player | compare
    assert not set(links.SHARED) & set(links.PAGE)


@pytest.mark.parametrize("text", ["", "The Eiffel Tower is in the city of", "zlib:not compressed", "é" * 600,
                                  "x" * 100_000, "مرحبا بالعالم " * 50, "e\u0301" * 300, "🙂 " * 400])
def test_prompts_round_trip(text):
    enc = links.encode_prompt(text)
    assert links.decode_prompt(enc) == (text, None)
    if len(text) > links.PLAIN_PROMPT_CHARS:
        assert enc.startswith("zlib:") and len(enc) < len(text.encode("utf-8"))
        packed = enc[len("zlib:"):]
        assert zlib.decompress(base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4))).decode() == text


def test_short_prompts_stay_readable_in_the_link():
    assert links.encode_prompt("The cat sat on the mat") == "The cat sat on the mat"


@pytest.mark.parametrize("bad", ["zlib:", "zlib:!!!!", "zlib:" + base64.urlsafe_b64encode(b"not zlib").decode()])
def test_a_damaged_compressed_prompt_gives_a_notice(bad):
    text, note = links.decode_prompt(bad)
    assert text == "" and "damaged" in note


@pytest.mark.parametrize("raw,want,noted", [
    ("5", 5, False), ("999", 29, True), ("-3", 0, True), ("abc", 7, True), ("2.5", 7, True),
    ("nan", 7, True), ("inf", 7, True), ("", 7, True), ("<script>alert(1)</script>", 7, True),
])
def test_whole_numbers_are_clamped_or_reset(raw, want, noted):
    m = links.number("layer", raw, 0, 29, 7, integer=True)
    assert m.value == want and (m.notice is not None) == noted
    if noted:
        assert "`layer=" in m.notice


def test_floats_clamp_and_keep_their_value():
    assert links.number("temperature", "2.5", 0.0, 5.0, 1.0, False) == links.Mended(2.5)
    m = links.number("temperature", "9", 0.0, 5.0, 1.0, False)
    assert m.value == 5.0 and "out of range (0 to 5)" in m.notice


def test_choices_flags_and_lists():
    assert links.choice("dims", "3-D", ["2-D", "3-D"], "2-D").value == "3-D"
    assert links.choice("dims", "4-D", ["2-D", "3-D"], "2-D").notice
    assert links.choice("lr", "0.1", [0.01, 0.1], 0.01, show=lambda r: f"{r:g}").value == 0.1
    assert links.flag("space", "0", True) == links.Mended(False)
    assert links.flag("space", "maybe", True).value is True and links.flag("space", "maybe", True).notice
    m = links.many("ablate_heads", "L1.H3, L99.H0,L1.H3", ["L1.H3", "L2.H0"])
    assert m.value == ["L1.H3"] and "L99.H0" in m.notice
    assert links.int_range("window", "9,3", 0, 10, (0, 10)) == links.Mended((3, 9))
    assert links.int_range("window", "3", 0, 10, (0, 10)).notice


def test_token_ids_stop_at_the_first_bad_one():
    assert links.token_ids("steps", "1,2,3", 100, 10) == links.Mended([1, 2, 3])
    m = links.token_ids("steps", "1,2,x,3", 100, 10)
    assert m.value == [1, 2] and "step 3" in m.notice
    assert links.token_ids("steps", "1,100", 100, 10).value == [1]
    assert links.token_ids("steps", "-1", 100, 10).value == []
    m = links.token_ids("steps", ",".join(["5"] * 20), 100, 4)
    assert m.value == [5] * 4 and m.notice
    assert links.join_ids([3, 4]) == "3,4"


def test_text_values_are_kept_but_bounded():
    assert links.text("word", "<b>London</b>").value == "<b>London</b>"   # shown escaped, never as HTML
    assert links.text("word", "a\x00b").value == "ab"
    m = links.text("word", "x" * (links.MAX_VALUE_CHARS + 5))
    assert len(m.value) == links.MAX_VALUE_CHARS and m.notice


def test_unknown_parameters_are_named():
    assert links.unknown_notice([]) is None
    assert "`utm_source`" in links.unknown_notice(["utm_source"])


def test_a_linked_prompt_is_decoded_bounded_or_defaulted():
    long = "Once upon a time " * 60
    assert links.prompt("gen_text", links.encode_prompt(long), "d") == links.Mended(long)
    m = links.prompt("gen_text", "zlib:@@@", "the default")
    assert m.value == "the default" and "damaged" in m.notice
    assert links.prompt("gen_text", "a\x00b", "d").value == "ab"
