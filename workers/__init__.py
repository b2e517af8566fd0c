"""The worker process: `main` (the `lobstack worker` entry point), `worker` (queues, activities, rate limits,
graceful shutdown), `interceptors` (our errors to ApplicationError, in one place), `converter`, `codec_server`,
`schedules`, `redaction` (no secret in a log line), `settings` and `versioning` (Worker Versioning: the runner for
unversioned workers, making a version current).

The worker never imports the gateway or the simulator (tests/test_layers.py). This `__init__` imports nothing.
"""

__all__ = [
    "codec_server",
    "converter",
    "interceptors",
    "main",
    "redaction",
    "schedules",
    "settings",
    "versioning",
    "worker",
]
