"""The faust worker around the pure job: ``app`` wires its parts — ``intake`` (a message
processed and sent), ``flush`` (the ordered flush), ``output`` (sends and deliveries),
``recovery`` (state reload after a rebalance, the recovery watch), ``sequence`` (the sequence
guard), ``pages`` (health, readiness, metrics) — and ``faust_adapter`` holds what Pulse changes
in faust and aiokafka."""
