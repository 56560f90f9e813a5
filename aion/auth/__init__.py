"""Identity: API keys, JWTs and Console sessions, each resolved to one ``Principal``."""
