"""The platform on one machine, every service role its own process: one set of runners for
``fjo up``, the demo, the benchmarks and the end-to-end tests.

* ``fjo.stack.processes``: start, record, signal and stop ``fjo serve`` processes;
* ``fjo.stack.kafka``: on Apache Kafka + PostgreSQL (``up_stack`` is ``fjo up``; ``KafkaStack``
  is a run of its own on a shared broker);
* ``fjo.stack.embedded``: on SQLite files + the embedded bus (``EmbeddedStack``, the demo's);
* ``fjo.stack.api``: ``Stack``, what both stack classes offer.
"""
