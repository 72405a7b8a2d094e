"""vault.directory against a real OpenLDAP slapd (fixture in tests/servers/slapd.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from vault.config import Config
from vault.directory import LDAP, NAME_ONLY, Directory

pytestmark = pytest.mark.slapd


class FakeClock:
    def __init__(self):
        self.now = datetime(2024, 1, 1, tzinfo=UTC)

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)


def directory(home, slapd, clock=None, **ldap) -> Directory:
    config = Config.defaults(home)
    settings = dict(
        url=slapd.url, base_dn=slapd.suffix, bind_dn=slapd.admin_dn, bind_password=slapd.admin_password
    )
    config.values["ldap"].update({**settings, **ldap})
    return Directory.from_config(config, clock=clock or FakeClock())


@pytest.fixture
def clock():
    return FakeClock()


def test_resolve_by_uid_and_by_mail_alias(tmp_path, slapd):
    alice_id = slapd.entry_uuid(f"uid=alice,{slapd.people}")
    d = directory(tmp_path, slapd)
    by_login = d.resolve("alice")
    assert by_login.id == alice_id and by_login.source == LDAP
    assert by_login.login == "alice"
    assert by_login.display_name == "Alice Example"
    assert set(by_login.mails) == {"alice@feas.local", "alice.example@feas.local"}
    assert by_login.groups == ("legal",)
    assert d.resolve("Alice.Example@FEAS.local").id == alice_id
    d.close()


def test_display_name_falls_back_to_cn_and_groups(tmp_path, slapd):
    d = directory(tmp_path, slapd)
    carol = d.resolve("carol@feas.local")
    assert carol.display_name == "Carol Cash"
    assert carol.groups == ("finance",)
    assert carol.id == slapd.entry_uuid(f"uid=carol,{slapd.people}")


def test_posix_groups_by_member_uid(tmp_path, slapd):
    d = directory(tmp_path, slapd, group_membership="memberUid")
    assert d.resolve("alice").groups == ("staff",)
    assert d.resolve("bob").groups == ()


def test_groups_from_member_of(tmp_path, slapd):
    d = directory(tmp_path, slapd, group_membership="memberOf")
    assert d.resolve("bob").groups == ("legal",)
    assert d.resolve("carol").groups == ("finance",)


def test_rename_keeps_the_id(tmp_path, slapd):
    dn = slapd.add_user("dave", "Dave Rename", ["dave@feas.local"])
    slapd.add_to_group("legal", dn)
    d = directory(tmp_path, slapd)
    before = d.resolve("dave")
    with slapd.admin() as conn:
        conn.modify_dn(dn, "uid=david", delete_old_dn=True)
    after = d.resolve("david")
    assert after.id == before.id == slapd.entry_uuid(f"uid=david,{slapd.people}")
    assert after.login == "david"
    assert before.login == "dave"


def test_cached_names_resolve_while_ldap_is_down(tmp_path, slapd, clock):
    d = directory(tmp_path, slapd, clock)
    alice = d.resolve("alice")
    slapd.stop()
    assert d.resolve("alice") == alice
    assert d.resolve("alice@feas.local") == alice  # cached under its addresses too
    # a new process reads the SQLite cache
    again = directory(tmp_path, slapd, clock)
    assert again.resolve("alice") == alice
    # past the TTL the server is asked; unreachable, the stale entry still has the real id
    clock.advance(3601)
    assert again.resolve("alice") == alice
    assert d.pending_backfill() == []


def test_down_means_name_only_then_backfill(tmp_path, slapd, clock):
    dn = slapd.add_user("erin", "Erin Late", ["erin@feas.local"])
    d = directory(tmp_path, slapd, clock)
    slapd.stop()
    user = d.resolve("Erin")
    assert (user.id, user.login, user.source) == ("erin", "erin", NAME_ONLY)
    assert d.resolve("erin@feas.local").source == NAME_ONLY
    assert d.pending_backfill() == ["erin", "erin@feas.local"]
    assert d.backfill() == {}  # still down: the queue stays
    assert d.pending_backfill() == ["erin", "erin@feas.local"]

    slapd.start()
    erin_id = slapd.entry_uuid(dn)
    assert d.backfill() == {"erin": erin_id, "erin@feas.local": erin_id}
    assert d.pending_backfill() == []
    assert d.resolve("erin").id == erin_id


def test_pending_names_survive_a_restart(tmp_path, slapd, clock):
    dn = slapd.add_user("frank", "Frank Queue")
    d = directory(tmp_path, slapd, clock)
    slapd.stop()
    d.resolve("frank")
    d.close()
    slapd.start()
    later = directory(tmp_path, slapd, clock)
    assert later.pending_backfill() == ["frank"]
    assert later.backfill() == {"frank": slapd.entry_uuid(dn)}


def test_a_down_server_is_left_alone_until_the_retry_time(tmp_path, slapd, clock):
    slapd.add_user("gina", "Gina Backoff")
    d = directory(tmp_path, slapd, clock, retry_seconds=30.0)
    slapd.stop()
    assert d.resolve("gina").source == NAME_ONLY
    slapd.start()
    clock.advance(29)
    assert d.resolve("gina").source == NAME_ONLY  # not asked again yet
    clock.advance(1)
    assert d.resolve("gina").source == LDAP


def test_unknown_names_are_name_only_and_not_queued(tmp_path, slapd):
    d = directory(tmp_path, slapd)
    user = d.resolve("shared-folder-owner")
    assert (user.id, user.source) == ("shared-folder-owner", NAME_ONLY)
    assert d.pending_backfill() == []


def test_filter_characters_are_escaped(tmp_path, slapd):
    d = directory(tmp_path, slapd)
    assert d.resolve("*").source == NAME_ONLY  # not "everyone"
    assert d.resolve("alice)(uid=*").source == NAME_ONLY


def test_ambiguous_names_are_name_only(tmp_path, slapd):
    slapd.add_user("team1", "Team One", ["team@feas.local"])
    slapd.add_user("team2", "Team Two", ["team@feas.local"])
    assert directory(tmp_path, slapd).resolve("team@feas.local").source == NAME_ONLY


def test_configurable_id_attribute(tmp_path, slapd):
    # OpenLDAP has no nsUniqueId (389-DS and Kolab do); any attribute can be the id.
    with slapd.admin() as conn:
        conn.modify(f"uid=bob,{slapd.people}", {"employeeNumber": [("MODIFY_REPLACE", ["E-2002"])]})
    d = directory(tmp_path, slapd, id_attribute="employeeNumber")
    assert d.resolve("bob").id == "E-2002"
    assert d.resolve("alice@feas.local").id == "E-1001"
    # an entry without that attribute cannot get a stable id: name-only
    assert d.resolve("carol").source == NAME_ONLY


def test_wrong_password_does_not_block(tmp_path, slapd):
    d = directory(tmp_path, slapd, bind_password="wrong")
    assert d.resolve("alice").source == NAME_ONLY
    assert d.pending_backfill() == ["alice"]


def test_anonymous_bind(tmp_path, slapd):
    config = Config.defaults(tmp_path)
    config.values["ldap"].update(url=slapd.url, base_dn=slapd.suffix)
    d = Directory.from_config(config)
    assert d.resolve("alice").id == slapd.entry_uuid(f"uid=alice,{slapd.people}")


def test_a_hung_server_times_out_to_name_only(tmp_path, slapd, clock):
    """slapd stopped with SIGSTOP accepts TCP connections but never answers."""
    import os
    import signal
    import threading

    slapd.add_user("hank", "Hank Hung")
    d = directory(tmp_path, slapd, clock, timeout_seconds=1.0)
    pid = int(slapd.pidfile.read_text().split()[0])
    results = []
    os.kill(pid, signal.SIGSTOP)
    try:
        worker = threading.Thread(target=lambda: results.append(d.resolve("hank")), daemon=True)
        worker.start()
        worker.join(60)  # a liveness bound, not a speed requirement
    finally:
        os.kill(pid, signal.SIGCONT)
    assert results and results[0].source == NAME_ONLY
    assert d.pending_backfill() == ["hank"]
