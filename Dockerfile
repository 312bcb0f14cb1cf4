FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 TF_CPP_MIN_LOG_LEVEL=2
WORKDIR /app
RUN useradd --create-home --uid 1000 portal && mkdir -p /data && chown portal /data
# ACCELERATOR=gpu (docker-compose's worker-gpu) swaps the CPU TensorFlow for the CUDA build.
ARG ACCELERATOR=cpu
COPY requirements.txt requirements-gpu.txt ./
RUN pip install -r requirements.txt \
 && if [ "$ACCELERATOR" = "gpu" ]; then pip uninstall -y tensorflow-cpu && pip install -r requirements-gpu.txt; fi
COPY . .
# The code version runs and model cards record (the image has no .git and no git):
#   docker compose build --build-arg PORTAL_CODE_VERSION=$(git rev-parse HEAD)   (make images does this)
ARG PORTAL_CODE_VERSION=unknown
ENV PORTAL_CODE_VERSION=$PORTAL_CODE_VERSION
# collectstatic needs a settings module that imports; the build-time key is thrown away.
RUN PORTAL_ENV=dev SECRET_KEY=build-only python manage.py collectstatic --noinput
USER portal
EXPOSE 8000
CMD ["gunicorn", "mlportal.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
