"""deploy/systemd/: the units scripts/install-units.sh writes pass `systemd-analyze verify` with
this checkout's .venv substituted in, without a single warning about them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = sorted(p.name for p in (REPO / "deploy" / "systemd").glob("*.service"))
VAULTCTL = Path(sys.executable).parent / "vaultctl"


def install(dest: Path, *args: str) -> list[str]:
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-units.sh"), "--vaultctl", str(VAULTCTL), *args, str(dest)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_every_unit_is_installed_with_its_paths(tmp_path):
    assert UNITS == [
        "vault-collector.service",
        "vault-dealer.service",
        "vault-worker@.service",
        "vault.service",
    ]
    written = install(tmp_path / "all", "--home", "/srv/vault")
    assert sorted(Path(p).name for p in written) == UNITS
    for unit in UNITS:
        text = (tmp_path / "all" / unit).read_text()
        assert "@VAULTCTL@" not in text and "@VAULT_HOME@" not in text, unit
        assert f"ExecStart={VAULTCTL} " in text and "Environment=VAULT_HOME=/srv/vault" in text
        assert "UMask=0077" in text and "NoNewPrivileges=yes" in text and "ProtectSystem=strict" in text
    assert [Path(p).name for p in install(tmp_path / "mail", "--host", "mail")] == [
        "vault-dealer.service",
        "vault-collector.service",
    ]
    collector = (tmp_path / "all" / "vault-collector.service").read_text()
    assert "LoadCredential=collector-password:" in collector and "PASSWORD_FILE=%d/" in collector


def test_systemd_analyze_verify_has_nothing_to_say(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: apt-get install systemd (scripts/debian-packages-test.txt)"
    install(tmp_path)
    targets = [str(tmp_path / unit) for unit in UNITS] + [str(tmp_path / "vault-worker@1.service")]
    done = subprocess.run([analyze, "verify", "--man=no", *targets], capture_output=True, text=True)
    ours = [str(tmp_path), *(unit.split("@")[0] for unit in UNITS)]
    about_ours = [line for line in (done.stdout + done.stderr).splitlines() if any(s in line for s in ours)]
    assert not about_ours, "\n".join(about_ours)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broken_unit_is_noticed(tmp_path):
    """The check above would see a mistake: an unknown key and a missing program."""
    install(tmp_path)
    unit = tmp_path / "vault.service"
    unit.write_text(unit.read_text().replace("UMask=0077", "UMask=0077\nProtectEverything=yes"))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True
    )
    assert "Unknown key 'ProtectEverything'" in done.stderr


@pytest.mark.parametrize("args", [["--host", "nope"], ["--vaultctl", "/nonexistent/vaultctl"], []])
def test_install_units_refuses_bad_arguments(tmp_path, args):
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-units.sh"), *args] + ([str(tmp_path)] if args else []),
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and done.stderr
