"""Private Voice engine host: local speech engines served over Wyoming.

No Home Assistant import anywhere in this package: it runs inside Home
Assistant's process tree as a child process, or alone on another machine as
``python -m engine_host`` with this package's parent folder on PYTHONPATH.
Modules import each other relatively, so the package works under both names.
"""

__version__ = "0.1.0"

# The line a supervisor (Home Assistant, scripts) waits for on stdout. Here, in
# a module with no imports, so that Home Assistant can read it where the
# engines' packages are not installed (musl).
READY = "engine host listening on"
