import pytest

from jaxface.data import labels


@pytest.mark.parametrize(
  "name, expected",
  [
    ("26_1_0_20170103175557343.jpg.chip.jpg", (26, 1, 0)),
    ("24_0_1_20170116220224657 .jpg.chip.jpg", (24, 0, 1)),
    ("55_0_0_20170116232725357jpg.chip.jpg", (55, 0, 0)),
    ("39_1_20170116174525125.jpg.chip.jpg", (39, 1, -1)),
    ("61_1_20170109142408075.jpg.chip.jpg", (61, 1, -1)),
    ("61_1_20170109150557335.jpg.chip.jpg", (61, 1, -1)),
    ("14_0_0_2017011022340900.jpg.chip.jpg", (14, 0, 0)),
    ("28_1_2_201701161846515488.jpg.chip.jpg", (28, 1, 2)),
    ("116_0_4_20170120134639935.jpg.chip.jpg", (116, 0, 4)),
  ],
)
def test_parse_lenient(name, expected):
  got = labels.parse_file_name(name)
  assert (got.age, got.gender, got.race) == expected


@pytest.mark.parametrize("name", ["notes.txt", "24_2_1_2017.jpg", "_0_1_2017.jpg", "200_0_0_2017.jpg", "24-0-1.jpg"])
def test_parse_rejects(name):
  with pytest.raises(labels.LabelError, match="file name|age"):
    labels.parse_file_name(name)


def test_age_bands():
  assert [labels.age_band(a) for a in (0, 12, 13, 19, 20, 39, 40, 59, 60, 79, 80, 116)] == [
    0,
    0,
    1,
    1,
    2,
    2,
    3,
    3,
    4,
    4,
    5,
    5,
  ]
  assert labels.AGE_BAND_NAMES == ("0-12", "13-19", "20-39", "40-59", "60-79", "80+")


def test_provenance_command_names_the_module():
  from pathlib import Path

  import jaxface
  from jaxface import provenance

  pkg = Path(jaxface.__file__).parent
  assert provenance.command([str(pkg / "train.py"), "--arch", "custom"]) == "python -m jaxface.train --arch custom"
  assert provenance.command([str(pkg / "data" / "__main__.py")]) == "python -m jaxface.data"
  assert provenance.command(["benchmarks/x.py", "--a b"]) == "python benchmarks/x.py '--a b'"
