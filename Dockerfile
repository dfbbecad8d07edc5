# The Airflow image for docker-compose and Kubernetes: the official image plus this project's stack.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt

# include/ is baked in for Kubernetes; docker-compose also mounts it, beside dags/ and plugins/.
COPY --chown=airflow:root include /opt/airflow/include
ENV PYTHONPATH=/opt/airflow \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false
