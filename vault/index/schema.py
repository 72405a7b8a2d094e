"""The Tantivy schema: one document per unique message content (blob).

Text fields are split as Tantivy's default tokenizer splits (on anything not alphanumeric,
lower-cased, tokens of 40 bytes or more dropped), with positions so phrases work; a value with
Chinese, Japanese or Korean in it is tokenised by words.py (CJK runs as bigrams) and indexed
pre-tokenised. Addresses are indexed as "Display Name <addr>" text, so
``from:erin@example.org`` is the phrase erin example org.
Custodians and folders are not here: they change with renames, copies and moves and live in
the catalog (see scope.py).

``key`` is the blob's first 64 bits as a number: in:/custodian: restrict to a set of blobs, and
Tantivy looks up a set of numbers 4x faster than a set of 71-character strings (and reads
them per hit from a fast field). Two contents sharing a key (odds ~1e-7 at ten million
messages) would only make a location clause admit the other one too.
"""

from __future__ import annotations

import tantivy

TEXT_FIELDS = ("from", "to", "cc", "bcc", "subject", "body", "filename")
BARE_WORD_FIELDS = ("from", "to", "cc", "subject", "body", "filename")  # bcc only when asked
STORED_TEXT = {"from", "subject"}  # what a result row shows
# The text fields' tokenizer: the default one under a name that versions how words are split.
# Any change to that (here or in words.py) renames it: an index built the old way then no longer
# matches the schema, readers say so (IndexOutdated) and the vault's writer rebuilds it.
TOKENIZER = "words_cjk_bigrams_1"


def register(index: tantivy.Index) -> None:
    """Tantivy's default analyzer under ``TOKENIZER``; every opener registers it."""
    index.register_tokenizer(
        TOKENIZER,
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .build(),
    )


def build() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("blob", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_integer_field("key", indexed=True, fast=True)
    for name in TEXT_FIELDS:
        sb.add_text_field(name, stored=name in STORED_TEXT, tokenizer_name=TOKENIZER, index_option="position")
    sb.add_text_field("messageid", tokenizer_name="raw", index_option="basic")
    sb.add_date_field("date", stored=True, indexed=True, fast=True)
    sb.add_integer_field("size", indexed=True, fast=True)
    sb.add_integer_field("attachment", indexed=True)
    return sb.build()


def blob_key(blob: str) -> int:
    """``sha256:<hex>`` -> its first 8 bytes as a signed 64-bit integer (Tantivy's i64)."""
    n = int(blob[7:23], 16)
    return n - (1 << 64) if n >= 1 << 63 else n
