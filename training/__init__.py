"""amd-train: build the classifier (and later the ASR model) from your own recordings."""
