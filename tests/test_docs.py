"""The docs site builds with MkDocs in strict mode (a broken link, a missing anchor or a page left out of the nav
fails), and the README is a front page whose links all lead somewhere."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_site_builds_strictly(tmp_path):
  pytest.importorskip("mkdocs")
  p = subprocess.run(
    [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
    cwd=ROOT, capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
  )  # fmt: skip
  assert p.returncode == 0, p.stderr[-3000:]
  assert (tmp_path / "site" / "bulk" / "index.html").exists()


def test_the_readme_is_a_front_page_whose_links_resolve():
  text = (ROOT / "README.md").read_text()
  assert len(text.splitlines()) <= 200
  for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", text):
    if not target.startswith(("http://", "https://")):
      assert (ROOT / target).exists(), f"README links to {target}, which does not exist"
