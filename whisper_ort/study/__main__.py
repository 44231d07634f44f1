"""`python -m whisper_ort.study --params params/default.yaml`: every notebook, then RESULTS.md."""

import sys

from whisper_ort.study.notebooks import main

sys.exit(main())
