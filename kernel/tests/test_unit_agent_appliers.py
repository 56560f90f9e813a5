"""The node agent's sysctl applier on a scratch root, and the value spelling every applier compares by."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.agent.appliers import (
    APPLIED,
    FAILED,
    UNCHANGED,
    KernelModuleApplier,
    NetworkApplier,
    SysctlApplier,
    apply_key,
    desired_text,
    normalise,
)


def sysctl_file(root: Path, key: str, text: str) -> Path:
    path = root / "proc" / "sys" / Path(*key.split("."))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_changed_sysctl_is_written_under_the_root_and_read_back(tmp_path):
    path = sysctl_file(tmp_path, "net.core.somaxconn", "4096\n")
    result, before, after = apply_key(SysctlApplier(tmp_path), "net.core.somaxconn", "1024")
    assert (result.outcome, result.error, before, after) == (APPLIED, None, "4096", "1024")
    assert path.read_text() == "1024\n"


def test_a_sysctl_in_place_is_not_rewritten(tmp_path):
    path = sysctl_file(tmp_path, "vm.swappiness", "  10 \n")
    stamp = path.stat().st_mtime_ns
    result, before, after = apply_key(SysctlApplier(tmp_path), "vm.swappiness", "10")
    assert (result.outcome, before, after) == (UNCHANGED, "10", "10")
    assert path.stat().st_mtime_ns == stamp and path.read_text() == "  10 \n"


def test_dashes_stay_and_internal_whitespace_collapses(tmp_path):
    sysctl_file(tmp_path, "fs.file-max", "65536")
    sysctl_file(tmp_path, "net.ipv4.tcp_rmem", "4096\t131072   6291456\n")
    applier = SysctlApplier(tmp_path)
    assert apply_key(applier, "fs.file-max", "70000")[0].outcome == APPLIED
    assert applier.observe("net.ipv4.tcp_rmem") == "4096 131072 6291456"
    assert apply_key(applier, "net.ipv4.tcp_rmem", "4096 131072 6291456")[0].outcome == UNCHANGED


def test_an_unknown_sysctl_fails_and_no_file_is_created(tmp_path):
    result, before, after = apply_key(SysctlApplier(tmp_path), "vm.no_such_knob", "1")
    assert result.outcome == FAILED and "no sysctl vm.no_such_knob" in (result.error or "")
    assert (before, after) == (None, None) and not (tmp_path / "proc" / "sys" / "vm" / "no_such_knob").exists()


@pytest.mark.parametrize("key", ["../../etc/passwd", "vm..swappiness", "vm/swappiness", ".vm", ""])
def test_a_key_that_is_not_a_sysctl_name_never_touches_a_path(tmp_path, key):
    result = apply_key(SysctlApplier(tmp_path), key, "1")[0]
    assert result.outcome == FAILED and "is not a sysctl name" in (result.error or "")


class ClampingSysctl(SysctlApplier):
    """Stands in for a kernel that accepts a write and clamps it (as /proc/sys/net/core/somaxconn does on old kernels):
    a scratch file accepts anything, and this machine's real /proc/sys is not ours to change."""

    def write(self, key: str, value: str) -> None:
        super().write(key, str(min(int(value), 4096)))


def test_a_read_back_that_differs_fails_with_both_values(tmp_path):
    sysctl_file(tmp_path, "net.core.somaxconn", "128\n")
    result, before, after = apply_key(ClampingSysctl(tmp_path), "net.core.somaxconn", "65535")
    assert (result.outcome, before, after) == (FAILED, "128", "4096")
    assert result.error == "read back '4096' after writing '65535'"


def test_document_values_are_spelled_as_the_host_spells_them():
    assert [desired_text(v) for v in (1024, True, False, "deny", "  a  b ", [4096, 87380])] == [
        "1024",
        "1",
        "0",
        "deny",
        "a b",
        "4096 87380",
    ]
    assert normalise("\t 1  2\n3 \n") == "1 2 3"


def test_module_and_link_names_are_checked_before_any_command_runs(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "modules").write_text("overlay 151552 0 - Live 0x0000000000000000\nbr_netfilter 32768 0 - Live 0x0\n")
    modules = KernelModuleApplier(tmp_path, "/nonexistent/modprobe")
    assert modules.observe("overlay") == "load" and modules.observe("br-netfilter") == "load" and modules.observe("nf_conntrack") == "block"
    assert apply_key(modules, "overlay", "load")[0].outcome == UNCHANGED
    assert "not a kernel module name" in (apply_key(modules, "x;rm -rf /", "load")[0].error or "")
    network = NetworkApplier(None)
    assert "no network link is configured" in (apply_key(network, "mtu", "1400")[0].error or "")
    assert "manages only mtu" in (apply_key(NetworkApplier("eth0"), "dns.servers", "1.1.1.1")[0].error or "")
