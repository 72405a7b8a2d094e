"""Legal holds: who and what they cover, adding up, releases, and winning over retention."""

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.policy.holds import Hold, HoldError, applies_to, final_decision, holding, parse_date_bound
from vault.policy.rules import KEEP, PURGE, evaluate

from .helpers import UTC, at, item, rule, rules


def hold(matter="smith-v-jones", custodians=("jane",), **extra) -> Hold:
    values: dict[str, Any] = dict(reason="litigation", owner="counsel", created_at=at(2024, 1, 1))
    values.update(extra)
    return Hold(matter, tuple(custodians), **values)


def test_custodians_case_insensitive_and_aliases():
    h = hold(custodians=("Jane", "bob@example.org"))
    assert applies_to(h, item(user="jane"))
    assert applies_to(h, item(user="uuid-7", user_aliases=("bob", "bob@EXAMPLE.org")))
    assert not applies_to(h, item(user="carol"))


@pytest.mark.parametrize(
    "internal, expected",
    [
        (at(2023, 12, 31, 23, 59, 59), False),
        (at(2024, 1, 1), True),  # from is inclusive
        (at(2024, 6, 30, 23, 59, 59), True),  # a day as --to covers the whole day
        (at(2024, 7, 1), False),
    ],
)
def test_date_range(internal, expected):
    h = hold(
        date_from=parse_date_bound("2024-01-01", end=False), date_to=parse_date_bound("2024-06-30", end=True)
    )
    assert applies_to(h, item(internal_date=internal)) is expected


def test_open_ended_ranges():
    assert applies_to(hold(date_from=at(2024, 1, 1)), item(internal_date=at(2099, 1, 1)))
    assert not applies_to(hold(date_from=at(2024, 1, 1)), item(internal_date=at(2023, 1, 1)))
    assert applies_to(hold(date_to=at(2024, 1, 1)), item(internal_date=at(1999, 1, 1)))


def test_query_is_delegated_to_the_caller():
    seen = []

    def matcher(query, facts):
        seen.append((query, facts.item_id))
        return "merger" in facts.folder

    h = hold(query="subject:merger")
    assert applies_to(h, item(folder="user/jane/merger", item_id="a"), matcher)
    assert not applies_to(h, item(folder="user/jane/INBOX", item_id="b"), matcher)
    assert seen == [("subject:merger", "a"), ("subject:merger", "b")]
    # without a matcher the hold is assumed to apply: over-preserving can be undone
    assert applies_to(h, item(folder="user/jane/INBOX"))
    # a custodian outside the hold never reaches the matcher
    assert not applies_to(h, item(user="carol"), matcher) and len(seen) == 2


def test_several_holds_add_up_until_the_last_release():
    a = hold("alpha")
    b = hold("beta", custodians=("jane", "bob"))
    c = hold("gamma", custodians=("bob",))
    facts = item(user="jane")
    assert [h.matter for h in holding(facts, [c, b, a])] == ["alpha", "beta"]
    a = a.released(at(2024, 2, 1), "counsel")
    assert [h.matter for h in holding(facts, [a, b, c])] == ["beta"]
    b = b.released(at(2024, 3, 1), "counsel")
    assert holding(facts, [a, b, c]) == []


def test_release_history_answers_for_a_past_moment():
    h = hold(created_at=at(2024, 1, 1)).released(at(2024, 2, 1), "judge")
    facts = item(user="jane")
    assert not applies_to(h, facts)
    assert applies_to(h, facts, at=at(2024, 1, 15))
    assert not applies_to(h, facts, at=at(2023, 12, 31))
    assert not applies_to(h, facts, at=at(2024, 2, 1))
    assert h.released_by == "judge"
    with pytest.raises(HoldError, match="already released"):
        h.released(at(2024, 3, 1), "judge")


def test_hold_wins_over_retention():
    rs = rules(rule("junk", "purge_after", "30d"))
    facts = item(internal_date=at(2024, 1, 1))
    decision = evaluate(facts, rs, at(2025, 1, 1))
    assert decision.action == PURGE
    final = final_decision(decision, holding(facts, [hold("beta"), hold("alpha")]))
    assert (final.action, final.purge_at, final.held_by) == (KEEP, None, ("alpha", "beta"))
    assert "alpha" in final.reason and "junk" in final.reason
    assert final_decision(decision, []) == decision


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"custodians": ()}, "custodian"),
        ({"custodians": "jane"}, "custodian"),
        ({"reason": " "}, "reason"),
        ({"owner": ""}, "owner"),
        ({"matter": ""}, "matter"),
        ({"matter": "a\nb"}, "matter"),
        ({"created_at": None}, "created_at"),
        ({"date_from": at(2024, 2, 1), "date_to": at(2024, 1, 1)}, "starts after it ends"),
    ],
)
def test_invalid_holds_are_clear_errors(changes, message):
    values: dict[str, Any] = dict(
        matter="m", custodians=("jane",), reason="r", owner="o", created_at=at(2024, 1, 1)
    )
    values.update(changes)
    with pytest.raises(HoldError, match=message):
        Hold(**values)


def test_naive_times_are_refused():
    with pytest.raises(HoldError, match="zone"):
        hold(date_from=datetime(2024, 1, 1))


@pytest.mark.parametrize(
    "text, end, expected",
    [
        ("2024-03-01", False, at(2024, 3, 1)),
        ("2024-03-01", True, at(2024, 3, 1, 23, 59, 59, 999999)),
        ("2024-03-01T12:00Z", True, at(2024, 3, 1, 12)),
    ],
)
def test_date_bounds(text, end, expected):
    assert parse_date_bound(text, end=end) == expected


def test_date_bounds_without_a_zone_are_the_sites():
    berlin = ZoneInfo("Europe/Berlin")
    assert parse_date_bound("2024-03-01T12:00", end=False, zone=berlin) == at(2024, 3, 1, 11)
    assert parse_date_bound("2024-07-01", end=False, zone=berlin) == at(2024, 6, 30, 22)
    assert parse_date_bound("2024-07-01", end=True, zone=berlin) == at(2024, 7, 1, 21, 59, 59, 999999)
    assert parse_date_bound("2024-07-01Z", end=False, zone=berlin) == at(2024, 7, 1)


@pytest.mark.parametrize("text", ["2024-13-01", "yesterday", "2024-03-01T12:00 nonsense", ""])
def test_bad_date_bounds(text):
    with pytest.raises(HoldError):
        parse_date_bound(text, end=False)


@given(st.text(max_size=40), st.booleans())
def test_date_bound_parser_never_raises_anything_else(text, end):
    try:
        value = parse_date_bound(text, end=end)
    except HoldError:
        return
    assert value.tzinfo is not None


# format_time (vault.model) writes fixed-width years: 1000..9999
times = st.datetimes(min_value=datetime(1900, 1, 1), timezones=st.just(UTC))
names = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20).filter(str.strip)


@given(
    names,
    st.lists(names, min_size=1, max_size=4),
    names,
    names,
    times,
    st.one_of(st.none(), names),
    st.one_of(st.none(), times),
    st.one_of(st.none(), times),
)
def test_ledger_data_round_trip(matter, custodians, reason, owner, created, query, start, released):
    h = Hold(
        matter,
        tuple(custodians),
        reason,
        owner,
        created,
        query=query,
        date_from=start,
        released_at=released,
        released_by="x" if released else None,
    )
    data = json.loads(json.dumps(h.to_data()))
    assert Hold.from_data(data) == h


@given(
    st.one_of(
        st.none(),
        st.integers(),
        st.text(),
        st.lists(st.integers()),
        st.dictionaries(
            st.sampled_from(["matter", "custodians", "reason", "owner", "created_at", "date_from", "query"]),
            st.one_of(st.none(), st.text(max_size=30), st.integers(), st.lists(st.text(max_size=5))),
        ),
    )
)
def test_bad_ledger_data_is_a_hold_error(data):
    try:
        Hold.from_data(data)
    except HoldError:
        pass
