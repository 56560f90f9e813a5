"""The node agent's kernel_module applier: /proc/modules under a scratch root, and a recording script in place of
modprobe (no module may be loaded into this machine's kernel). The script logs its arguments and edits the
scratch proc/modules as modprobe would change the real one."""

from __future__ import annotations

import os
from pathlib import Path

from kernel.agent.appliers import APPLIED, FAILED, UNCHANGED, KernelModuleApplier, apply_key

RECORDING_MODPROBE = """#!/bin/sh
# Stands in for modprobe: records its arguments, then loads (appends) or unloads (-r: removes) in the scratch root.
echo "$*" >> "{log}"
case "$1" in
  -r) grep -v "^$2 " "{modules}" > "{modules}.new"; mv "{modules}.new" "{modules}" ;;
  fail_*) echo "modprobe: FATAL: Module $1 not found in directory /lib/modules/6.1.0" >&2; exit 1 ;;
  lazy) ;;
  *) echo "$1 16384 0 - Live 0x0000000000000000" >> "{modules}" ;;
esac
"""


def recording_modprobe(tmp_path: Path, loaded: str = "") -> tuple[Path, Path, Path]:
    """(the script, its log, the scratch root) with LOADED as the root's proc/modules."""
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    modules = root / "proc" / "modules"
    modules.write_text(loaded)
    log = tmp_path / "modprobe.log"
    log.write_text("")
    script = tmp_path / "modprobe"
    script.write_text(RECORDING_MODPROBE.format(log=log, modules=modules))
    os.chmod(script, 0o700)
    return script, log, root


def test_load_and_block_run_the_command_and_read_proc_modules_back(tmp_path):
    script, log, root = recording_modprobe(tmp_path, "overlay 151552 2 - Live 0x0000000000000000\n")
    applier = KernelModuleApplier(root, str(script))
    result, before, after = apply_key(applier, "br_netfilter", "load")
    assert (result.outcome, result.error, before, after) == (APPLIED, None, "block", "load")
    result, before, after = apply_key(applier, "overlay", "block")
    assert (result.outcome, before, after) == (APPLIED, "load", "block")
    assert log.read_text().splitlines() == ["br_netfilter", "-r overlay"]


def test_a_module_in_place_runs_no_command(tmp_path):
    script, log, root = recording_modprobe(tmp_path, "nf_conntrack 172032 1 - Live 0x0\n")
    applier = KernelModuleApplier(root, str(script))
    assert apply_key(applier, "nf_conntrack", "load")[0].outcome == UNCHANGED
    assert apply_key(applier, "nvidia_uvm", "block")[0].outcome == UNCHANGED
    assert log.read_text() == ""


def test_a_failing_command_fails_the_key_with_its_error(tmp_path):
    script, _log, root = recording_modprobe(tmp_path)
    result, before, after = apply_key(KernelModuleApplier(root, str(script)), "fail_nvidia", "load")
    assert result.outcome == FAILED and (before, after) == ("block", "block")
    assert "exited 1" in (result.error or "") and "Module fail_nvidia not found" in (result.error or "")


def test_a_command_that_succeeds_without_loading_fails_the_read_back(tmp_path):
    script, _log, root = recording_modprobe(tmp_path)
    result = apply_key(KernelModuleApplier(root, str(script)), "lazy", "load")[0]
    assert result.outcome == FAILED and result.error == "read back 'block' after writing 'load'"


def test_a_missing_command_or_proc_modules_fails_the_key(tmp_path):
    script, _log, root = recording_modprobe(tmp_path)
    assert "not found" in (apply_key(KernelModuleApplier(root, str(tmp_path / "nope")), "overlay", "load")[0].error or "")
    assert "cannot read" in (apply_key(KernelModuleApplier(tmp_path / "elsewhere", str(script)), "overlay", "load")[0].error or "")
