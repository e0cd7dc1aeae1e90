"""Training: the optimizer, losses, pure steps over explicit state, checkpoints, and the trainer's loop."""
