# The pipeline image: every Kubeflow step runs in it (kubeflow_runner.py --image), and so can
# Dataflow's workers (--beam-arg=--sdk_container_image=IMAGE). TFX 1.16's own image (Python
# 3.10, TensorFlow 2.16, Beam) with this project's exact dependency set and code installed.
#   make image IMAGE=REGISTRY/movielens-recommender:TAG && docker push REGISTRY/movielens-recommender:TAG
FROM tensorflow/tfx:1.16.0

# TFX, Transform and TFMA need Keras 2 (tf_keras) as tf.keras: set before TensorFlow loads.
ENV TF_USE_LEGACY_KERAS=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /pipeline
COPY requirements.lock .
RUN python -m pip install --no-cache-dir -r requirements.lock

COPY setup.py requirements.in ./
COPY components components
COPY pipeline pipeline
COPY serving serving
COPY schema schema
# Editable, so the curated schema (schema/, outside the packages) is found next to the code.
RUN python -m pip install --no-cache-dir --no-deps --no-build-isolation -e . \
 && python -c "from tfx import v1; import components.models.trainer, pipeline.prepare_data"
