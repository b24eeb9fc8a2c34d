"""Development only: the local Kafka runner, the demo, and the sample and synthetic generators.

A production install needs none of it (the service image leaves it out); the commands that use it
(`puente kafka`, `puente demo`, `puente publish`) are for development, tests and benchmarks.
"""
