"""jaxface: age estimation and gender classification from faces, in JAX/Flax."""


def __getattr__(name: str):
  # Lazy: `import jaxface` stays light; `from jaxface import Predictor` loads the model stack.
  if name == "Predictor":
    from jaxface.inference.predictor import Predictor

    return Predictor
  raise AttributeError(name)
