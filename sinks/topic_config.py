"""Checks of a topic's retention that a consumer relies on."""

from __future__ import annotations

import logging

from onestop.settings import Settings

log = logging.getLogger(__name__)


def kept_forever(configs: dict[str, str]) -> bool:
    """True if the latest record of every key survives: compaction, or no time and size limit."""
    policy = configs.get("cleanup.policy", "delete")
    if "compact" in policy and "delete" not in policy:
        return True
    return configs.get("retention.ms") == "-1" and configs.get("retention.bytes", "-1") == "-1"


def topic_configs(settings: Settings, topic: str) -> dict[str, str] | None:
    """The topic's configuration as the broker reports it, or None if it cannot be read."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","), client_id="onestop-config-check",
                                 request_timeout_ms=10_000)
    except Exception as exc:  # kafka-python raises many kinds while a broker boots
        log.debug("cannot connect to read the configuration of %s: %s", topic, exc)
        return None
    try:
        answer = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
        return _values(answer, topic)
    except Exception as exc:
        log.debug("cannot read the configuration of %s: %s", topic, exc)
        return None
    finally:
        admin.close()


def _values(answer: object, topic: str) -> dict[str, str] | None:
    if isinstance(answer, dict):
        for by_name in answer.values():
            if isinstance(by_name, dict) and topic in by_name:
                entries = by_name[topic]
                return {k: (v.get("value") if isinstance(v, dict) else v) for k, v in entries.items()}
    return None


def warn_unless_kept(settings: Settings, topic: str) -> None:
    configs = topic_configs(settings, topic)
    if configs is not None and not kept_forever(configs):
        log.warning("%s is neither compacted nor kept forever (cleanup.policy=%s, retention.ms=%s): alerts older "
                    "than its retention are forgotten when the router restarts. Run: kafka-configs.sh --alter "
                    "--entity-type topics --entity-name %s --add-config cleanup.policy=compact",
                    topic, configs.get("cleanup.policy"), configs.get("retention.ms"), topic)
