"""Which Kafka errors the sink's requests ask again (pure)."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from sinks.worker.consumer import _retriable


def test_errors_of_a_moving_or_lost_broker_are_asked_again_and_others_are_not():
    for code in (KafkaError._DESTROY_BROKER, KafkaError._TRANSPORT, KafkaError._TIMED_OUT,
                 KafkaError.NOT_LEADER_FOR_PARTITION):  # fmt: skip
        assert _retriable(KafkaException(KafkaError(code))), code
    assert not _retriable(KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)))
    assert not _retriable(ValueError("not Kafka's"))
