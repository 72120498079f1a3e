"""The ``xnowcast`` command line.

Every subcommand calls the same public functions as the Python API; this
module only parses arguments, reports progress and turns errors into one-line
messages with a non-zero exit status.

Run ``xnowcast --help`` or ``xnowcast SUBCOMMAND --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main", "build_parser"]

#: Exit status for bad input (a missing file, a bad model name, a wrong variable).
EXIT_BAD_INPUT = 2


def _parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as JSON when it parses (numbers, lists, true)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"parameters are KEY=VALUE, got {text!r}")
    try:
        return key.strip().replace("-", "_"), json.loads(value)
    except json.JSONDecodeError:
        return key.strip().replace("-", "_"), value


def _init_times(text: str) -> Any:
    """``latest``, ``all``, ``START:STOP`` (a slice) or a comma-separated list of times."""
    if text in ("latest", "all"):
        return text
    if ":" in text and "T" not in text.split(":")[0] and text.count(":") == 1:
        start, stop = text.split(":")
        return slice(start or None, stop or None)
    if ".." in text:
        start, stop = text.split("..", 1)
        return slice(start or None, stop or None)
    parts = [p for p in text.split(",") if p]
    return parts[0] if len(parts) == 1 else parts


def _add_input_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="a netCDF file, a zarr store, or a quoted glob of "
                                      "per-scan files such as 'radar/*.nc'")
    parser.add_argument("--var", help="variable to read when the files hold several")
    parser.add_argument("--time", dest="time_source",
                        help="time variable of per-scan files, or a file-name pattern "
                             "such as '%%Y%%m%%d_%%H%%M%%S'")


def _cmd_forecast(args: argparse.Namespace) -> int:
    from xnowcast.forecast import forecast
    from xnowcast.io import open_archive, save_forecast

    cube = open_archive(args.input, var=args.var, time=args.time_source)
    params = dict(args.param or [])
    if args.n_in is not None:
        params["n_in"] = args.n_in
    if args.n_out is not None:
        params["n_out"] = args.n_out
    fc = forecast(cube, args.model, init_times=args.init_times, every=args.every, **params)
    with _progress(fc):
        save_forecast(fc, args.out, overwrite=args.overwrite)
    shape = " x ".join(f"{d}={n}" for d, n in fc.sizes.items())
    print(f"wrote {args.out}: {args.model} forecast, {shape}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from xnowcast.models import list_models

    for name in list_models():
        print(name)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from xnowcast.datasets import synthetic_radar
    from xnowcast.forecast import forecast
    from xnowcast.io import save_forecast

    t0 = time.perf_counter()
    cube = synthetic_radar(n_times=args.frames, size=args.size, seed=args.seed)
    print(f"synthetic radar cube: {dict(cube.sizes)}, step 5 min, "
          f"{float(cube.isnull().mean()) * 100:.0f}% outside radar range (NaN)")
    fc = forecast(cube, args.model, init_times="latest")
    save_forecast(fc, args.out, overwrite=True)
    print(f"{args.model} forecast from {str(fc.init_time.values)[:16]}: "
          f"{fc.sizes['lead_time']} lead times of {fc.sizes['y']}x{fc.sizes['x']} "
          f"-> {args.out} ({time.perf_counter() - t0:.1f} s)")
    return 0


class _progress:
    """A dask progress bar while a lazy result is computed (stderr)."""

    def __init__(self, obj: Any) -> None:
        self.active = getattr(obj, "chunks", None) is not None

    def __enter__(self):
        if self.active:
            from dask.diagnostics import ProgressBar

            self.bar = ProgressBar(minimum=1.0, out=sys.stderr)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.active:
            self.bar.__exit__(*exc)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xnowcast`` command."""
    from xnowcast._version import __version__

    parser = argparse.ArgumentParser(
        prog="xnowcast",
        description="Nowcasting of radar and satellite cubes (xarray, dask).",
    )
    parser.add_argument("--version", action="version", version=f"xnowcast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("forecast", help="forecast a cube or archive and write .zarr or .nc",
                       description="Forecast INPUT with a model and write the forecast to "
                                   "OUT (.zarr or .nc).")
    _add_input_args(p)
    p.add_argument("--model", default="persistence",
                   help="model name (see `xnowcast models`) or checkpoint path (default: "
                        "persistence)")
    p.add_argument("--out", required=True, help="output path ending in .zarr or .nc")
    p.add_argument("--init-times", type=_init_times, default="latest",
                   help="'latest' (default), 'all', START..STOP, or comma-separated times")
    p.add_argument("--every", help="only init times on multiples of this interval, e.g. 30min")
    p.add_argument("--n-in", type=int, help="input frames per forecast (default 12)")
    p.add_argument("--n-out", type=int, help="lead times per forecast (default 24)")
    p.add_argument("--param", action="append", type=_parse_param, metavar="KEY=VALUE",
                   help="model parameter (repeatable), e.g. --param method=dis")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.set_defaults(func=_cmd_forecast)

    p = sub.add_parser("models", help="list the available models")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("demo", help="forecast a generated radar cube and write the result",
                       description="Generate a synthetic radar cube (no data needed), "
                                   "forecast it and write the forecast file.")
    p.add_argument("--out", default="xnowcast-demo.nc", help="output .nc or .zarr "
                                                            "(default: xnowcast-demo.nc)")
    p.add_argument("--model", default="persistence", help="model name (default: persistence)")
    p.add_argument("--size", type=int, default=256, help="grid size in pixels (default 256)")
    p.add_argument("--frames", type=int, default=36, help="frames to generate (default 36)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (ValueError, TypeError, KeyError, FileNotFoundError, FileExistsError,
            ImportError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"xnowcast {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("xnowcast: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
