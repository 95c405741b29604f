"""Command line of the engine host: compose the engines, serve them, stop cleanly."""

import os

# One OpenBLAS thread: set before numpy loads it, which reads it once. The
# engines' executor runs requests in parallel already; the voice encoder's
# small per-step products ran 6 to 20 times slower with OpenBLAS's own threads
# competing for the same cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial
import logging
from pathlib import Path
import signal
import sys
from typing import TextIO
from urllib.parse import urlsplit

from . import READY, __version__
from .catalogue import VOICE_ENCODER_NAME, ModelKind
from .engines import EngineError, SpeakerEncoder, TextToSpeech, WakeWord
from .models import ModelStore
from .server import EngineHostServer, Engines, ServerLimits
from .stt import FasterWhisperStt, WhisperModelSpec
from .tts import PiperTts
from .voiceprint import Ge2eEncoder
from .wake import MicroWakeWord, OpenWakeWord

_LOGGER = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m engine_host",
        description="Private Voice engine host: local wake word, speech-to-text "
        "(faster-whisper), text-to-speech (piper) and voice prints over the "
        "Wyoming protocol.",
    )
    parser.add_argument(
        "--uri",
        default="tcp://127.0.0.1:10610",
        help="where to listen, tcp://HOST:PORT (port 0: any free port)",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=Path("models"),
        help="folder of installed models (faster-whisper/, piper/, voice-encoder/)",
    )
    parser.add_argument(
        "--stt-model",
        action="append",
        default=[],
        help="speech-to-text model to offer, first is the default "
        "(repeatable; default: every installed model)",
    )
    parser.add_argument(
        "--voice",
        action="append",
        default=[],
        help="piper voice to offer, first is the default "
        "(repeatable; default: every installed voice)",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="download the --stt-model and --voice models that are missing, "
        "and the voice encoder if none is installed",
    )
    parser.add_argument(
        "--download-voice-encoder",
        action="store_true",
        help="download the voice encoder if none is installed, and no other "
        "model (Home Assistant's setup downloads those)",
    )
    parser.add_argument(
        "--openwakeword",
        action="store_true",
        help="also offer openWakeWord's pre-trained models "
        "(licensed CC BY-NC-SA 4.0: non-commercial use only)",
    )
    parser.add_argument(
        "--wake-model-dir",
        action="append",
        type=Path,
        default=[],
        help="extra folder of wake word models (repeatable)",
    )
    parser.add_argument(
        "--voice-print",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="offer voice prints of transcribed utterances, when a voice "
        "encoder is installed (default: on)",
    )
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="where faster-whisper and piper run (auto: CUDA when present)",
    )
    parser.add_argument("--beam-size", type=int, default=1, help="Whisper beam size")
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 2,
        help="worker threads for the engines (default: one per core)",
    )
    parser.add_argument("--max-connections", type=int, default=64)
    parser.add_argument("--max-transcriptions", type=int, default=4)
    parser.add_argument(
        "--stop-with-stdin",
        action="store_true",
        help="stop when standard input closes (a supervisor holds it open, so "
        "the host never outlives it, even if it is killed)",
    )
    parser.add_argument("--debug", action="store_true", help="log debug messages")
    args = parser.parse_args(argv)
    uri = urlsplit(args.uri)
    if uri.scheme != "tcp" or not uri.hostname or uri.port is None:
        parser.error(f"--uri must be tcp://HOST:PORT, not {args.uri}")
    args.host, args.port = uri.hostname, uri.port
    return args


async def _installed(
    store: ModelStore, kind: ModelKind, wanted: list[str], *, download: bool
) -> dict[str, Path]:
    """Return the models to offer: those asked for (downloaded if allowed), else all."""
    if not wanted:
        # Smallest (fastest) first: the default when a client names no model.
        installed = sorted(
            await store.installed(kind),
            key=lambda model: model.entry.size_mb if model.entry else float("inf"),
        )
        return {model.name: model.path for model in installed}
    paths: dict[str, Path] = {}
    for name in wanted:
        if download:
            _LOGGER.info("Making sure %s is installed", name)
            paths[name] = await store.download(kind, name)
        else:
            paths[name] = await store.path(kind, name)
    return paths


async def compose(
    args: argparse.Namespace, store: ModelStore, executor: ThreadPoolExecutor
) -> Engines:
    """Build the engines from the installed models."""
    entries = {entry.name: entry for entry in await store.catalogue(ModelKind.WHISPER)}
    whisper = await _installed(
        store, ModelKind.WHISPER, args.stt_model, download=args.download
    )
    stt = None
    if whisper:
        specs = {
            name: WhisperModelSpec(
                path=path,
                description=entries[name].description if name in entries else name,
                languages=list(entries[name].languages) if name in entries else [],
            )
            for name, path in whisper.items()
        }
        stt = FasterWhisperStt(
            specs, executor, device=args.device, beam_size=args.beam_size
        )
    voices = await _installed(
        store, ModelKind.PIPER, args.voice, download=args.download
    )
    tts: TextToSpeech | None = None
    if voices:
        tts = PiperTts(voices, executor, use_cuda=args.device == "cuda")
    wake: list[WakeWord] = [MicroWakeWord(executor, args.wake_model_dir)]
    if args.openwakeword:
        wake.append(OpenWakeWord(executor, args.wake_model_dir))
    speaker = None
    if args.voice_print:
        download = args.download or args.download_voice_encoder
        speaker = await _speaker_encoder(store, executor, download=download)
    return Engines(stt=stt, tts=tts, wake=wake, speaker=speaker)


async def _speaker_encoder(
    store: ModelStore, executor: ThreadPoolExecutor, *, download: bool
) -> SpeakerEncoder | None:
    """Load the first installed voice encoder, downloading one if allowed.

    None (and say why) if there is none: voice prints are an extra, so a
    failed download leaves speech to text and text to speech serving, and the
    next start tries again.
    """
    installed = await store.installed(ModelKind.VOICE_ENCODER)
    if installed:
        path = installed[0].path
    elif download:
        _LOGGER.info("No voice encoder installed: downloading %s", VOICE_ENCODER_NAME)
        try:
            path = await store.download(ModelKind.VOICE_ENCODER, VOICE_ENCODER_NAME)
        except EngineError as err:
            _LOGGER.warning("No voice prints: %s (%s)", err, err.code)
            return None
    else:
        _LOGGER.info(
            "No voice encoder in %s or in packages (resemblyzer): no voice prints",
            store.folder(ModelKind.VOICE_ENCODER),
        )
        return None
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        executor, partial(Ge2eEncoder.load, path, executor=executor)
    )


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM or SIGINT."""
    limits = ServerLimits(
        max_connections=args.max_connections,
        max_transcriptions=args.max_transcriptions,
    )
    with ThreadPoolExecutor(args.threads, thread_name_prefix="engine") as executor:
        store = ModelStore(args.models_dir)
        engines = await compose(args, store, executor)
        # Load the default model and voice before saying we are ready.
        await asyncio.gather(
            *(engine.preload() for engine in (engines.stt, engines.tts) if engine)
        )
        server = EngineHostServer(engines, version=__version__, limits=limits)
        await server.start(args.host, args.port)
        _LOGGER.info(
            "Offering speech-to-text %s, voices %s, wake words %s, voice prints %s",
            [model.name for model in engines.stt.models] if engines.stt else [],
            [voice.name for voice in engines.tts.voices] if engines.tts else [],
            [model.name for wake in engines.wake for model in wake.models],
            engines.speaker.PROGRAM.name if engines.speaker else "off",
        )
        print(f"{READY} tcp://{args.host}:{server.port}", flush=True)  # noqa: T201
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if args.stop_with_stdin:
            await _stop_at_end_of(sys.stdin, stop)
        try:
            await stop.wait()
        finally:
            await server.stop()
            _LOGGER.info("Stopped")


async def _stop_at_end_of(stream: TextIO, stop: asyncio.Event) -> None:
    """Set ``stop`` once ``stream`` reaches its end (the supervisor is gone)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stream)

    async def _watch() -> None:
        while await reader.read(4096):
            pass
        _LOGGER.info("Standard input closed: stopping")
        stop.set()

    _background.add(task := asyncio.create_task(_watch()))
    task.add_done_callback(_background.discard)


# Tasks that live as long as the host; referenced so they are not collected.
_background: set[asyncio.Task[None]] = set()


def run(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m engine_host``."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        asyncio.run(serve(args))
    except EngineError as err:
        _LOGGER.error("%s (%s)", err, err.code)  # noqa: TRY400 - the message is the story
        sys.exit(2)
    except OSError as err:
        _LOGGER.error("Cannot listen on %s: %s", args.uri, err)  # noqa: TRY400
        sys.exit(2)
