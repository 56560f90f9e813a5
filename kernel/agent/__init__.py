"""The node agent: applies a host's approved kernel and network configuration and reports what it observes.

It runs on every node (``python -m kernel.agent``, deploy/k8s/node-agent.yaml), apart from the control plane:
standard library and httpx only, no Django and nothing of ``aion`` or the apps (an import-linter contract in
pyproject.toml and kernel/tests/test_it_agent_isolation.py hold it to that). It pulls the desired document of
each scope from ``GET /v1/kernel/config/{scope}``, verifies its sha256, refuses keys the guardrail policy does not
allow, applies the difference through one applier per scope (``sysctl``, ``kernel_module``, ``network``) and
reports the observed state to ``POST /v1/kernel/hosts/{host}/report``. docs/kernel.md, "Node agent".
"""

VERSION = "1.0.0"
