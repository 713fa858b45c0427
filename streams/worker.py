"""`botstream streams`: run one streams worker process (Faust worker lifecycle, our JSON logging)."""

from __future__ import annotations

from botstream.bots import BotRegistry, load_bots_file
from botstream.exceptions import ConfigError
from botstream.logs import register_secrets, setup_logging
from botstream.settings import Settings
from botstream.tracing import configure as configure_tracing


def load_bots(settings: Settings) -> BotRegistry:
    if settings.bots_file is None:
        raise ConfigError("BOTSTREAM_BOTS_FILE is not set (see deploy/bots.example.toml)")
    bots = load_bots_file(settings.bots_file)
    register_secrets(bots.all_secrets())
    return bots


def run_streams_worker(settings: Settings) -> int:
    from faust.worker import Worker

    from streams.app import StreamsWorker

    setup_logging("streams", settings.log_level, settings.log_format)
    configure_tracing("streams")
    worker_app = StreamsWorker(settings, load_bots(settings))
    worker = Worker(worker_app.app, loglevel=settings.log_level.lower(), override_logging=False,
                    redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0
