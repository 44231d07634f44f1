"""Layer-skip self-drafting for exact speculative decoding: would it pay here?

The draft is the decoder's own first L layers, its final layer norm and the (tied) output
projection, run greedily for k tokens from what is known; the full decoder verifies them
in one forward (measure/speculation.py explains why acceptance then depends on greedy's
token sequence alone). The draft runs on the FP32 torch model of the same weights, with
the special tokens (all ids after end of text) masked, as greedy masks them.

The cost side is the read floor, the bound the decoder step lives at: a draft token of L
layers reads L/6 of the layer weights and of the cross K/V, and the bounded head
(hardware.bounded_head_bytes); a forward verifying k drafts costs `verify_cost`'s ratio
(measured, ORT). Speculation pays when tokens per forward exceeds
verify_ratio(k) + k * draft_fraction(L).

    python -m whisper_ort.measure.layer_skip --audio-dir samples --files '[jl]*' --k 4 --layers 1,2,3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


class LayerSkipDraft:
    """Greedy drafts from the first `layers` decoder layers of the torch model, for one
    window's encoder output."""

    def __init__(self, model, encoder_states, layers: int, eot: int):
        self.model, self.states, self.layers, self.eot = model, encoder_states, layers, eot

    def __call__(self, known: list[int], k: int) -> list[int]:
        import torch

        decoder = self.model.model.decoder
        full = decoder.layers
        ids = list(known)
        try:
            decoder.layers = torch.nn.ModuleList(list(full)[: self.layers])
            with torch.inference_mode():
                for _ in range(k):
                    hidden = decoder(input_ids=torch.tensor([ids]), encoder_hidden_states=self.states, use_cache=False).last_hidden_state
                    logits = self.model.proj_out(hidden[0, -1])
                    logits[self.eot + 1 :] = -float("inf")  # no special token is ever a text draft
                    ids.append(int(torch.argmax(logits)))
                    if ids[-1] == self.eot:
                        break
        finally:
            decoder.layers = full
        return ids[len(known) :]


def encoder_states(model, path: Path):
    """The torch encoder's output for the file's first window (our log-mel features)."""
    import torch

    from whisper_ort.core.audio import load_audio
    from whisper_ort.core.features import log_mel_batch

    with torch.inference_mode():
        return model.model.encoder(torch.from_numpy(log_mel_batch([load_audio(path)]))).last_hidden_state


def draft_fraction(layers: int, config: dict | None = None) -> float:
    """A draft token's read floor as a fraction of a full step's: L layers' weights and
    cross K/V, and the bounded head (the self K/V so far is small and left out)."""
    from whisper_ort.measure.hardware import WHISPER_BASE, bounded_head_bytes, decoder_step_bytes

    c = config or WHISPER_BASE
    step = decoder_step_bytes(c)
    share = layers / c["decoder_layers"]
    head = bounded_head_bytes(c)
    return (share * (step["layers"] + step["cross_kv"]) + head) / (step["layers"] + step["cross_kv"] + head)


def acceptance(model, seqs: dict[str, dict], paths: dict[str, Path], layers: int, k: int, eot: int) -> dict:
    """Tokens per forward and acceptance of L-layer drafts over the files' greedy tokens."""
    from whisper_ort.measure.speculation import _summarize, simulate

    rows = []
    for name in sorted(seqs):
        draft = LayerSkipDraft(model, encoder_states(model, paths[name]), layers, eot)
        rows.append({"file": name, **simulate(seqs[name]["tokens"], list(seqs[name]["prompt"]), draft, k)})
    return {**_summarize(rows), "files": rows}


def main(argv=None) -> int:
    from whisper_ort.core.pipeline import Transcriber
    from whisper_ort.measure.environment import cpu_model
    from whisper_ort.measure.peers._common import set_torch_threads
    from whisper_ort.measure.peers._hf import load_hf_model
    from whisper_ort.measure.speculation import greedy_sequences, verify_cost

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--audio-dir", default="audio")
    p.add_argument("--files", default="[jl]*")
    p.add_argument("--onnx-dir", default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--k", type=int, default=4, help="draft tokens per forward")
    p.add_argument("--layers", default="1,2,3", help="draft depths to try (of the decoder's 6 layers)")
    p.add_argument("--rounds", type=int, default=20, help="interleaved rounds of the verify-cost timing (0: skip it)")
    p.add_argument("--output", default=None, help="write the result as JSON here")
    args = p.parse_args(argv)
    paths = {p.name: p for p in sorted(Path(args.audio_dir).glob(args.files))}
    if not paths:
        raise SystemExit(f"{args.audio_dir}/{args.files}: no such files")
    transcriber = Transcriber(args.onnx_dir, threads=args.threads)
    seqs = greedy_sequences(transcriber, list(paths.values()))
    set_torch_threads(args.threads)
    _, _, model = load_hf_model(transcriber.base_dir)
    eot = transcriber.tokenizer.ids.eot
    verify = verify_cost(transcriber, next(iter(paths.values())), ks=(0, args.k), rounds=args.rounds)[str(args.k)]["ratio_to_one"] if args.rounds else None
    result = {"cpu": cpu_model(), "threads": args.threads, "k": args.k, "files": list(paths), "verify_ratio": verify, "depths": {}}
    for layers in (int(x) for x in args.layers.split(",")):
        r = acceptance(model, seqs, paths, layers, args.k, eot)
        r["draft_fraction"] = draft_fraction(layers)
        if verify is not None:  # step-equivalents per forward, and the speedup over plain greedy
            r["cost_per_forward"] = verify + args.k * r["draft_fraction"]
            r["speedup"] = r["tokens_per_forward"] / r["cost_per_forward"]
        result["depths"][str(layers)] = r
        print(f"{layers} layers: tokens/forward {r['tokens_per_forward']:.3f}  acceptance {r['accepted']}/{r['drafted']}"
              f"  draft token {r['draft_fraction']:.2f} step" + (f"  est. speedup {r['speedup']:.2f}x" if verify is not None else ""))
    if verify is not None:
        print(f"forward over 1+{args.k} positions: {verify:.2f}x one ({result['cpu']}, {args.threads} threads)")
    if args.output:
        tmp = Path(args.output).with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2, default=float) + "\n")
        tmp.replace(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
