"""The broker: the routing service between the agencies' ingress and the partners' feeds.

By layer, lowest first (an import-linter contract in pyproject.toml keeps them pointing down)::

    pure        crypto (keys, envelopes, origin MACs, signatures), audit (chains, verification),
                pipeline (one record's outcome), replay (the replay window), topology (names, slots)
    I/O         kafka (the one Kafka seam: connections, clients, admin, topics, readers), keystore (key files)
    services    worker and service (the routing service), partner (a partner's subscriber),
                auditor (verifying and listing the audit), metrics (Prometheus and health endpoints)
"""
