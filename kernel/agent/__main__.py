"""``python -m kernel.agent``: the node agent's command line (kernel.agent.cli)."""

from kernel.agent.cli import main

raise SystemExit(main())
