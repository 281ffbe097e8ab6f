# The packed task's agent sidecar (docs/decisions/0021): fanout's own image, never the
# job's. It downloads the batch attempt from S3, lays it out for the runner in the shared
# volume, and uploads the items' marks and results as the runner writes them.
# Built from the repository root with everything but the agent's module left out (the CDK
# asset's exclude list, infra/packed.py).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN pip install --no-cache-dir boto3==1.44.5
RUN useradd --system --uid 10002 --no-create-home fanout
WORKDIR /agent
COPY fanout/__init__.py fanout/__init__.py
COPY fanout/runtime/__init__.py fanout/runtime/packed_agent.py fanout/runtime/
USER fanout

ENTRYPOINT ["python", "-m", "fanout.runtime.packed_agent"]
