"""jaxface: age estimation and gender classification from faces, in JAX/Flax."""

import sys

if sys.argv[:1] == ["-m"]:  # ``python -m jaxface.<verb>`` is being located: its own process, not an importer's
  from jaxface.xla import malloc

  malloc.setup()


def __getattr__(name: str):
  # Lazy: `import jaxface` stays light; `from jaxface import Predictor` loads the model stack.
  if name == "Predictor":
    from jaxface.inference.predictor import Predictor

    return Predictor
  raise AttributeError(name)
