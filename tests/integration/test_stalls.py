"""Never stuck: on a three-node cluster a broker frozen (SIGSTOP) while flushes wait on it is
ridden out, or the worker stops itself and its supervisor starts it again; either way every
event is stored once and counted once."""

from __future__ import annotations

import signal
import threading
import time

from confluent_kafka.admin import AdminClient

from streams.kafka.broker import EmbeddedBroker
from streams.kafka.producer import EventProducer
from streams.kafka.topics import ensure_topics, pulse_topics, wait_for_broker
from streams.settings import KafkaSettings

from .conftest import Processes, wait_for
from .kafka_helpers import produce, recent_traffic
from .test_pipeline import scalar

DEADLINE_S = 10  # PULSE_FLUSH_DEADLINE_S of the worker and the sink here
FROZEN_S = 3 * DEADLINE_S  # longer than a flush may wait, and than the cluster takes to fence


class Supervised:
    """A process started again whenever it exits with a failure, as Kubernetes would."""

    def __init__(self, processes: Processes, name: str, *args: str) -> None:
        self._processes, self._name, self._args = processes, name, args
        self.failures: list[int] = []
        self._stop = threading.Event()
        processes.start(name, *args)
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            proc = self._processes.procs[self._name]
            if proc.poll() not in (None, 0):
                self.failures.append(proc.returncode)
                self._processes.start(self._name, *self._args)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self._processes.stop(self._name)


def leader_of(bootstrap: str, topic: str, partition: int) -> int:
    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=30)
    return meta.topics[topic].partitions[partition].leader


def test_a_frozen_broker_stalls_no_flush_for_good(pulse_env, processes, tmp_path, monkeypatch):
    with EmbeddedBroker(port=0, brokers=3, data_dir=tmp_path / "kafka") as kafka:
        bootstrap = kafka.bootstrap
        for key, value in {"PULSE_KAFKA_BOOTSTRAP": bootstrap, "PULSE_REPLICATION_FACTOR": "3",
                           "PULSE_FLUSH_DEADLINE_S": str(DEADLINE_S)}.items():  # fmt: skip
            processes.env.values[key] = value
            monkeypatch.setenv(key, value)
        ensure_topics(wait_for_broker(bootstrap), pulse_topics(KafkaSettings()), 4, 3)
        first, second = recent_traffic(11, 800, 800)
        producer = EventProducer(bootstrap, pulse_env["PULSE_TOPIC_RAW"])
        produce(producer, first)
        worker = Supervised(processes, "streams", "streams", "worker")
        sink = Supervised(processes, "sink", "sinks", "run")
        wait_for(lambda: scalar("SELECT count() FROM pulse.events") >= len(first), 180,
                 "the first events in ClickHouse")  # fmt: skip

        # Freeze the leader of an enriched partition while events for it are processed: its
        # connections stay open and nothing answers, so deliveries (and flushes) wait on it.
        frozen = kafka.nodes[leader_of(bootstrap, pulse_env["PULSE_TOPIC_ENRICHED"], 0) - 1]
        frozen.proc.send_signal(signal.SIGSTOP)
        try:
            for event in second:
                producer.send(event)
            time.sleep(FROZEN_S)  # the fault's length, not a wait for an outcome
        finally:
            frozen.proc.send_signal(signal.SIGCONT)
        producer.flush()

        total = len(first) + len(second)
        wait_for(lambda: scalar("SELECT count() FROM pulse.events") >= total, 300,
                 f"{total} events after the freeze")  # fmt: skip
        wait_for(lambda: scalar("SELECT sum(event_count) FROM pulse.counts_1m FINAL") >= total,
                 120, "the window counts after the freeze")  # fmt: skip
        assert scalar("SELECT count() FROM pulse.events") == total  # no duplicate rows
        assert scalar("SELECT uniqExact(event_id) FROM pulse.events") == total
        assert scalar("SELECT sum(event_count) FROM pulse.counts_1m FINAL") == total
        assert scalar("SELECT count() FROM pulse.dead_letters") == 0
        assert sink.stop() == 0
        assert worker.stop() == 0
        # A member that stopped itself said why (a flush past its deadline, a delivery that
        # failed); one that did not logged no error.
        reasons = {"streams": ("flush stalled", "were not delivered"),
                   "sink": ("flush stalled", "failed")}  # fmt: skip
        for name, member in (("streams", worker), ("sink", sink)):
            log = processes.log(name)
            if member.failures:
                assert any(reason in log for reason in reasons[name]), log[-4000:]
            else:
                assert "Traceback" not in log, log[-4000:]
            print(f"{name}: restarted after exits {member.failures}")
        del producer  # its connections end with the cluster, not after it
