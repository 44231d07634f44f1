"""The runtime: path -> samples -> log-mel -> encoder states -> tokens -> text (+ segments).

audio.py (decode, resample), features.py (log-mel, numpy), tokenizer.py, folder.py (the
model folder, its two variants, where it is found), session.py (ONNX Runtime options, the
shared thread pool), decoders.py (one class per variant: encode / first step / step),
decoding.py (DecodingOptions, logit rules, the greedy loop), longform.py (windows of long
audio), options.py (ModelOptions), pipeline.py (Transcriber), writers.py (txt/vtt/srt/tsv/json).
Imports nothing from build, measure or study.
"""
