"""Serving a trained model over HTTP: a FastAPI app, its request batcher, and its web page."""
