"""The faster-whisper peer behind HTTP, speaches' design: FastAPI, a plain `def` endpoint that
Starlette runs in its thread pool, one CTranslate2 WhisperModel (FP32, num_workers=1) shared
by the threads, no batching across requests. Only for the serving benchmark:

    python -m whisper_ort.measure.peers.fw_server --port 8001 --threads 2

POST /v1/audio/transcriptions (file, model, language) -> {"text"}; GET /health. Decoding
settings are the faster_whisper peer's (greedy, no VAD, no timestamps, the same token cap).
"""

from __future__ import annotations

import argparse
import io
import sys

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import JSONResponse

from whisper_ort.core.folder import default_model_dir
from whisper_ort.measure.peers.faster_whisper import ct2_max_new_tokens, ensure_ct2_model


def create_app(model_dir, threads: int, max_new_tokens: int = 128):
    from faster_whisper import WhisperModel, decode_audio

    model = WhisperModel(str(model_dir), device="cpu", compute_type="float32", cpu_threads=threads, num_workers=1, local_files_only=True)
    app = FastAPI(title="faster-whisper (thread pool)")

    @app.get("/health")
    def health():
        return {"status": "ok", "model": str(model_dir)}

    @app.post("/v1/audio/transcriptions")
    def transcriptions(file: UploadFile = File(...), model_name: str = Form("whisper-1", alias="model"),  # noqa: B008
                       language: str = Form("en")):  # noqa: B008
        try:
            audio = decode_audio(io.BytesIO(file.file.read()), sampling_rate=16000)
        except Exception as exc:  # any decoder failure is the client's file
            return JSONResponse({"error": {"message": f"cannot decode audio: {exc}"}}, status_code=400)
        segments, _ = model.transcribe(audio, language=language, beam_size=1, best_of=1, temperature=0.0, vad_filter=False,
                                       without_timestamps=True, condition_on_previous_text=False, no_speech_threshold=None,
                                       max_new_tokens=ct2_max_new_tokens(max_new_tokens), word_timestamps=False)
        return {"text": "".join(s.text for s in segments).strip()}

    return app


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--onnx-dir", default=None, help="the ONNX model folder; the CTranslate2 folder sits beside it")
    p.add_argument("--log-level", default="warning")
    args = p.parse_args(argv)
    import uvicorn

    app = create_app(ensure_ct2_model(args.onnx_dir or default_model_dir()), args.threads)
    print(f"faster-whisper server on http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
