"""The adapters by name. Modules are imported on use, so building the CLI stays cheap."""

from __future__ import annotations

import importlib

from adapters.core import Adapter

# name -> (module, agency, one-line description)
ADAPTERS: dict[str, tuple[str, str, str]] = {
    "senafront": ("adapters.senafront", "SENAFRONT", "SENAFRONT patrol reports (CSV) -> border events"),
    "senan": ("adapters.senan", "SENAN", "SENAN interdictions (JSON documents) -> seizures"),
    "pn": ("adapters.pn", "PN", "National Police case export (fixed-width, Windows-1252) -> seizures"),
    "snm": ("adapters.snm", "SNM", "Migration screening hits (JSON lines) -> watchlist hits"),
    "combifron": ("adapters.combifron", "COMBIFRON", "Colombia's alerts through COMBIFRON (agreed JSON lines)"),
}


def get(name: str) -> Adapter:
    """The adapter called ``name``; KeyError names the known ones."""
    if name not in ADAPTERS:
        raise KeyError(f"unknown adapter {name!r}; known: {', '.join(ADAPTERS)}")
    adapter = importlib.import_module(ADAPTERS[name][0]).ADAPTER
    if not isinstance(adapter, Adapter):
        raise TypeError(f"{ADAPTERS[name][0]}.ADAPTER is not an Adapter")
    return adapter
