"""Faces in photos: reading photos, detecting faces, cropping them as UTKFace does, drawing the results."""

from jaxface.faces.crop import crop
from jaxface.faces.detect import DETECTORS, detect, detect_many, ready
from jaxface.faces.draw import annotate, drawn
from jaxface.faces.face import DetectorError, Face
from jaxface.faces.photos import FORMATS, IMAGE_SUFFIXES, NOT_AN_IMAGE, Photo, expand_inputs, load_photo, reduced

__all__ = [
  "DETECTORS",
  "DetectorError",
  "FORMATS",
  "IMAGE_SUFFIXES",
  "NOT_AN_IMAGE",
  "Face",
  "Photo",
  "annotate",
  "crop",
  "detect",
  "detect_many",
  "drawn",
  "expand_inputs",
  "load_photo",
  "reduced",
  "ready",
]
