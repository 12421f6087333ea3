"""Transform's `preprocessing_fn`: vocabularies, id lists and buckets, analysed over the training
split and saved in the transform graph that training and serving share."""
