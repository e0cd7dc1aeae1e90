"""Data: UTKFace and your own faces (manifests and the common layouts), prepared once as TFDS datasets, read by grain."""
