"""The names of the two models: node ids, serving folders and TF Serving model names."""

CONTENT_BASED = 'content_based'
COLLABORATIVE_FILTERING = 'collaborative_filtering'
MODEL_NAMES = (CONTENT_BASED, COLLABORATIVE_FILTERING)
