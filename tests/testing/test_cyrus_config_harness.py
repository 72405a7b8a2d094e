"""The Cyrus harness runs exactly what `vaultctl cyrus-config` tells the admin to paste.

For each dealer mode: a mail-host home made with `vaultctl init --mail-host --set ...` from the
harness's own notify_config(); the lines `vaultctl cyrus-config` prints for it are the
harness's notification lines of imapd.conf, no more and no fewer, and its cyrus.conf holds the
notifyd service printed (external mode) or none (socket, stream). The `-m cyrus` tests of
tests/ingest/dealer, tests/ingest/worker and tests/testing run those servers.
"""

import pytest
from click.testing import CliRunner

from vault.testing.cyrus_server import CyrusServer
from vaultctl import cli

# the imapd.conf keys vault sets: its event notification, the separator it needs, its sync log
NOTIFY_KEYS = (
    "unixhierarchysep",
    "sync_log",
    "sync_log_channels",
    "event_notifier",
    "notifysocket",
    "notify_external",
    "event_groups",
    "event_extra_params",
)


def vaultctl(home, *args) -> str:
    done = CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return done.output


def mail_host_home_like(server: CyrusServer, home) -> None:
    config = server.notify_config()
    assert config is not None
    sets = [f"dealer.{key}={config['dealer'][key]}" for key in ("mode", "listen_path", "hook_path")]
    sets += [
        f"dealer.notifyd_socket={config['dealer']['notifyd_socket']}",
        f"collector.imapd_conf={config['collector']['imapd_conf']}",
    ]
    vaultctl(home, "init", "--mail-host", *[arg for s in sets for arg in ("--set", s)])


def services_printed(output: str) -> list[str]:
    lines = output.splitlines()
    if "# cyrus.conf, inside SERVICES { }:" not in lines:
        return []
    start = lines.index("# cyrus.conf, inside SERVICES { }:") + 1
    return [line.strip() for line in lines[start : lines.index("", start)]]


@pytest.mark.parametrize("mode", ["external", "socket", "stream"])
def test_harness_runs_the_printed_lines(tmp_path, mode):
    server = CyrusServer(tmp_path / "cyrus", mode=mode)
    mail_host_home_like(server, tmp_path / "home")

    printed = vaultctl(tmp_path / "home", "cyrus-config", "--imapd").splitlines()
    imapd = server.imapd_conf_text().splitlines()
    assert [line for line in imapd if line.split(":", 1)[0] in NOTIFY_KEYS] == printed
    assert {line.split(":", 1)[0] for line in printed} == (
        set(NOTIFY_KEYS) if mode == "external" else set(NOTIFY_KEYS) - {"notify_external"}
    )

    services = services_printed(vaultctl(tmp_path / "home", "cyrus-config"))
    in_cyrus_conf = [line.strip() for line in server.cyrus_conf_text().splitlines()]
    assert [line for line in in_cyrus_conf if line.startswith("notify ")] == services
    assert len(services) == (1 if mode == "external" else 0)


def test_mode_none_has_no_notification_lines(tmp_path):
    server = CyrusServer(tmp_path / "cyrus", mode="none")
    assert server.notify_config() is None
    ours = [line for line in server.imapd_conf_text().splitlines() if line.split(":")[0] in NOTIFY_KEYS]
    assert ours == ["unixhierarchysep: yes", "sync_log: 1", "sync_log_channels: vault"]
    assert "notifyd" not in server.cyrus_conf_text()
