"""The project's TFX pieces: the typed CsvExampleGen executor, the gate that stops a run on
anomalies, the Pusher that publishes by rename, and the resolver of the baseline model."""
