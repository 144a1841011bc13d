# syntax=docker/dockerfile:1

# Build stage: install the locked dependencies into a virtual environment,
# then build this project's wheel (poetry-core) and add it to the same venv.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    POETRY_NO_INTERACTION=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN pip install "poetry>=2,<3" && python -m venv /opt/venv

WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml poetry.lock README.md ./
RUN poetry install --only main --no-root

COPY src ./src
RUN poetry build --format wheel && pip install --no-deps dist/*.whl


# Runtime stage: the venv alone, no compiler, no Poetry, run by an unprivileged user.
FROM python:3.11-slim AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ASYNCFLOW_DATABASE_URL=sqlite+aiosqlite:////data/asyncflow.db

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin asyncflow \
    && mkdir /data && chown asyncflow:asyncflow /data

COPY --from=build /opt/venv /opt/venv

USER asyncflow
WORKDIR /home/asyncflow
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"]

CMD ["asyncflow", "serve", "--host", "0.0.0.0", "--port", "8000"]
