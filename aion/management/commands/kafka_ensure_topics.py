"""``manage.py kafka_ensure_topics [--replicas N]``: create any topic of aion.topics missing on the cluster.

The Strimzi manifests in deploy/kafka/topics/ are the production path
(``kubectl apply -f deploy/kafka/topics/``); this is for clusters without the
operator and for local brokers.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from aion.topics import TOPICS


class Command(BaseCommand):
    help = "Create missing Kafka topics from the topic registry (partitions and retention as in aion/topics.py)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--replicas", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.KAFKA_BOOTSTRAP_SERVERS:
            raise CommandError("KAFKA_BOOTSTRAP_SERVERS is not set.")
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, client_id=settings.AION_KAFKA_CLIENT_ID)
        try:
            existing = set(admin.list_topics())
            missing = [topic for name, topic in TOPICS.items() if name not in existing]
            if missing:
                admin.create_topics(
                    [
                        NewTopic(
                            t.name,
                            t.partitions,
                            options["replicas"],
                            topic_configs={"retention.ms": str(t.retention_hours * 3600 * 1000)},
                        )
                        for t in missing
                    ]
                )
        finally:
            admin.close()
        for name in TOPICS:
            self.stdout.write(f"{name}: {'created' if name in {t.name for t in missing} else 'exists'}")
