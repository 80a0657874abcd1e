# amd-bridge: the service, its embedded models, nothing else.
#
#   docker build -t amd-bridge .                       # CPU (int8)
#   docker build -t amd-bridge:cuda \
#     --build-arg BASE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 \
#     --build-arg DEVICE=cuda .                        # NVIDIA GPU (float16); run with --gpus all
#
# Settings are AMD_* variables (see the README). The container listens on all
# interfaces; the PBX links (AMI, event socket) are loopback-only by design, so
# run it in the PBX's network namespace (docker-compose.yml does).
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}
ARG DEVICE=cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    AMD_DEVICE=${DEVICE} \
    AMD_HTTP_HOST=0.0.0.0 \
    AMD_AUDIOSOCKET_HOST=0.0.0.0
# The CUDA images have no Python: add Debian/Ubuntu's (3.10+ is supported).
RUN if ! command -v python3 >/dev/null 2>&1; then \
        apt-get update && \
        apt-get install -y --no-install-recommends python3 python3-venv && \
        rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY bridge ./bridge
COPY models ./models
COPY training ./training
RUN python3 -m venv /opt/amd && /opt/amd/bin/pip install --upgrade pip && /opt/amd/bin/pip install .
RUN useradd --system --uid 10001 --home-dir /nonexistent amd
USER amd
WORKDIR /
EXPOSE 8080 9092
HEALTHCHECK --interval=10s --timeout=3s CMD ["/opt/amd/bin/python", "-c", \
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["/opt/amd/bin/amd-bridge", "serve"]
