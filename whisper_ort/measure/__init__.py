"""Measurement: records and their summary (records.py), the machine (environment.py,
hardware.py floors), `whisper-ort bench`, `compare` against the peers (compare.py,
workers.py, compare_summary.py, peers/), levers.py, longbench.py, wer.py, diff.py."""
