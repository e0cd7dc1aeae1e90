"""Faces in video: frames read with PyAV (the ``video`` extra), faces followed across frames, results per person."""
