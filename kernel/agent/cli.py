"""The command line: every flag has an environment variable (AION_AGENT_*), the flag winning. docs/kernel.md."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from kernel.agent import VERSION
from kernel.agent.appliers import Applier, KernelModuleApplier, NetworkApplier, SysctlApplier
from kernel.agent.backoff import Backoff
from kernel.agent.client import ControlPlane
from kernel.agent.core import Agent, JsonLog, Options
from kernel.agent.state import AgentState, last_cycle_age

SCOPES = ("sysctl", "kernel_module", "network")
EXIT_USAGE = 64


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"AION_AGENT_{name}", default)


def _flag(p: argparse.ArgumentParser, flag: str, env: str, help: str, default: str | None = None, kind: type = str) -> None:
    """A flag whose default is AION_AGENT_<ENV> (else DEFAULT), named in its help."""
    value = _env(env, default)
    shown = f"AION_AGENT_{env}" + (f", default {default}" if default is not None else "")
    p.add_argument(flag, type=kind, default=kind(value) if value is not None else None, help=f"{help} [{shown}]")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m kernel.agent",
        description="AION node agent: applies this host's approved kernel and network configuration and reports what it observes.",
        epilog="Every flag defaults to its environment variable, shown in brackets. Exit status of --once: 0 applied and "
        "reported, 1 reported with a failed key or scope, 2 the report was not accepted, 64 bad usage.",
    )
    _flag(p, "--url", "URL", "control-plane base URL, e.g. https://aion.example.com")
    _flag(p, "--credential-file", "CREDENTIAL_FILE", "file holding the host's API key (header X-API-Key)")
    _flag(p, "--host", "HOST", "this host's name", default=socket.gethostname())
    _flag(p, "--pool", "POOL", "this host's pool, e.g. gpu or cpu")
    _flag(p, "--scopes", "SCOPES", f"comma-separated scopes to serve, of {', '.join(SCOPES)}", default="sysctl")
    _flag(p, "--root", "ROOT", "the root under which proc/sys and proc/modules are read and written", default="/")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_const", const="once", dest="mode", help="one cycle, one report, then exit")
    mode.add_argument("--watch", action="store_const", const="watch", dest="mode", help="poll until SIGTERM [AION_AGENT_MODE=once|watch]")
    _flag(p, "--interval", "INTERVAL", "--watch: seconds between polls", default="30", kind=float)
    _flag(p, "--heartbeat", "HEARTBEAT", "--watch: seconds between heartbeat reports", default="60", kind=float)
    heal = _env("SELF_HEAL", "false") in ("1", "true", "yes", "on")
    p.add_argument(
        "--self-heal",
        action=argparse.BooleanOptionalAction,
        default=heal,
        help="report a key changed by hand once, then put it back (default: report and leave it) [AION_AGENT_SELF_HEAL]",
    )
    _flag(p, "--modprobe-command", "MODPROBE_COMMAND", "loads with `CMD NAME`, unloads with `CMD -r NAME`", default="modprobe")
    _flag(p, "--ip-command", "IP_COMMAND", "the iproute2 command prefix, e.g. 'ip netns exec NS ip'", default="ip")
    _flag(p, "--network-link", "NETWORK_LINK", "the link whose MTU the network scope sets")
    _flag(p, "--state-file", "STATE_FILE", "what the agent fetched, applied and reported", default="/var/lib/aion-node-agent/state.json")
    _flag(p, "--policy-file", "POLICY_FILE", "a local guardrail policy (the JSON of GET /v1/kernel/policy) instead of fetching it")
    _flag(p, "--report-attempts", "REPORT_ATTEMPTS", "--once: tries per report", default="5", kind=int)
    _flag(p, "--backoff-base", "BACKOFF_BASE", "first retry delay, seconds", default="1", kind=float)
    _flag(p, "--backoff-max", "BACKOFF_MAX", "longest retry delay, seconds", default="300", kind=float)
    _flag(p, "--timeout", "TIMEOUT", "HTTP timeout, seconds", default="10", kind=float)
    p.add_argument(
        "--check-alive",
        type=float,
        metavar="SECONDS",
        help="probe: exit 0 when the state file was saved within SECONDS (the DaemonSet's liveness and readiness)",
    )
    p.add_argument("--version", action="version", version=f"aion-node-agent {VERSION}")
    return p


def build_appliers(args: argparse.Namespace) -> dict[str, Applier]:
    root = Path(args.root)
    return {
        "sysctl": SysctlApplier(root),
        "kernel_module": KernelModuleApplier(root, args.modprobe_command),
        "network": NetworkApplier(args.network_link, args.ip_command),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.check_alive is not None:
        age = last_cycle_age(Path(args.state_file))
        return 0 if age is not None and age <= args.check_alive else 1
    mode = args.mode or _env("MODE")
    scopes = [s.strip() for s in (args.scopes or "").split(",") if s.strip()]
    problems = [f"--{name.replace('_', '-')} is required" for name in ("url", "credential_file", "pool") if not getattr(args, name)]
    problems += [f"unknown scope {s!r} (known: {', '.join(SCOPES)})" for s in scopes if s not in SCOPES]
    if mode not in ("once", "watch"):
        problems.append("one of --once or --watch is required")
    if not scopes:
        problems.append("--scopes names no scope")
    api_key = ""
    if args.credential_file:
        try:
            api_key = Path(args.credential_file).read_text().strip()
        except OSError as exc:
            problems.append(f"cannot read the credential file: {exc.strerror or exc}")
        else:
            if not api_key:
                problems.append("the credential file is empty")
    if problems:
        p.print_usage(sys.stderr)
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE

    options = Options(
        host=args.host,
        pool=args.pool,
        scopes=scopes,
        interval=args.interval,
        heartbeat=args.heartbeat,
        report_attempts=max(1, args.report_attempts),
        backoff_base=args.backoff_base,
        backoff_max=args.backoff_max,
        policy_file=Path(args.policy_file) if args.policy_file else None,
        self_heal=args.self_heal,
    )
    log = JsonLog()
    control_plane = ControlPlane(args.url, api_key, timeout=args.timeout)
    agent = Agent(
        options,
        control_plane,
        build_appliers(args),
        AgentState(Path(args.state_file) if args.state_file else None),
        log=log,
        backoff=Backoff(args.backoff_base, args.backoff_max),
    )
    signal.signal(signal.SIGTERM, agent.stop)
    signal.signal(signal.SIGINT, agent.stop)
    log("start", version=VERSION, host=options.host, pool=options.pool, scopes=scopes, mode=mode, root=args.root)
    try:
        return agent.run_once() if mode == "once" else agent.watch()
    finally:
        control_plane.close()
        log("stop")
