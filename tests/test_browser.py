"""The web page in a real browser: Debian's chromium and chromium-driver, driven by selenium.

Install them with ``apt-get install chromium chromium-driver`` (as root). Where
there is no browser the test skips, saying why; with JAXFACE_REQUIRE_BROWSER=1
(CI sets it) it fails instead.
"""

import os
import threading
import time
import warnings
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def browser_or_skip():
  missing = [str(p) for p in (CHROMIUM, DRIVER) if not p.exists()]
  for module in ("selenium", "fastapi", "uvicorn", "skimage"):
    try:
      __import__(module)
    except ImportError:
      missing.append(module)
  if missing:
    msg = f"no browser test: {', '.join(missing)} missing (apt-get install chromium chromium-driver; pip install -e '.[dev]')"
    if os.environ.get("JAXFACE_REQUIRE_BROWSER") == "1":
      pytest.fail(msg)
    warnings.warn(msg, stacklevel=2)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def server(trained):
  browser_or_skip()
  import portpicker
  import uvicorn

  from jaxface import Predictor
  from jaxface.serving.app import create_app

  predictor = Predictor.from_workdir(trained, batch_size=4)
  app = create_app(predictor, predictor.info)
  port = portpicker.pick_unused_port()
  srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
  thread = threading.Thread(target=srv.run, daemon=True)
  thread.start()
  deadline = time.monotonic() + 60
  while not srv.started:
    assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
    time.sleep(0.05)
  yield f"http://127.0.0.1:{port}/"
  srv.should_exit = True
  thread.join(timeout=30)


@pytest.fixture
def driver(tmp_path):
  from selenium import webdriver
  from selenium.webdriver.chrome.service import Service

  opts = webdriver.ChromeOptions()
  opts.binary_location = str(CHROMIUM)
  # No sandbox (CI runs as root); no background connections (the network is closed).
  for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
              "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={tmp_path / 'chromium'}"):  # fmt: skip
    opts.add_argument(arg)
  d = webdriver.Chrome(service=Service(str(DRIVER)), options=opts)
  yield d
  d.quit()


def test_upload_the_astronaut_and_see_one_labelled_face(server, driver, tmp_path):
  from selenium.webdriver.common.by import By
  from selenium.webdriver.support.ui import WebDriverWait
  from skimage import data

  photo = tmp_path / "astronaut.jpg"
  Image.fromarray(data.astronaut()).save(photo, quality=95)
  driver.get(server)
  assert driver.title == "jaxface"
  WebDriverWait(driver, 30).until(lambda d: "custom, 32 px" in d.find_element(By.ID, "model").text)
  driver.find_element(By.ID, "files").send_keys(str(photo))
  rows = WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.faces tbody tr"))
  assert len(rows) == 1
  cells = [c.text for c in rows[0].find_elements(By.TAG_NAME, "td")]
  assert cells[0] == "1" and cells[2] in ("male", "female") and float(cells[1].split()[0]) > 0
  assert driver.find_element(By.CSS_SELECTOR, ".result .count").text == "1 face"
  img = driver.find_element(By.CSS_SELECTOR, ".result img")
  width = WebDriverWait(driver, 30).until(lambda d: d.execute_script("return arguments[0].naturalWidth", img))
  assert width == 512  # the annotated PNG decoded and rendered
