"""The two recommenders (`content_based`, `collaborative_filtering`) and their training: the
Trainer's `run_fn`, reading Transform's examples, batches, stored rating histories."""
