"""UTKFace labels: parsing file names and grouping ages into bands.

UTKFace stores the labels in the file name,
``[age]_[gender]_[race]_[date&time].jpg.chip.jpg``. Real copies contain names
with a missing race field, a missing dot or a stray space, so parsing is
lenient: age and gender must match ``^(\\d+)_([01])_``; race is read only when
a third field of one digit 0-4 follows, else it is unknown (-1).
"""

from __future__ import annotations

import dataclasses
import re

_LABELS = re.compile(r"^(\d+)_([01])_")
_RACE = re.compile(r"^\d+_[01]_([0-4])_")

MAX_AGE = 116  # the oldest age in the UTKFace release
UNKNOWN_RACE = -1
GENDERS = ("male", "female")
RACES = ("white", "black", "asian", "indian", "others")
# Upper bounds (inclusive) of the age bands used for stratification and reports.
AGE_BANDS = ((0, 12), (13, 19), (20, 39), (40, 59), (60, 79), (80, MAX_AGE))
AGE_BAND_NAMES = tuple(f"{lo}-{hi}" if hi < MAX_AGE else f"{lo}+" for lo, hi in AGE_BANDS)


@dataclasses.dataclass(frozen=True, slots=True)
class Labels:
  age: float  # years (UTKFace: whole); a range's midpoint; -1 when unknown (a manifest's row)
  gender: int  # 0 male, 1 female; -1 unknown (a manifest's row)
  race: int  # 0-4, or UNKNOWN_RACE
  # A manifest's row (``data.manifest``): the age's range (equal ends for an exact age) and an apparent age's std.
  age_min: float | None = None
  age_max: float | None = None
  age_std: float = 0.0

  @property
  def partial(self) -> bool:
    """Labels the classic loss cannot take as they are: an age range or spread, or an unknown age or gender."""
    return (
      self.age < 0 or self.gender < 0 or self.age_std > 0 or (self.age_min is not None and self.age_min != self.age_max)
    )


class LabelError(ValueError):
  """A file name that carries no UTKFace labels."""


def parse_file_name(name: str) -> Labels:
  """Labels of one UTKFace file name (a base name, not a path)."""
  m = _LABELS.match(name)
  if m is None:
    raise LabelError(
      f"{name!r}: file name does not start with '<age>_<gender 0|1>_' "
      "as UTKFace names do ([age]_[gender]_[race]_[date&time].jpg.chip.jpg)"
    )
  age = int(m.group(1))
  if age > MAX_AGE:
    raise LabelError(f"{name!r}: age {age} is outside 0-{MAX_AGE}")
  race = _RACE.match(name)
  return Labels(age=age, gender=int(m.group(2)), race=int(race.group(1)) if race else UNKNOWN_RACE)


def age_band(age: float) -> int:
  """Index into AGE_BANDS of the band holding ``age`` (a fractional age goes by its whole years); -1 when unknown."""
  if age < 0:
    return -1
  for i, (_, hi) in enumerate(AGE_BANDS):
    if int(age) <= hi:
      return i
  raise ValueError(f"age {age} is outside 0-{MAX_AGE}")
