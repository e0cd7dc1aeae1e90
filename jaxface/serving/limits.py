"""What one request may send, and how long and how many requests may take: shown at ``GET /v1/model``."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Limits:
  max_files: int = 16  # images in one request
  max_bytes: int = 10 * 2**20  # per image file
  max_pixels: int = 40_000_000  # per image, width x height
  body_s: float = 60.0  # for a request's body to arrive (408 after)
  answer_s: float = 30.0  # for the answer, once the body is in (504 after)
  max_active: int = 16  # requests at work at once (decoding, detection, the model)
  max_waiting: int = 32  # requests let in beyond max_active (their bodies arriving, or in line); more: 503 at once
  decode_pixels: int = 2 * 40_000_000  # decoded at once across all requests (a decode waits for its pixels)

  @property
  def max_body(self) -> int:
    """A whole request: every file at its limit, plus room for the multipart framing."""
    return self.max_files * self.max_bytes + 64 * 2**10

  @property
  def max_spooled(self) -> int:
    """The most request bodies may take on disk at once: every request let in, each at its limit."""
    return (self.max_active + self.max_waiting) * self.max_body
