"""Words as the index sees them: the same split at indexing and at query time.

Tantivy's default tokenizer keeps each run of alphanumeric characters as one token (lower-cased;
one of 40 bytes or more dropped, its position left empty). Chinese, Japanese and Korean are
written without spaces between words, so a whole sentence would be one token and no word in it
findable. A text value holding such characters is therefore split here and handed to Tantivy
already tokenised, as Lucene's CJK analyzer does: each run of Han, kana and Hangul becomes its
overlapping bigrams (会議について: 会議 議に につ つい いて), each at the position of its first
character, plus every character as a unigram at its own position. A CJK query word of two or
more characters is then the phrase of its bigrams, and one character is itself: a word is found
where its characters stand together as written, never where they occur only apart. Everything
else in such a value is split as the default tokenizer splits it; a value without CJK (nearly
every one in Latin mail) is left to Tantivy, untouched.
"""

from __future__ import annotations

import re

WORD = re.compile(r"[^\W_]+")  # alphanumeric runs, as Tantivy's SimpleTokenizer
MAX_WORD_BYTES = 40  # Tantivy's default RemoveLongFilter: words this long or longer are not indexed
# Han (with radicals, compatibility forms and extensions B-G), Hiragana, Katakana (with
# half-width forms and the kana supplements), Bopomofo, Hangul syllables and jamo, and the
# marks written within such words (々 〆 〇 〻 ゝ ー).
_CJK = (
    "\u1100-\u11ff\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3031-\u3035\u303b\u303c\u3040-\u30ff"
    "\u3100-\u312f\u3130-\u318f\u31a0-\u31bf\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f"
    "\uac00-\ud7ff\uf900-\ufaff\uff66-\uffdc\U0001b000-\U0001b2ff\U00020000-\U0003ffff"
)
_CJK_CHAR = re.compile(f"[{_CJK}]")
_CJK_OR_NOT = re.compile(f"([{_CJK}]+)|[^{_CJK}]+")


def has_cjk(text: str) -> bool:
    if text.isascii():
        return False
    try:  # Latin-1 text (a copy at memory speed) needs no scan: on the SpamAssassin corpus that
        text.encode("latin-1")  # halves the cost of this check, to ~0.7% of building the index
        return False
    except UnicodeEncodeError:
        return _CJK_CHAR.search(text) is not None


def _split(text: str, unigrams: bool) -> list[tuple[str, int, int, int]]:
    """(term, position, start, end) of each token, in order; CJK runs as bigrams, and as
    unigrams too when ``unigrams`` (indexing) or when the run is one character."""
    out: list[tuple[str, int, int, int]] = []
    position = 0
    for m in WORD.finditer(text):
        word = m.group(0)
        if word.isascii() or not _CJK_CHAR.search(word):
            if len(word.encode()) < MAX_WORD_BYTES:
                out.append((word.lower(), position, m.start(), m.end()))
            position += 1
            continue
        at = m.start()
        for part in _CJK_OR_NOT.finditer(word):
            piece, start = part.group(0), at + part.start()
            n = len(piece)
            if part.group(1) is None:  # letters or digits of another script, glued to the CJK
                if len(piece.encode()) < MAX_WORD_BYTES:
                    out.append((piece.lower(), position, start, start + n))
                position += 1
                continue
            if n == 1:
                out.append((piece, position, start, start + 1))
            else:
                bigrams = [(piece[i : i + 2], position + i, start + i, start + i + 2) for i in range(n - 1)]
                if unigrams:  # each character, then the bigram it starts
                    chars = [(c, position + i, start + i, start + i + 1) for i, c in enumerate(piece)]
                    out += [gram for pair in zip(chars, bigrams) for gram in pair]
                    out.append(chars[-1])
                else:
                    out += bigrams
            position += n
    return out


def index_tokens(text: str) -> list[tuple[str, int, int, int]]:
    """(term, position, start, end), the arguments of a ``tantivy.Token``, for every token to
    index: words, CJK unigrams and bigrams."""
    return _split(text, unigrams=True)


def query_terms(text: str) -> list[tuple[int, str]]:
    """(position, term) to look for, in order: words, and a CJK run as its bigrams (one CJK
    character: itself). One term is a term query, several a phrase at these positions."""
    return [(p, t) for t, p, _, _ in _split(text, unigrams=False)]
