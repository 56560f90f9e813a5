"""Appliers: one per scope, each reads a key's observed value and changes it to the desired one.

Every applier compares before it writes: a key whose observed value already is the desired one is ``unchanged``
and is not rewritten (so a restart, or a heartbeat cycle, touches nothing that is in place). A change is read
back after it is made; a read-back that differs is ``failed``. Values are compared as text: the observed value
stripped with its internal whitespace collapsed (``normalise``), the desired one as ``desired_text`` spells it.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

APPLIED, UNCHANGED, FAILED = "applied", "unchanged", "failed"
COMMAND_TIMEOUT_SECONDS = 30
# A sysctl name: dotted words; never a path component that climbs out of /proc/sys.
SYSCTL_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
MODULE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class KeyResult:
    outcome: str
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "error": self.error}


class ApplyError(Exception):
    """A key could not be read or changed; the message is what the report says."""


def normalise(text: str) -> str:
    """An observed value as reported: stripped, internal whitespace collapsed to one space."""
    return " ".join(text.split())


def desired_text(value: Any) -> str:
    """A document value as the host spells it: booleans as 1/0 (sysctl's own spelling), the rest as text."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return " ".join(desired_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 2.0 is "2", as the kernel and the control plane (kernel.hosts.observed_form) spell it
    return normalise(str(value))


def split_command(command: str | Sequence[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def run_command(argv: list[str]) -> str:
    """Runs ARGV; its stdout, or ApplyError with its stderr (a missing program or a timeout too)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS, check=False)
    except FileNotFoundError as exc:
        raise ApplyError(f"{argv[0]!r} not found: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ApplyError(f"{shlex.join(argv)} did not finish in {COMMAND_TIMEOUT_SECONDS} s") from exc
    if done.returncode != 0:
        raise ApplyError(f"{shlex.join(argv)} exited {done.returncode}: {normalise(done.stderr or done.stdout)[:500]}")
    return done.stdout


class Applier(Protocol):
    scope: str

    def observe(self, key: str) -> str:
        """The key's observed value (normalised); ApplyError when it cannot be read."""

    def write(self, key: str, value: str) -> None:
        """Changes the key to VALUE; ApplyError when it cannot."""


def apply_key(applier: Applier, key: str, value: str) -> tuple[KeyResult, str | None, str | None]:
    """Brings KEY to VALUE through APPLIER: (the outcome, the value before, the value after); None for a value that
    could not be read."""
    try:
        before = applier.observe(key)
    except ApplyError as exc:
        return KeyResult(FAILED, str(exc)), None, None
    if before == value:
        return KeyResult(UNCHANGED), before, before
    try:
        applier.write(key, value)
        after = applier.observe(key)
    except ApplyError as exc:
        try:
            return KeyResult(FAILED, str(exc)), before, applier.observe(key)
        except ApplyError:
            return KeyResult(FAILED, str(exc)), before, None
    if after != value:
        return KeyResult(FAILED, f"read back {after!r} after writing {value!r}"), before, after
    return KeyResult(APPLIED), before, after


class SysctlApplier:
    """``sysctl``: ``<root>/proc/sys/<key with dots as slashes>``, written and read back."""

    scope = "sysctl"

    def __init__(self, root: Path) -> None:
        self.base = root / "proc" / "sys"

    def path(self, key: str) -> Path:
        if not SYSCTL_KEY.match(key):
            raise ApplyError(f"{key!r} is not a sysctl name")
        return self.base.joinpath(*key.split("."))

    def observe(self, key: str) -> str:
        path = self.path(key)
        try:
            return normalise(path.read_text())
        except FileNotFoundError as exc:
            raise ApplyError(f"no sysctl {key} ({path} does not exist)") from exc
        except OSError as exc:
            raise ApplyError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def write(self, key: str, value: str) -> None:
        path = self.path(key)
        try:
            # No truncate-and-create: /proc/sys files exist; a missing one is an unknown sysctl, not a file to make.
            with path.open("r+") as handle:
                handle.write(value + "\n")
                handle.truncate()  # a scratch root's regular file keeps no tail of a longer old value
        except FileNotFoundError as exc:
            raise ApplyError(f"no sysctl {key} ({path} does not exist)") from exc
        except OSError as exc:
            raise ApplyError(f"cannot write {path}: {exc.strerror or exc}") from exc


class KernelModuleApplier:
    """``kernel_module``: ``load`` or ``block``; loaded modules from ``<root>/proc/modules``, changed by the modprobe command
    (``<command> NAME`` loads, ``<command> -r NAME`` unloads)."""

    scope = "kernel_module"
    CHOICES = ("load", "block")

    def __init__(self, root: Path, modprobe: str | Sequence[str] = "modprobe") -> None:
        self.modules_file = root / "proc" / "modules"
        self.modprobe = split_command(modprobe)

    @staticmethod
    def module_name(key: str) -> str:
        if not MODULE_NAME.match(key):
            raise ApplyError(f"{key!r} is not a kernel module name")
        return key.replace("-", "_")  # /proc/modules spells every module with underscores

    def loaded(self) -> set[str]:
        try:
            text = self.modules_file.read_text()
        except OSError as exc:
            raise ApplyError(f"cannot read {self.modules_file}: {exc.strerror or exc}") from exc
        return {line.split()[0] for line in text.splitlines() if line.strip()}

    def observe(self, key: str) -> str:
        return "load" if self.module_name(key) in self.loaded() else "block"

    def write(self, key: str, value: str) -> None:
        if value not in self.CHOICES:
            raise ApplyError(f"{value!r} is neither 'load' nor 'block'")
        name = self.module_name(key)
        run_command([*self.modprobe, name] if value == "load" else [*self.modprobe, "-r", name])


class NetworkApplier:
    """``network``: the ``mtu`` of one named link, through iproute2 (``ip -j link show``, ``ip link set dev X mtu N``).

    ``ip`` is a command prefix, so a test can run it inside a network namespace (``ip netns exec NS ip``)."""

    scope = "network"
    KEYS = ("mtu",)

    def __init__(self, link: str | None, ip: str | Sequence[str] = "ip") -> None:
        self.link = link
        self.ip = split_command(ip)

    def _link(self, key: str) -> str:
        if key not in self.KEYS:
            raise ApplyError(f"the network applier manages only {', '.join(self.KEYS)}, not {key!r}")
        if not self.link:
            raise ApplyError("no network link is configured (--network-link)")
        return self.link

    def observe(self, key: str) -> str:
        link = self._link(key)
        out = run_command([*self.ip, "-j", "link", "show", "dev", link])
        try:
            return str(int(json.loads(out)[0]["mtu"]))
        except (ValueError, LookupError, TypeError) as exc:
            raise ApplyError(f"unexpected `ip -j link show` output for {link}: {out[:200]!r}") from exc

    def write(self, key: str, value: str) -> None:
        link = self._link(key)
        if not value.isdigit():
            raise ApplyError(f"an MTU is a whole number, not {value!r}")
        run_command([*self.ip, "link", "set", "dev", link, "mtu", value])
