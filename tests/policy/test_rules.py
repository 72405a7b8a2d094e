"""Retention rules: matching, age bases, conflict resolution, explain, invalid files."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.config import Config
from vault.policy.explain import explain
from vault.policy.holds import Hold
from vault.policy.rules import (
    KEEP,
    NONE,
    PURGE,
    RulesError,
    evaluate,
    load_rules,
    parse_rules,
    rules_from_config,
)

from .helpers import at, item, rule, rules

REPO = Path(__file__).resolve().parents[2]


def matches(rule_text: str, facts) -> bool:
    return evaluate(facts, rules(rule_text), now=at(2024, 1, 2)).rule is not None


# ---------------------------------------------------------------- match dimensions


@pytest.mark.parametrize(
    "pattern, folder, expected",
    [
        ("user/*/Junk", "user/jane/Junk", True),
        ("user/*/Junk", "user/jane/Junk/old", False),  # * stays in one level
        ("user/*/Junk", "user/jane/junk", False),  # folder names are case-sensitive
        ("user/*", "user/jane/INBOX", False),
        ("user/**", "user/jane/INBOX/sub", True),
        ("user/*/Junk/**", "user/jane/Junk", True),  # trailing /** includes the folder itself
        ("user/*/Junk/**", "user/jane/Junk/2024/q1", True),
        ("user/*/Junk/**", "user/jane/Junky", False),
        ("**/Archive", "user/jane/Archive", True),
        ("**/Archive", "Archive", True),
        ("user/j?ne/INBOX", "user/jane/INBOX", True),
        ("user/j?ne/INBOX", "user/j/ne/INBOX", False),
        ("shared/a+b (x)", "shared/a+b (x)", True),  # regex characters are literal
        ("shared/a+b (x)", "shared/aab (x)", False),
    ],
)
def test_folder_globs(pattern, folder, expected):
    assert matches(rule(folders=[pattern]), item(folder=folder)) is expected


def test_any_of_several_folder_patterns():
    text = rule(folders=["user/*/Trash", "user/*/Deleted Items"])
    assert matches(text, item(folder="user/jane/Deleted Items"))
    assert matches(text, item(folder="user/bob/Trash"))
    assert not matches(text, item(folder="user/bob/INBOX"))


def test_users_case_insensitive_and_aliases():
    text = rule(users=["Jane", "bob@example.org"])
    assert matches(text, item(user="jane"))
    assert not matches(text, item(user="carol"))
    # the custodian is a directory id; the rule was written with an address
    assert matches(text, item(user="0f9c-uuid", user_aliases=("bob", "BOB@example.org")))


def test_groups():
    text = rule(groups=["Legal"])
    assert matches(text, item(groups=("finance", "legal")))
    assert not matches(text, item(groups=("finance",)))
    assert not matches(text, item())


def test_flags_any_of_with_canonical_system_flags():
    text = rule(flags=["\\Deleted", "$Junk"])
    assert matches(text, item(flags=("\\deleted",)))
    assert matches(text, item(flags=("\\Seen", "$junk")))
    assert not matches(text, item(flags=("\\Seen",)))


@pytest.mark.parametrize(
    "folder, is_junk",
    [
        ("user/jane/Junk", True),
        ("user/jane/Spam", True),
        ("user/jane/Junk E-mail", True),
        ("user/jane/SPAM/2024", True),  # below a junk folder
        ("user/spam/INBOX", False),  # a user called spam
        ("user/jane/INBOX", False),
        ("user/jane/Junkyard", False),
    ],
)
def test_junk_folders(folder, is_junk):
    assert matches(rule(junk=True), item(folder=folder)) is is_junk
    assert matches(rule(junk=False), item(folder=folder)) is not is_junk


def test_all_given_dimensions_must_match():
    text = rule(folders=["user/*/INBOX"], groups=["legal"], flags=["\\Flagged"])
    full = item(groups=("legal",), flags=("\\Flagged",))
    assert matches(text, full)
    assert not matches(text, item(groups=("legal",)))
    assert not matches(text, item(flags=("\\Flagged",)))


def test_a_rule_matches_everything_only_when_it_says_so():
    assert "all = true" in rule()
    assert matches(rule(), item(folder="shared/anything", user="x"))
    # the spelling at the rule's level, and the older one in [rule.match], mean the same
    said = '[[rule]]\nname = "a"\npurge_after = "1d"\nmatch = "all"\n'
    assert matches(said, item(folder="shared/anything", user="x"))
    [rule_a] = parse_rules(said, "policies/x.toml")
    assert rule_a.match == parse_rules(rule("a", "purge_after", "1d"), "policies/x.toml")[0].match
    for text, what in (
        ('[[rule]]\nname = "a"\npurge_after = "1d"\n', "no [rule.match]"),
        ('[[rule]]\nname = "a"\npurge_after = "1d"\n[rule.match]\n', "an empty [rule.match]"),
        ('[[rule]]\nname = "a"\npurge_after = "1d"\nmatch = {}\n', "an empty [rule.match]"),
    ):
        with pytest.raises(RulesError, match=r"rule 'a'.*" + re.escape(what)):
            parse_rules(text, "policies/x.toml")


# ---------------------------------------------------------------- age bases


def test_internal_date_basis():
    rs = rules(rule("j", "purge_after", "30d"))
    facts = item(internal_date=at(2024, 1, 1))
    assert evaluate(facts, rs, now=at(2024, 1, 30)).action == KEEP
    d = evaluate(facts, rs, now=at(2024, 1, 31))
    assert d.rule is not None
    assert (d.action, d.purge_at, d.rule.name) == (PURGE, at(2024, 1, 31), "j")


def test_expunged_basis_counts_from_the_expunge_and_needs_one():
    rs = rules(rule("deleted", "purge_after", "90d", basis="expunged"))
    live = item(internal_date=at(2020, 1, 1))
    assert evaluate(live, rs, now=at(2030, 1, 1)).action == NONE
    gone = item(internal_date=at(2020, 1, 1), expunged_at=at(2024, 1, 1))
    assert evaluate(gone, rs, now=at(2024, 3, 30)).action == KEEP
    d = evaluate(gone, rs, now=at(2024, 3, 31))
    assert (d.action, d.purge_at) == (PURGE, at(2024, 3, 31))


# ---------------------------------------------------------------- conflicts


def test_keep_beats_shorter_purge_then_purge_applies():
    rs = rules(rule("default", "keep_for", "7y") + rule("junk", "purge_after", "30d", junk=True))
    junk = item(folder="user/jane/Junk", internal_date=at(2020, 1, 1))
    d = evaluate(junk, rs, now=at(2021, 1, 1))
    assert d.rule is not None and d.purge_rule is not None
    assert (d.action, d.rule.name, d.purge_rule.name, d.purge_at) == (KEEP, "default", "junk", at(2027, 1, 1))
    assert evaluate(junk, rs, now=at(2027, 1, 1)).action == PURGE
    inbox = item(internal_date=at(2020, 1, 1))
    assert evaluate(inbox, rs, now=at(2030, 1, 1)).action == NONE  # kept 7y, nothing purges


def test_longer_purge_beats_shorter_keep():
    rs = rules(rule("keep", "keep_for", "1y") + rule("purge", "purge_after", "2y"))
    d = evaluate(item(internal_date=at(2020, 1, 1)), rs, now=at(2021, 6, 1))
    assert d.rule is not None
    assert (d.action, d.rule.name, d.purge_at) == (KEEP, "purge", at(2022, 1, 1))


def test_longest_of_several_purges_wins():
    rs = rules(rule("short", "purge_after", "30d") + rule("long", "purge_after", "90d"))
    d = evaluate(item(internal_date=at(2024, 1, 1)), rs, now=at(2024, 2, 15))
    assert d.rule is not None
    assert (d.action, d.rule.name, d.purge_at) == (KEEP, "long", at(2024, 3, 31))


def test_keep_wins_a_tie_with_purge():
    rs = rules(rule("a-purge", "purge_after", "12m") + rule("z-keep", "keep_for", "1y"))
    d = evaluate(item(internal_date=at(2024, 1, 1)), rs, now=at(2024, 6, 1))
    assert d.rule is not None
    assert d.rule.name == "z-keep"
    assert d.purge_at == at(2025, 1, 1)  # a purge rule matches, so it goes at the end


def test_same_action_tie_goes_to_smaller_name():
    rs = rules(rule("beta", "keep_for", "1y") + rule("alpha", "keep_for", "12m"))
    d = evaluate(item(), rs, now=at(2024, 6, 1))
    assert d.rule is not None
    assert d.rule.name == "alpha"


def test_keep_only_rules_end_in_none():
    rs = rules(rule("k", "keep_for", "1y"))
    facts = item(internal_date=at(2024, 1, 1))
    kept = evaluate(facts, rs, now=at(2024, 12, 31))
    assert (kept.action, kept.retain_until, kept.purge_at) == (KEEP, at(2025, 1, 1), None)
    assert evaluate(facts, rs, now=at(2025, 1, 1)).action == NONE


def test_no_rules_is_none():
    d = evaluate(item(), [], now=at(2024, 1, 1))
    assert (d.action, d.rule) == (NONE, None)


rule_specs = st.lists(
    st.tuples(
        st.sampled_from(["keep_for", "purge_after"]),
        st.sampled_from(["30d", "90d", "3m", "1y", "12m", "365d", "7y"]),
        st.sampled_from([None, "expunged"]),
        st.booleans(),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(rule_specs, st.randoms(use_true_random=False))
def test_decision_is_independent_of_rule_order(specs, rnd):
    text = "".join(
        rule(f"r{i}", a, d, b, **({"junk": True} if j else {})) for i, (a, d, b, j) in enumerate(specs)
    )
    rs = rules(text)
    facts = item(folder="user/jane/Junk", internal_date=at(2020, 1, 1), expunged_at=at(2021, 1, 1))
    shuffled = list(rs)
    rnd.shuffle(shuffled)
    now = at(2024, 1, 1)
    first, second = evaluate(facts, rs, now), evaluate(facts, shuffled, now)
    assert (first.action, first.rule, first.purge_at) == (second.action, second.rule, second.purge_at)
    # no matching rule ends later than the winner (longest retention wins)
    assert all(r.ends_at(facts) <= first.retain_until for r in rs if r.why_not(facts) is None)


# ---------------------------------------------------------------- explain


def test_explain_names_the_winner_the_losers_and_the_hold():
    rs = rules(
        rule("default", "keep_for", "7y")
        + rule("junk", "purge_after", "30d", junk=True)
        + rule("deleted", "purge_after", "90d", basis="expunged"),
        "policies/x.toml",
    )
    facts = item(folder="user/jane/Junk", internal_date=at(2024, 1, 1))
    text = explain(facts, rs, at(2024, 6, 1))
    lines = text.splitlines()
    assert any("default" in line and "wins" in line for line in lines)
    assert any(line.strip().startswith("- deleted") and "not expunged" in line for line in lines)
    assert "2031-01-01" in text and "policies/x.toml" in text
    assert lines[-1].startswith("decision: keep")

    hold = Hold("smith-v-jones", ("jane",), "litigation", "counsel", at(2024, 2, 1))
    held = explain(facts, rs, at(2040, 1, 1), holds=[hold])
    assert "smith-v-jones" in held and held.splitlines()[-1].startswith("decision: keep")
    assert explain(facts, rs, at(2040, 1, 1)).splitlines()[-1].startswith("decision: purge")


# ---------------------------------------------------------------- files

BAD = {
    "not toml": ("[[rule]\nname=", "not valid TOML"),
    "no action": ('[[rule]]\nname = "a"\n', "exactly one of keep_for or purge_after"),
    "no match": (
        '[[rule]]\nname = "a"\nkeep_for = "1y"\n',
        'match = "all" for a rule that matches every item',
    ),
    "match neither all nor a table": (
        '[[rule]]\nname = "a"\nkeep_for = "1y"\nmatch = "everything"\n',
        "'match' must be \"all\" (every item) or a table",
    ),
    "all not true": (
        '[[rule]]\nname = "a"\nkeep_for = "1y"\n[rule.match]\nall = false\n',
        "match.all can only be true",
    ),
    "all and more": (
        '[[rule]]\nname = "a"\nkeep_for = "1y"\n[rule.match]\nall = true\njunk = true\n',
        "takes no other key",
    ),
    "two actions": ('[[rule]]\nname = "a"\nkeep_for = "1y"\npurge_after = "1d"\n', "exactly one"),
    "bad duration": ('[[rule]]\nname = "a"\nkeep_for = "seven years"\n', "keep_for: not a duration"),
    "bad basis": ('[[rule]]\nname = "a"\nkeep_for = "1y"\nbasis = "arrival"\n', "basis must be"),
    "unknown key": ('[[rule]]\nname = "a"\nkeep_for = "1y"\nkeepfor = "2y"\n', "unknown key"),
    "unknown match": (
        '[[rule]]\nname = "a"\nkeep_for = "1y"\n[rule.match]\nfolder = ["x"]\n',
        "unknown match key",
    ),
    "flags not list": (
        '[[rule]]\nname = "a"\nkeep_for = "1y"\n[rule.match]\nflags = 3\n',
        "match.flags must be a list",
    ),
    "junk not bool": (
        '[[rule]]\nname = "a"\nkeep_for = "1y"\n[rule.match]\njunk = "yes"\n',
        "match.junk must be true or false",
    ),
    "no name": ('[[rule]]\nkeep_for = "1y"\n', "needs a name"),
    "bad name": ('[[rule]]\nname = "a b"\nkeep_for = "1y"\n', "needs a name"),
    "top level": ('keep_for = "1y"\n', "unknown top-level key"),
    "rule not array": ('[rule]\nname = "a"\nkeep_for = "1y"\n', "write [[rule]]"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_rule_text_names_file_and_rule(case):
    text, what = BAD[case]
    with pytest.raises(RulesError) as e:
        parse_rules(text, "policies/bad.toml")
    message = str(e.value)
    assert "policies/bad.toml" in message and what in message
    if 'name = "a"' in text and case != "rule not array":
        assert "rule 'a'" in message


def test_load_reports_every_problem_in_every_file(tmp_path):
    (tmp_path / "a.toml").write_text(rule("dup") + '[[rule]]\nname = "x"\nkeep_for = "1q"\n')
    (tmp_path / "b.toml").write_text(rule("dup"))
    (tmp_path / "c.toml").write_bytes(b"\xff\xfe[[rule]]")
    (tmp_path / "ignored.txt").write_text("not a rule file")
    with pytest.raises(RulesError) as e:
        load_rules(tmp_path)
    wheres = [p.where for p in e.value.problems]
    assert any("a.toml" in w and "'x'" in w for w in wheres)
    assert any("b.toml" in w and "'dup'" in w for w in wheres)
    assert any("c.toml" in w for w in wheres)
    assert "a.toml" in str(e.value)  # the duplicate names the first file


def test_load_sorts_by_name_and_missing_directory_is_empty(tmp_path):
    (tmp_path / "z.toml").write_text(rule("alpha") + rule("gamma"))
    (tmp_path / "a.toml").write_text(rule("beta"))
    assert [r.name for r in load_rules(tmp_path)] == ["alpha", "beta", "gamma"]
    assert load_rules(tmp_path / "nope") == []


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_arbitrary_text_is_rules_or_a_rules_error(text):
    try:
        parse_rules(text, "fuzz.toml")
    except RulesError as e:
        assert "fuzz.toml" in str(e)


toml_values = st.one_of(
    st.text(max_size=8), st.integers(), st.booleans(), st.lists(st.text(max_size=5), max_size=3)
)


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.sampled_from(["name", "keep_for", "purge_after", "basis", "match", "description", "extra"]),
        toml_values,
        max_size=5,
    )
)
def test_arbitrary_rule_tables_are_rules_or_errors(table):
    def render(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return '"' + v.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
        return "[" + ", ".join(render(x) for x in v) + "]"

    text = "[[rule]]\n" + "".join(f"{k} = {render(v)}\n" for k, v in table.items())
    try:
        parse_rules(text, "fuzz.toml")
    except RulesError as e:
        assert "fuzz.toml" in str(e)


# ---------------------------------------------------------------- shipped examples


def test_example_policies_load_and_do_what_they_say(tmp_path):
    rs = load_rules(REPO / "policies")
    assert {r.name for r in rs} >= {"default", "junk", "deleted"}
    received = at(2024, 1, 1)
    junk = item(folder="user/jane/Junk", internal_date=received)
    assert evaluate(junk, rs, received + timedelta(days=29)).action == KEEP
    assert evaluate(junk, rs, received + timedelta(days=30)).action == PURGE
    inbox = item(internal_date=received)
    assert evaluate(inbox, rs, at(2030, 12, 31)).action == KEEP
    assert evaluate(inbox, rs, at(2031, 1, 1)).action == NONE
    expunged_junk = item(folder="user/jane/Junk", internal_date=received, expunged_at=at(2024, 1, 10))
    d = evaluate(expunged_junk, rs, at(2024, 3, 1))
    assert d.rule is not None
    assert (d.action, d.rule.name, d.purge_at) == (KEEP, "deleted", at(2024, 4, 9))


def test_rules_path_from_config(tmp_path):
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "one.toml").write_text(rule("only"))
    assert [r.name for r in rules_from_config(Config.defaults(tmp_path))] == ["only"]
