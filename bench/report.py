"""What the benchmarks write: the machine, versions, figures, results files.

Each benchmark writes bench/results/<kind>-<UTC time>.json and, for a full
run, its own section of bench/README.md between two HTML comment markers,
leaving the rest of the file alone.
"""

from collections.abc import Sequence
from importlib import metadata
import json
import os
from pathlib import Path
import platform
import subprocess
from typing import Any

import numpy as np

from .servers import TOP, Server, peer_python

RESULTS = TOP / "bench" / "results"
README = TOP / "bench" / "README.md"


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile of ``values`` (NaN when there are none)."""
    return float(np.percentile(values, q)) if values else float("nan")


def ms(seconds: float) -> float:
    """Convert seconds to milliseconds, to a tenth."""
    return round(seconds * 1000, 1)


def ratio(ours: float | None, peer: float | None) -> float | None:
    """Return ours over the peer's, to three places; None when either is missing."""
    if ours is None or not peer:
        return None
    return round(ours / peer, 3)


def cell(value: Any, unit: str = "") -> str:
    """Render a figure as a Markdown table cell."""
    if value is None:
        return "—"
    return f"{value:g}{unit}" if isinstance(value, float) else f"{value}{unit}"


def versions(python: Path | None, packages: Sequence[str]) -> dict[str, str]:
    """Return the installed versions of ``packages``, here or in a peer's venv."""
    if python is None:
        return {name: metadata.version(name) for name in packages}
    script = (
        "import json, sys; from importlib import metadata; "
        "print(json.dumps({n: metadata.version(n) for n in sys.argv[1:]}))"
    )
    output = subprocess.run(  # noqa: S603 - our own peer interpreter
        [str(python), "-c", script, *packages],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found: dict[str, str] = json.loads(output)
    return found


def private_voice_version() -> str:
    """Return the integration's version, from its manifest."""
    manifest = TOP / "custom_components" / "private_voice" / "manifest.json"
    version: str = json.loads(manifest.read_text())["version"]
    return version


def machine() -> dict[str, Any]:
    """Describe the CPU, cores, memory, kernel and Python of this run."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
        ),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": load_average(),
    }


def source(commit: str | None, changed: str | None) -> dict[str, Any]:
    """Name the checkout measured: its commit, and its uncommitted files.

    The wrapper scripts ask git (the project environment has none) and pass
    both on: ``changed`` is a comma-separated list.
    """
    return {
        "commit": commit or None,
        "uncommitted": sorted(path for path in (changed or "").split(",") if path),
    }


def load_average() -> list[float]:
    """Return the 1, 5 and 15 minute load averages: the machine is shared."""
    return [round(value, 2) for value in os.getloadavg()]


def warn_if_loaded(report: dict[str, Any]) -> None:
    """Say so when others keep the cores busy: the figures will be noisy."""
    load, cores = report["machine"]["load_average_at_start"][0], os.cpu_count() or 1
    if load > cores:
        print(f"warning: load average {load} on {cores} cores; figures will be noisy")


def write_results(
    kind: str, report: dict[str, Any], markdown: str, *, readme: bool
) -> Path:
    """Write bench/results/<kind>-<time>.json, and ``markdown`` into the README.

    The README's section for ``kind`` lies between ``<!-- <section>:begin -->``
    and ``<!-- <section>:end -->`` (section ``results`` for the engines, for
    history's sake, ``<kind>-results`` otherwise); a README without the
    markers is left alone.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = report["started"].replace(":", "").replace("-", "")[:13]
    path = RESULTS / f"{kind}-{stamp}{'-quick' if report['quick'] else ''}.json"
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(report, indent=2) + "\n")
    staging.replace(path)
    if readme and README.exists():
        section = "results" if kind == "engines" else f"{kind}-results"
        text = README.read_text()
        begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            tail = rest.split(end, 1)[1]
            host = report["machine"]
            load = (
                f"load average {host['load_average_at_start'][0]:g} → "
                f"{host.get('load_average_at_end', ['?'])[0]:g}"
            )
            checkout = ""
            if code := report.get("source"):
                checkout = f" at `{code['commit']}`"
                if files := len(code["uncommitted"]):
                    checkout += f" (+ uncommitted changes in {files} integration files)"
            body = (
                f"\n{report['started'][:10]}, {host['cpu']}, "
                f"{host['cores']} cores, Python {host['python']}, {load}{checkout}; "
                f"from `{path.relative_to(TOP)}`.\n\n{markdown}\n"
            )
            README.write_text(f"{head}{begin}{body}{end}{tail}")
    return path


def server_versions(servers: dict[str, Server]) -> dict[str, dict[str, str]]:
    """Return the versions each server runs, keyed by name ("ours" for ours)."""
    engines = ["wyoming", "faster-whisper", "ctranslate2", "piper-tts", "onnxruntime"]
    found = {}
    if "ours" in servers:
        found["ours"] = {
            "private_voice": private_voice_version(),
            **versions(None, [*engines, "pymicro-wakeword", "pyopen-wakeword"]),
        }
    if "stt-peer" in servers:
        found["wyoming-faster-whisper"] = versions(
            peer_python("faster-whisper"), ["wyoming-faster-whisper", *engines[:3]]
        )
    if "tts-peer" in servers:
        found["wyoming-piper"] = versions(
            peer_python("piper"),
            ["wyoming-piper", "wyoming", "piper-tts", "onnxruntime"],
        )
    return found


def server_memory(servers: dict[str, Server]) -> dict[str, Any]:
    """Return each server's memory; ours, and the peers added up."""
    memory: dict[str, Any] = {
        server.name: server.memory_mib() for server in servers.values()
    }
    if "ours" in servers:
        memory["ours"] = memory[servers["ours"].name]
    peers = [
        memory[servers[role].name]
        for role in ("stt-peer", "tts-peer")
        if role in servers
    ]
    if peers:
        memory["peer"] = {
            key: round(sum(item[key] for item in peers), 1) for key in peers[0]
        }
        memory["peer_note"] = "wyoming-faster-whisper + wyoming-piper"
    return memory


def print_summary(report: dict[str, Any], markdown: str, path: Path) -> None:
    """Print the table, each goal's verdict and where the results are."""
    print()
    print(markdown)
    print()
    for name, goal in report["goals"].items():
        if goal["value"] is None:
            verdict = "not measured"
        else:
            verdict = f"{goal['value']} (target {goal['target']}): " + (
                "met" if goal["met"] else "NOT met"
            )
        print(f"goal {name}: {verdict}")
    print(f"results: {path.relative_to(TOP)} ({report['duration_s']:g} s)")
