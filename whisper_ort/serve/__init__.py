"""serve/: an OpenAI-compatible transcription server that batches concurrent requests.

    whisper-ort serve --port 8000          (server.py: uvicorn, the model loaded once)
    app.py       the HTTP API (FastAPI): endpoints, fields, uploads, streaming
    batcher.py   one thread owns the Transcriber; windows of concurrent requests share batches
    formats.py   json / text / srt / vtt / verbose_json and the server-sent events
    errors.py    every error as OpenAI's JSON error shape, 4xx for bad input
    page.html    the page at /: upload or record, the segments as they stream

Imports whisper_ort.core only (the `serve` extra: fastapi, uvicorn, python-multipart).
"""
