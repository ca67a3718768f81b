"""What every kind shares: the operation core.

Pure pieces, which kinds' api and logic may use: model (ApiModel, CEL rules), fields
(durations, cron, time zones, references), conditions (kstatus, StatusBase), prometheus
and gate (a Prometheus condition and when it holds), schedule (the one cron engine),
rollout (`kubectl rollout status`), health (a health check as the API states it), holds,
names, events, resource.

The runtime, which only kinds' handlers use: context (a `Pass`), kind (what a kind
gives the runtime), controller (the work queue of each kind), writer (the one status
writer), recorder (an Event with its log line), spec (an invalid spec, in words),
holding (holds, with bounded retries), sampling (Prometheus asked for the gate),
probing (a health check asked),
failpoints, interest (who watches what), runtime (the glue to Kopf).
"""
