"""Throughput benchmarks on real Kafka: ``python -m tests.bench.run`` (``make bench``); see docs/benchmarks.md."""
