"""`whisper-ort serve`: load the model once, serve the app with uvicorn until SIGINT/SIGTERM.

On SIGTERM uvicorn stops accepting connections and waits for the requests in flight
(their batches finish) before the app's shutdown ends the batcher thread.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from whisper_ort.core.pipeline import Transcriber
from whisper_ort.serve.app import ServeSettings, create_app


def serve(model, settings: ServeSettings, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> int:
    """model: ModelOptions. Blocks until the server stops."""
    import uvicorn

    transcriber = Transcriber(options=model)
    app = create_app(transcriber, settings)
    print(f"whisper-ort: {transcriber.variant} model from {transcriber.model_dir} loaded in {transcriber.load_time_s:.1f} s; "
          f"batches of up to {settings.max_batch} windows; http://{host}:{port}/", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug",
                            timeout_graceful_shutdown=int(settings.request_timeout_s) + 5)
    logging.getLogger("whisper_ort.serve").setLevel(log_level.upper())
    # uvicorn raises the signal it shut down on again once it is done: let that one pass, exit 0.
    quiet = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)} if threading.current_thread() is threading.main_thread() else {}
    try:
        uvicorn.Server(config).run()
    finally:
        for s, handler in quiet.items():
            signal.signal(s, handler)
    return 0
