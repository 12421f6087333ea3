"""MovieLens ingestion, run before the DAG: the three file formats and their row validation, the
GroupLens download, the splits, and the column contract (`features`) every later step reads."""
