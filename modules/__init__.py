"""Modules: signed module manifests, Cosign enforcement, releases, rollback and host health."""
