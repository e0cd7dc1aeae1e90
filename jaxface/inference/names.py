"""Choice lists of inference, defined once and light to import (CLIs offer them before loading a model)."""

CHECKPOINTS = ("best", "last")
TTA = ("none", "flip")  # test-time augmentation: 'flip' averages each face with its mirror
