"""Cut text into sentences as it streams in, so speech can start early.

A text-to-speech engine speaks sentence by sentence: the first one plays while
the next is synthesized. Text is split after ``. ! ? ; …`` followed by white
space, at line breaks, and after ``,`` or ``:`` followed by white space once the
clause so far is long enough to be worth speaking on its own (a text's first
clause sooner than the others).

A missed boundary only delays audio a little; a false one breaks the melody of
the sentence. So when unsure, do not split:

* A punctuation mark is a boundary only once the next character is known to be
  white space, so numbers ("3.5", "10:30", "1,000") are never cut, even when a
  chunk ends right after the mark.
* A period does not end a sentence after an initial ("J."), a word with a period
  in it ("e.g.", "U.S.", "a.m."), a few common English abbreviations ("Dr.",
  "Mr.", "etc.") or a number opening the sentence (the list marker "1.").

Scripts that put no space between sentences (Chinese, Japanese) are split only
at line breaks; piper still splits them itself, only the early start is lost.
"""

import re

# A comma or colon ends a clause of at least this many characters; the first
# clause of a text may be short ("Sure, ..."): the sooner the first audio, the
# sooner the listener hears an answer.
MIN_CLAUSE_CHARS = 40
MIN_FIRST_CLAUSE_CHARS = 4

# Closing quotes and brackets that may follow the end of a sentence.
_CLOSERS = "\"'”’)]»"  # noqa: RUF001 - typographic quotes are meant
_OPENERS = "\"'([«“‘"  # noqa: RUF001
_BOUNDARY = re.compile(
    rf"""
    (?P<line>\n)
    | (?P<end>[.!?;…]+)[{re.escape(_CLOSERS)}]*(?=\s)
    | (?P<clause>[,:])(?=\s)
    """,
    re.VERBOSE,
)
_ABBREVIATIONS = frozenset(
    {
        "approx",
        "dr",
        "etc",
        "inc",
        "jr",
        "ltd",
        "mr",
        "mrs",
        "ms",
        "prof",
        "sr",
        "st",
        "vs",
    }
)


class SentenceBuffer:
    """Collect streamed text and hand out each sentence once it is complete."""

    def __init__(self) -> None:
        """Start with no text."""
        self._text = ""  # text not handed out yet
        self._scanned = 0  # boundaries before this index in _text are decided
        self._first = True  # nothing handed out yet

    def add(self, text: str) -> list[str]:
        """Take the next piece of text; return the sentences it completes."""
        self._text += text
        sentences: list[str] = []
        start = 0
        for match in _BOUNDARY.finditer(self._text, self._scanned):
            if _ends_sentence(match, self._text[start : match.start()], self._first):
                if sentence := self._text[start : match.end()].strip():
                    sentences.append(sentence)
                    self._first = False
                start = match.end()
            self._scanned = match.end()
        self._text = self._text[start:]
        self._scanned -= start
        return sentences

    def flush(self) -> list[str]:
        """End the text: return what is left as the last sentence."""
        rest = self._text.strip()
        self._text = ""
        self._scanned = 0
        self._first = True
        return [rest] if rest else []


def split_sentences(text: str) -> list[str]:
    """Split a whole text into the sentences a SentenceBuffer would give."""
    buffer = SentenceBuffer()
    return buffer.add(text) + buffer.flush()


def _ends_sentence(match: re.Match[str], before: str, first: bool) -> bool:  # noqa: FBT001
    """Whether ``match`` ends the sentence whose text so far is ``before``."""
    if match["line"]:
        return True
    if match["clause"]:
        shortest = MIN_FIRST_CLAUSE_CHARS if first else MIN_CLAUSE_CHARS
        return len(before.strip()) + 1 >= shortest
    return match["end"] != "." or not _period_belongs_to_word(before)


def _period_belongs_to_word(before: str) -> bool:
    """Whether a period after ``before`` marks an abbreviation, not an end."""
    words = before.split()
    if not words:
        return False
    word = words[-1].lstrip(_OPENERS)
    return (
        (len(word) == 1 and word.isalpha())
        or "." in word
        or word.lower() in _ABBREVIATIONS
        or (len(words) == 1 and word.isdigit())
    )
