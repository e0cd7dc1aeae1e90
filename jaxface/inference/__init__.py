"""Inference: a trained model back from its workdir, its jitted forward pass, and what runs it.

``restore.load`` reads only the weights (params and batch statistics) of one
checkpoint, placed on this process's device, whatever devices trained it.
``InferenceModel`` is the one forward pass that ``evaluate``, ``predict`` and
the ``Predictor`` share; ``export`` serialises it, and ``exported`` loads that
file with JAX alone. Nothing here builds an optimizer or a training state.
"""

# The model stack loads lazily: a Predictor of an exported file never imports jaxface.models.
_LAZY = {"TTA": "names", "CHECKPOINTS": "names", "InferenceModel": "model", "Restored": "restore", "load": "restore"}


def __getattr__(name: str):
  if name in _LAZY:
    import importlib

    return getattr(importlib.import_module(f"jaxface.inference.{_LAZY[name]}"), name)
  raise AttributeError(name)


__all__ = sorted(_LAZY)
