"""The SavedModel each Trainer exports: the serving signatures (the TF Serving contract) and the
warm-up requests TF Serving replays when it loads a version."""
