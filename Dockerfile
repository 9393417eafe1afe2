# The email worker as a container: python3 main.py, runtime requirements only.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HTTP_BIND=0.0.0.0 \
    HEALTH_PORT=8080 \
    METRICS_PORT=8000

RUN groupadd --system --gid 10001 email-worker \
    && useradd --system --uid 10001 --gid email-worker \
       --home-dir /app --no-create-home --shell /usr/sbin/nologin email-worker

WORKDIR /app

# Runtime requirements only: the test tools stay out of the image.
COPY requirements.txt ./
RUN python -m pip install --no-compile -r requirements.txt

COPY main.py ./
COPY email_worker/ ./email_worker/

USER 10001:10001

EXPOSE 8080 8000

# The worker finishes in-flight messages on SIGTERM.
STOPSIGNAL SIGTERM

# 200 while every domain polls; slim images have no curl, so ask Python.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('HEALTH_PORT', '8080'), timeout=4).status == 200 else 1)"]

ENTRYPOINT ["python", "main.py"]
