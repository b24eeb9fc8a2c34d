"""Agency edges: each agency's export in, signed alerts on its ingress topic out.

Pure (no Kafka, no clock, no files)::

    core          Adapter, convert(adapter, stream, ctx) -> Result per record; markings, locations, checks
    config        agencies.yaml (defaults, regions, places) checked against the policy vocabulary; Context
    _readers      CSV, JSON Lines, JSON documents: (record number, line, raw bytes, parsed or error)
    _fields       text, codes, numbers, dates, coordinates -> clean values or AdapterError(reason)
    senafront, senan, pn, snm, combifron    one reader and one mapping per agency
    registry      the adapters by name; samplegen/_samples write realistic exports of any size

The edge::

    run           AdapterRun: idempotence ledger, IngressPublisher, dead letters, tallies; check()
    watch         a drop folder, polled; cli: ``puente adapt NAME [FILE ...|-] [--watch DIR]``
    publisher     IngressPublisher: encode, MAC, key by alert id
    synthetic     the seeded generator of alerts the broker demo and tests use
"""
