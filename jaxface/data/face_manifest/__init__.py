"""TFDS builder for a face collection described by a manifest (``face_manifest``)."""

from jaxface.data.face_manifest.face_manifest_dataset_builder import Builder, FaceManifestConfig, make_config

__all__ = ["Builder", "FaceManifestConfig", "make_config"]
