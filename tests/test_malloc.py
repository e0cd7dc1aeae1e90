"""jaxface.xla.malloc: which verbs start again with huge pages, and how their environment and command line carry
over (a training run's run.json records it: tests/test_train.py)."""

import subprocess
import sys

import pytest

from jaxface.xla import malloc


def test_the_verb_is_read_from_the_command_line_with_its_flags():
  assert malloc.verb(["python", "-X", "importtime", "-m", "jaxface.train", "-m", "x"]) == "jaxface.train"
  assert malloc.verb(["python", "-c", "import jaxface"]) is None
  assert malloc.verb(["python", "-m"]) is None


def test_only_the_verbs_that_train_want_huge_pages_and_only_once():
  train = ["/usr/bin/python3", "-m", "jaxface.train", "--arch", "custom"]
  assert malloc.wants_hugepages(train, {})
  assert not malloc.wants_hugepages(["python", "-m", "jaxface.predict", "photo.jpg"], {})
  assert not malloc.wants_hugepages(train, {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})  # the user's choice wins
  env = malloc.environ_with_hugepages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=4", "HOME": "/h"})
  assert env == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=4:glibc.malloc.hugetlb=1", "HOME": "/h"}
  assert not malloc.wants_hugepages(train, env)  # the started-again process does not start again


@pytest.mark.skipif(not malloc.glibc(), reason="needs glibc 2.35 or newer")
def test_a_verb_that_starts_again_keeps_its_arguments_and_streams():
  """The started-again process runs the same command once: one usage text, from the flags given."""
  res = subprocess.run(
    [sys.executable, "-X", "utf8", "-m", "jaxface.train", "--help"], capture_output=True, text=True, timeout=120
  )
  assert res.returncode == 0 and res.stdout.count("usage: python -m jaxface.train") == 1, res.stderr[-2000:]
  assert "--arch" in res.stdout
