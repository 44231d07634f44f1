"""The study: the results layout (paths.py, the one owner of every path), the runs that make
records (runs.py), loading them (load.py), tables, plots, markdown, RESULTS.md
(results_md.py) and the notebooks executed with papermill (notebooks.py; `python -m
whisper_ort.study`)."""
