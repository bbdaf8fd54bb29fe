"""Pipeline throughput: partner HTTP → ingest → pseudonymise → link → access, end to end.

What runs, per backend (``embedded``: SQLite files with the bus in a file of its own;
``kafka``: Apache Kafka + PostgreSQL), every role its own ``fjo serve <service> <role>``
process started by the stack runners (``fjo.stack.embedded.EmbeddedStack``,
``fjo.stack.kafka.KafkaStack``):

1. a synthetic world (``fjo synth``'s ``build_world``) is written as NDJSON;
2. the spine's owner pushes the spine over ingest's HTTP API (``fjo push``'s resumable
   upload) and the pipeline drains it (link indexes it, then re-fits its model to it while
   idle; the run waits until link's CPU goes quiet): timed apart, never in the figures;
3. the two Cafcass agencies push their feeds (N incoming records), each agency in its own
   thread as two partners would, and the clock runs from the first request until the last
   record is complete in access.

What is measured, all from the run's own records (wall clocks of one machine):

* *received*: the ``time`` of ingest's ``ingest.records.v1`` envelope, set while ingest
  handles the partner's request (after validation, before its batch is published);
* *stored*: ``access_research_records.received_at``, set when the access worker writes the
  row (inside its batch transaction, so before that batch commits);
* *linked* (child and adult-party records): the first ``access_link_results.received_at`` of
  the record, i.e. link's decision stored in access;
* *complete*: stored, and linked for person records. A record is followed through by its
  event ids (pseudonymise derives its content event id from ingest's) and its record token.

Throughput is incoming records / (last *complete* - first push request). Per stage, the
workers' processed-marker tables give records settled per second (first to last marker of
the window) and CPU seconds per record of each process. Latency is *complete* - *received*
per record (p50/p99), and *stored* - *received* as well.

The transport ceiling (raw kafka-python, same run, same broker): a producer replays the
run's exact ``ingest.records.v1`` records onto a copy of that topic; three relays, each its
own process (``python -m bench.pipeline _relay``), with the registry's partition counts: a
"pseudonymise" relay writes one records message and, for person records, one linkage-keys
message (the run's mean sizes); a "link" relay turns each keys message into a results
message; the "access" sink counts a record complete when its records message (and results
message) arrived. Each relay polls up to 500, sends, flushes, commits per batch; no
processing. Up to 300 of the records go through every hop first, untimed, as the pipeline is
warmed by the spine before its timed run (without it, fresh topics' metadata and fetch
sessions made the ceiling vary from 1,200 to 5,300 records/s between runs), and the ceiling
is the best of three runs (a run right after the pipeline's stack stopped sometimes stalled
for two seconds). Our Kafka pipeline's records/s over the ceiling's is the ratio (goal ≥ 0.5).

``bench.pipeline.run.run_pipeline_benchmark`` returns the figures and writes
``bench/results/pipeline-<ts>.json`` and ``pipeline-latest.json``; ``python -m bench.pipeline
--help`` and ``fjo bench pipeline`` run it from a shell.

Modules: ``workload`` (the world and the partners' pushes), ``measure`` (one run on a stack
and what is read back), ``ceiling`` (the raw Kafka relays), ``run`` (backends, ceiling,
JSON), ``cli``. The stacks themselves are ``fjo.stack``'s.
"""
