"""The codec's two write and read paths for tests: native (when built here) and fastavro."""

from __future__ import annotations

import pytest

from schemas import AlertCodec, current, known_writers

try:
    import puente_avro  # noqa: F401
    NATIVE = [True, False]
except ImportError:  # the native codec is not built here: the fastavro path is still tested
    NATIVE = [False]


def codec_on(monkeypatch: pytest.MonkeyPatch, native: bool) -> AlertCodec:
    """The current alert codec on the native path or on fastavro's (``PUENTE_NATIVE_AVRO``)."""
    monkeypatch.setenv("PUENTE_NATIVE_AVRO", "1" if native else "0")
    codec = AlertCodec(current(), known_writers())
    assert codec.uses_native is native
    return codec
