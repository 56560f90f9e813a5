"""Hooks: signed inbound approval webhooks and reliable, signed outbound webhooks."""
