"""The Tantivy schema: one document per unique message content (blob).

Text fields use Tantivy's default tokenizer (split on anything not alphanumeric, lower-cased),
with positions so phrases work; addresses are indexed as "Display Name <addr>" text, so
``from:erin@example.org`` is the phrase erin example org. Custodians and folders are not here:
they change with renames and live in the catalog (see query.py).
"""
from __future__ import annotations

import tantivy

TEXT_FIELDS = ("from", "to", "cc", "bcc", "subject", "body", "filename")
BARE_WORD_FIELDS = ("from", "to", "cc", "subject", "body", "filename")  # bcc only when asked
STORED_TEXT = {"from", "subject"}  # what a result row shows


def build() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("blob", stored=True, tokenizer_name="raw", index_option="basic")
    for name in TEXT_FIELDS:
        sb.add_text_field(name, stored=name in STORED_TEXT, tokenizer_name="default", index_option="position")
    sb.add_text_field("messageid", tokenizer_name="raw", index_option="basic")
    sb.add_date_field("date", stored=True, indexed=True, fast=True)
    sb.add_integer_field("size", indexed=True, fast=True)
    sb.add_integer_field("attachment", indexed=True)
    return sb.build()
