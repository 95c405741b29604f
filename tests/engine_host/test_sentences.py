"""Sentence splitting for streamed speech synthesis."""

import pytest

from custom_components.private_voice.engine_host.sentences import (
    MIN_CLAUSE_CHARS,
    SentenceBuffer,
    split_sentences,
)

PARAGRAPH = (
    "Good morning! Dr. Jones called at 10:30, e.g. about the 3.5 kg parcel. "
    "While you were out walking the dog in the park this morning, the heating "
    "came on; the house is warm now.\nShopping list:\n1. Milk.\n2. Eggs.\n"
    'She said "thanks!" Anything else?'
)
PARAGRAPH_SENTENCES = [
    "Good morning!",
    "Dr. Jones called at 10:30, e.g. about the 3.5 kg parcel.",
    "While you were out walking the dog in the park this morning,",
    "the heating came on;",
    "the house is warm now.",
    "Shopping list:",
    "1. Milk.",
    "2. Eggs.",
    'She said "thanks!"',
    "Anything else?",
]


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        (
            "Hello there. How are you? I am fine!",
            ["Hello there.", "How are you?", "I am fine!"],
        ),
        ("Really?! Yes... maybe.", ["Really?!", "Yes...", "maybe."]),
        ("Wait; what?", ["Wait;", "what?"]),
        ("no punctuation at all", ["no punctuation at all"]),
        ("Line one\nline two\n\n", ["Line one", "line two"]),
        ("(See above.) Next.", ["(See above.)", "Next."]),
        ('He said "stop!" Then he left.', ['He said "stop!"', "Then he left."]),
        ("", []),
        (" \n\t ", []),
    ],
)
def test_splits_at_sentence_ends(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


@pytest.mark.parametrize(
    "text",
    [
        "Dr. Smith met Mr. Brown, etc. at St. Mary's.",
        "Use a mild one, e.g. vinegar, i.e. something acidic.",
        "J. R. R. Tolkien lived in the U.K. for years.",
        "It weighs 3.5 kg and costs 1,000.50 euros at 10:30 sharp.",
        "Version 2.0.1 is out.",
    ],
)
def test_keeps_abbreviations_and_numbers_whole(text: str) -> None:
    # After a first sentence, so that no comma counts as an early first clause.
    assert split_sentences(f"Look. {text}") == ["Look.", text]


def test_list_marker_is_not_a_sentence() -> None:
    assert split_sentences("1. Buy milk.\n2. Call mom. 3 cats sleep.") == [
        "1. Buy milk.",
        "2. Call mom.",
        "3 cats sleep.",
    ]
    assert split_sentences("I am 30. You are 20.") == ["I am 30.", "You are 20."]


def test_long_clauses_split_at_commas_and_colons() -> None:
    text = (
        "If the temperature in the living room drops below twenty degrees, "
        "turn on the heating, please. Here is what your calendar says for today: "
        "a dentist appointment."
    )
    assert split_sentences(text) == [
        "If the temperature in the living room drops below twenty degrees,",
        "turn on the heating, please.",
        "Here is what your calendar says for today:",
        "a dentist appointment.",
    ]


def test_first_clause_is_spoken_early() -> None:
    """The text's first clause ends at its comma, however short; later ones do not."""
    assert split_sentences("Yes, of course: I can do that, right away.") == [
        "Yes,",
        "of course: I can do that, right away.",
    ]
    assert split_sentences("Yes. Sure, of course: I can do that.") == [
        "Yes.",
        "Sure, of course: I can do that.",
    ]
    # Under four characters is not worth a pause of its own.
    assert split_sentences("So, it is done.") == ["So, it is done."]


def test_short_clauses_stay_together() -> None:
    short = "Well then, of course: I can do that, right away."
    assert split_sentences(f"Yes. {short}") == ["Yes.", short]
    # The comma that makes the clause long enough is where it splits.
    words = "word " * (MIN_CLAUSE_CHARS // 5)
    assert split_sentences(f"Hi. One, {words}two, three.") == [
        "Hi.",
        f"One, {words}two,",
        "three.",
    ]


def test_stream_cut_mid_word() -> None:
    buffer = SentenceBuffer()
    chunks = ["Hel", "lo the", "re. How a", "re you? I am", " fine"]
    assert [buffer.add(chunk) for chunk in chunks] == [
        [],
        [],
        ["Hello there."],
        ["How are you?"],
        [],
    ]
    assert buffer.flush() == ["I am fine"]
    assert buffer.flush() == []


def test_stream_waits_for_the_character_after_a_mark() -> None:
    buffer = SentenceBuffer()
    assert buffer.add("It costs 3.") == []
    assert buffer.add("5 euros. Call Dr.") == ["It costs 3.5 euros."]
    assert buffer.add(" Lee at 10:") == []
    assert buffer.add("30. Thanks") == ["Call Dr. Lee at 10:30."]
    assert buffer.add("!") == []
    assert buffer.flush() == ["Thanks!"]


def test_stream_line_break_ends_at_once() -> None:
    buffer = SentenceBuffer()
    assert buffer.add("First item\n") == ["First item"]
    assert buffer.add("\n") == []
    assert buffer.add("Second item") == []
    assert buffer.flush() == ["Second item"]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 50])
def test_streamed_in_any_pieces_gives_the_same_sentences(size: int) -> None:
    buffer = SentenceBuffer()
    sentences: list[str] = []
    for start in range(0, len(PARAGRAPH), size):
        sentences.extend(buffer.add(PARAGRAPH[start : start + size]))
    sentences.extend(buffer.flush())
    assert sentences == PARAGRAPH_SENTENCES
    assert split_sentences(PARAGRAPH) == PARAGRAPH_SENTENCES
