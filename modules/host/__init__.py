"""The module host: the process of the ``aion-module-host`` image (Dockerfile target ``module-host``).

Run it with ``python -m modules.host`` (``--help`` lists every option and its environment variable). It owns
one module's runtime (docs/modules.md, "Module host"):

- start-up: it loads its own module manifest and verifies it with ``modules.signing.verify_manifest``, the
  check registration uses, against the trusted Cosign keys of ``AION_COSIGN_PUBLIC_KEYS``; it refuses to
  start (exit 3) when the manifest is unsigned, tampered with or signed by a key it does not trust
  (``identity``);
- ``GET /healthz`` and ``GET /readyz`` (the health poller and the kubelet), ``GET /metrics`` (Prometheus);
- ``POST /v1/invoke``, the contract ``router/clients.py`` calls: ``embed.*`` intents compute embeddings
  (MiniLM where installed, else the feature-hash embedder, and the answer names which), ``chat.*`` intents
  are forwarded to an OpenAI-compatible upstream through the SSRF guard (``work``); a repeated
  ``Idempotency-Key`` returns the first result without running again (``replay``, bounded);
- one runtime sample per invocation on ``aion.metrics.runtime`` when Kafka is configured (``samples``).

It needs no database and no Django set-up: only the platform's pure helpers and the signing code.
"""
