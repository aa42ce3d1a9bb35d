"""Local operations: the development Kafka broker, topic administration, lag checks,
the process supervisor of demos and tests, and replays.

This package sits below the command line (``onestop_cli``) and above the adapters it
runs (``streams``, ``sinks``, ``producers``). Tests and the benchmark use it as an API.
The files it needs at run time (the Kafka pom and broker template) ship inside it.
"""
