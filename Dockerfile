# One image for every liveshop process: the web (uvicorn), the Celery worker and beat.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBUG=0

WORKDIR /app
RUN groupadd --system liveshop && useradd --system --gid liveshop --home /app liveshop

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=liveshop:liveshop . .
# collectstatic needs settings, not secrets: a throwaway key for this one step.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v0 \
    && mkdir -p /app/var && chown liveshop:liveshop /app/var

USER liveshop
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"

CMD ["uvicorn", "liveshop.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--ws", "websockets-sansio", "--ws-per-message-deflate", "false", "--ws-max-size", "65536", \
     "--proxy-headers", "--no-access-log"]
