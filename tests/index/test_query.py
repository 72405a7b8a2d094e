"""The query language: precedence, operators, dates with zones, and errors that say where."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.dates import SENT
from vault.index.query import (
    MAX_DEPTH,
    MAX_SIZE,
    And,
    HasAttachment,
    MessageId,
    Not,
    Or,
    QuerySyntaxError,
    Size,
    When,
    Where,
    Words,
    parse,
)


def test_precedence_not_and_or():
    assert parse("a b OR c -d") == Or(
        (And((Words(None, "a"), Words(None, "b"))), And((Words(None, "c"), Not(Words(None, "d")))))
    )
    assert parse("a AND (b OR NOT c)") == And(
        (Words(None, "a"), Or((Words(None, "b"), Not(Words(None, "c")))))
    )


def test_minus_negates_words_phrases_groups_and_operators():
    assert parse('a -"b c" -(d OR e) -from:f') == And(
        (
            Words(None, "a"),
            Not(Words(None, "b c", True)),
            Not(Or((Words(None, "d"), Words(None, "e")))),
            Not(Words("from", "f")),
        )
    )
    assert parse("well-known") == Words(None, "well-known")  # inside a word it is a word's hyphen


def test_operators():
    assert parse('subject:"quarterly report"') == Words("subject", "quarterly report", True)
    assert parse("from:erin@example.org") == Words("from", "erin@example.org")
    assert parse("has:attachment") == HasAttachment()
    assert parse("size:>1M") == Size(">", 1 << 20)
    assert parse("size:500k") == Size(">=", 500 << 10)
    assert parse("messageid:<abc@x>") == MessageId("abc@x")
    assert parse("size:<1.5K") == Size("<", 1536)
    assert parse("size:>" + "9" * 400 + "G") == Size(">", MAX_SIZE)  # beyond any message: still a size
    assert parse("in:Sent custodian:jane") == And((Where("in", "Sent"), Where("custodian", "jane")))


def test_dates_are_exact_and_zone_aware():
    assert parse("before:2026-01-02") == When("before", datetime(2026, 1, 2, tzinfo=UTC))
    assert parse("after:2026-01-02+02:00") == When("after", datetime(2026, 1, 1, 22, tzinfo=UTC))
    assert parse("after:2026-01-02T10:30:00-05:00") == When("after", datetime(2026, 1, 2, 15, 30, tzinfo=UTC))


def test_bare_dates_are_in_the_site_zone_and_received_unless_sent():
    berlin = ZoneInfo("Europe/Berlin")
    # a bare day, and a time without a zone, are the site's; a zone given wins
    assert parse("before:2026-01-02", berlin) == When("before", datetime(2026, 1, 1, 23, tzinfo=UTC))
    assert parse("after:2026-07-02T10:00", berlin) == When("after", datetime(2026, 7, 2, 8, tzinfo=UTC))
    assert parse("after:2026-01-02Z", berlin) == When("after", datetime(2026, 1, 2, tzinfo=UTC))
    # on: is the whole day, from its midnight to the next (23 hours on the day clocks go forward)
    assert parse("on:2026-03-29", berlin) == And(
        (
            When("after", datetime(2026, 3, 28, 23, tzinfo=UTC)),
            When("before", datetime(2026, 3, 29, 22, tzinfo=UTC)),
        )
    )
    # sent: terms are about the Date: header
    assert parse("sentbefore:2026-01-02") == When("before", datetime(2026, 1, 2, tzinfo=UTC), SENT)
    assert parse("sent:2026-01-02") == And(
        (
            When("after", datetime(2026, 1, 2, tzinfo=UTC), SENT),
            When("before", datetime(2026, 1, 3, tzinfo=UTC), SENT),
        )
    )


@pytest.mark.parametrize(
    "query,position,reason",
    [
        ("", 1, "empty query"),
        ("(budget", 1, 'unclosed "("'),
        ("budget)", 7, "unexpected ')'"),
        ('subject:"budget', 9, "unclosed quote"),
        ("frm:erin", 1, "unknown operator 'frm:'"),
        ("budget AND", 8, "AND needs something on its right"),
        ("OR budget", 1, "OR needs something on its left"),
        ("budget NOT", 8, "NOT needs something to negate"),
        ("size:big", 6, "not a size"),
        ("before:2026-13-01", 8, "month must be in 1..12"),
        ("has:pictures", 5, "has:pictures is not known"),
        ("subject:", 1, "subject: needs a value"),
        ("()", 1, "empty parentheses"),
        ("budget -)", 8, "- needs something to negate"),
        ("after:0001-01-01T00:00:00+14:00", 7, "out of range"),
        ("before:2026-01-01+30:00", 8, "zone in '2026-01-01+30:00' is out of range"),
        ("before:२०२६-01-01", 8, "is not a date"),  # Unicode digits are not ASCII ones
        ("(" * 3000 + "a" + ")" * 3000, 65, "more than 64 deep"),  # was a RecursionError
        ("NOT " * 3000 + "a", 257, "more than 64 deep"),
        ("-" * 3000 + "a", 65, "more than 64 deep"),
        ("(NOT " * 40 + "a" + ")" * 40, 161, "more than 64 deep"),
    ],
)
def test_errors_name_position_and_reason(query, position, reason):
    with pytest.raises(QuerySyntaxError) as e:
        parse(query)
    assert e.value.position == position and reason in e.value.reason
    assert str(e.value).startswith(f"position {position}: ")


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(list('ab :()"-<>*') + [" AND ", " OR ", " NOT ", "from:", "size:", "before:"]),
        max_size=20,
    ).map("".join)
)
def test_parser_raises_nothing_but_syntax_errors(text):
    try:
        parse(text)
    except QuerySyntaxError as e:
        assert 1 <= e.position <= len(text) + 1


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_parser_on_any_text(text):
    try:
        parse(text)
    except QuerySyntaxError as e:
        assert 1 <= e.position <= len(text) + 1


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(["size:", "before:", "after:", "has:", "in:", "messageid:", "from:"]),
    st.one_of(
        st.text(max_size=30),
        st.from_regex(r"[<>=]{0,2}\d{1,30}(\.\d{0,5})?[kKmMgGbB]{0,2}", fullmatch=True),
        st.from_regex(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?([+-]\d{2}:\d{2}|Z)?", fullmatch=True),
    ),
)
def test_operator_values_raise_nothing_but_syntax_errors(operator, value):
    try:
        parse(operator + value)
    except QuerySyntaxError as e:
        assert 1 <= e.position <= len(operator + value) + 1


def test_nesting_up_to_the_limit_parses():
    assert parse("(" * MAX_DEPTH + "budget" + ")" * MAX_DEPTH) == Words(None, "budget")
    assert parse("NOT " * MAX_DEPTH + "budget") is not None
