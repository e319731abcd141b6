"""Kafka: the local KRaft broker and its pinned runtime, topics, the producer."""
