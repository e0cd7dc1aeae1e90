"""Bulk labelling on Ray Data: ``python -m jaxface.bulk INPUT ... [--model FILE | --workdir DIR] --out DIR``.

Photos on a filesystem that every node sees go through two stages: ``Crops``
actors read, detect and crop (CPU), and ``Labels`` actors hold the exported
model and label the crops in batches (on GPUs when the cluster has them). The
records, one row per face with ``predict``'s fields, go to Parquet. Ray runs
embedded (``ray.init()`` on this machine) unless ``--address`` names a cluster.
"""
