"""``python -m jaxface.plot --workdirs A B [...] --out DIR [--split validation]``

PNG figures comparing trained models: training curves, final metrics side by
side, predicted vs true age, age MAE per age band, gender confusion matrices
(``jaxface.figures``). Run ``jaxface.evaluate`` first for all but the curves.
"""

from __future__ import annotations

import argparse

from jaxface import cli, figures


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxface.plot", description=__doc__.split("\n\n")[1])
  p.add_argument("--workdirs", nargs="+", required=True)
  p.add_argument("--out", required=True)
  p.add_argument("--split", default="validation", help="which eval_<split>.json to plot (default validation)")
  args = p.parse_args(argv)
  cli.setup_logging()
  try:
    for path in figures.plot(args.workdirs, args.out, args.split):
      print(path)
  except (FileNotFoundError, ValueError) as e:
    return cli.error(e)
  return 0


if __name__ == "__main__":
  cli.run(main)
