"""Puente: the application edge (command line, settings, logging) and the local Kafka runner."""

__version__ = "0.1.0"
