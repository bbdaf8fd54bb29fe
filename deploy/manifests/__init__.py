"""The Kubernetes (and compose) documents ``deploy/generate.py`` writes, by concept:

* ``roles``: which process kinds each service runs (the catalogue's), their names, labels,
  settings' variable names, consumer groups and secrets, and the cluster's constants;
* ``workloads``: per role its ConfigMap, Deployment, Service, PodDisruptionBudget, and per
  service its migration Job: hardened pods, probes, mounts;
* ``network``: the NetworkPolicy allow-list of each role;
* ``kafka``: Strimzi KafkaTopics and KafkaUsers (ACLs from the registry), KEDA autoscaling,
  and how a role reaches the listener;
* ``compose``: the same roles under docker compose for people with Docker;
* ``documents``: deterministic YAML.
"""
