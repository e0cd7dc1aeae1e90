"""Inference: a trained model back from its workdir, its jitted forward pass, and what runs it.

``restore.load`` reads only the weights (params and batch statistics) of one
checkpoint, placed on this process's device, whatever devices trained it.
``InferenceModel`` is the one forward pass that ``evaluate``, ``predict`` and
the ``Predictor`` share. Nothing here builds an optimizer or a training state.
"""

from jaxface.inference.model import TTA, InferenceModel
from jaxface.inference.restore import CHECKPOINTS, Restored, load

__all__ = ["CHECKPOINTS", "TTA", "InferenceModel", "Restored", "load"]
