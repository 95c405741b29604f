"""Run the engine host: ``python -m engine_host --uri tcp://127.0.0.1:10610``."""

from .cli import run

run()
