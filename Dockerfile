# UNTESTED: no container engine runs on the machines this project is developed on.
# For people who have one and want the seed's pinned-container runs, e.g.:
#   docker build -t whisper-ort .
#   docker run --rm --cpus 4 --memory 4g -v "$PWD/results:/app/results" whisper-ort \
#       whisper-ort compare --threads 4 --repeats 3
# Without an engine, `whisper-ort compare --cores-list "1 2" --memory-gb 4` gives the
# same limits with CPU affinity and a memory cap (see README).
FROM python:3.11-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends make git && rm -rf /var/lib/apt/lists/*
COPY . .
# torch==2.13.0 resolves to a CUDA build on PyPI; take the CPU wheel from PyTorch's index.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
        -c constraints.txt -e ".[notebooks,peers,export,dev]" \
    && whisper-ort export && whisper-ort optimize && make audio
ENV HF_HUB_OFFLINE=1
CMD ["whisper-ort", "bench", "--audio-dir", "audio", "--threads", "2"]
