"""Agency edges: each agency's export in, signed alerts on its ingress topic out.

Pure (no Kafka, no clock; files only as the caller hands them over), the layer of the cores::

    core          Adapter, convert(adapter, stream, ctx) -> Result per record; the keys a record may hold
                  (an allow-list), markings, locations, versions, checks
    config        agencies.yaml (defaults, regions, places) checked against the policy vocabulary; Context
    _readers      CSV, JSON Lines, JSON documents: (record number, line, raw bytes, parsed or error)
    _fields       text, codes, numbers, dates, coordinates -> clean values or AdapterError(reason)
    senafront, senan, pn, snm, combifron    one reader and one mapping per agency
    registry      the adapters by name

The agency service, above Kafka I/O (``broker.kafka``)::

    run           AdapterRun: idempotence ledger, IngressPublisher, dead letters, tallies; check()
    ledger        what the agency published, by (alert id, version), read back from its ingress topic
    lifecycle     an officer's recall, consent or reclassification: the alert's next version, published
                  (``puente recall``, ``puente consent grant``, ``puente reclassify``)
    watch         a drop folder, polled (``puente adapt NAME --watch DIR``)
    publisher     IngressPublisher: encode, MAC, key by alert id

Realistic sample exports and synthetic alerts are development tools: ``puente.dev``.
"""
