"""The broker: the routing service between the agencies' ingress and the partners' feeds, and what a
partner's subscriber and the auditors stand on.

By layer, lowest first (the import-linter contracts in pyproject.toml keep them pointing down)::

    pure        crypto (keys, envelopes, origin MACs, signatures), audit (chains, verification),
                pipeline (one record's outcome), replay (the replay window), lifecycle (an alert's
                versions and holders), topology (names, slots), access (ACLs from the agreements),
                stall (telling a stalled worker from an idle one)
    I/O         kafka (the one Kafka seam: connections, clients, admin, topics, ACLs, readers),
                keystore (key files), credentials (Kafka logins), private_files (the checks every
                private SQLite file gets), partner_store, audit_index, console_accounts (those files),
                spill (scratch files for walks over the whole audit)
    services    worker and service (the routing service), partner (a partner's subscriber),
                auditor (verifying and listing the audit), oversight (the console's query log),
                metrics (Prometheus and health endpoints)
"""
