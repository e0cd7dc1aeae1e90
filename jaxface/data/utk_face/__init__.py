"""TFDS builder for UTKFace (``utk_face``)."""

from jaxface.data.utk_face.utk_face_dataset_builder import DATASETS, Builder, UtkFaceConfig, make_config

__all__ = ["DATASETS", "Builder", "UtkFaceConfig", "make_config"]
