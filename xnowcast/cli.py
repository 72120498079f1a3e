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
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

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


def _add_input_args(parser: argparse.ArgumentParser, several: bool = False) -> None:
    parser.add_argument(
        "input",
        help="a netCDF file, a zarr store, or a quoted glob of "
        "per-scan files such as 'radar/*.nc'" + (" (or several files)" if several else ""),
    )
    if several:  # an unquoted glob, expanded by the shell into many paths
        parser.add_argument("more_inputs", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--var", help="variable to read when the files hold several")
    parser.add_argument(
        "--time",
        dest="time_source",
        help="time variable of per-scan files, or a file-name pattern "
        "such as '%%Y%%m%%d_%%H%%M%%S'",
    )


def _add_window_args(parser: argparse.ArgumentParser) -> None:
    """``--every``, ``--n-in``, ``--n-out`` and ``--param``, shared by forecast and batch."""
    parser.add_argument("--every", help="only init times on multiples of this interval, e.g. 30min")
    parser.add_argument("--n-in", type=int, help="input frames per forecast (default 12)")
    parser.add_argument("--n-out", type=int, help="lead times per forecast (default 24)")
    parser.add_argument(
        "--members", type=int, help="ensemble size of an ensemble model (e.g. --model steps)"
    )
    parser.add_argument(
        "--seed", type=int, help="seed of an ensemble model: the same seed, the same ensemble"
    )
    parser.add_argument(
        "--param",
        action="append",
        type=_parse_param,
        metavar="KEY=VALUE",
        help="model parameter (repeatable), e.g. --param motion=dis",
    )
    g = parser.add_argument_group("run settings (how the model runs, not what it is)")
    g.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    g.add_argument("--batch-size", type=int, help="windows or tiles per forward pass")
    g.add_argument("--precision", help="auto (default), fp32 or bf16")
    g.add_argument("--tile", type=int, help="cut larger grids into tiles of this many pixels")
    g.add_argument("--tile-overlap", type=int, help="overlap of neighbouring tiles, pixels")
    g.add_argument("--threads", type=int, help="CPU threads of the libraries per forecast")


def _inputs(args: argparse.Namespace) -> str | list[str]:
    """INPUT, or the list of paths when several were given."""
    more = getattr(args, "more_inputs", None) or []
    return [args.input, *more] if more else args.input


def _model_params(args: argparse.Namespace) -> dict[str, Any]:
    """Model parameters from ``--param``, ``--n-in`` and ``--n-out``."""
    params = dict(args.param or [])
    if args.n_in is not None:
        params["n_in"] = args.n_in
    if args.n_out is not None:
        params["n_out"] = args.n_out
    for name in ("members", "seed"):  # ensemble models
        if getattr(args, name, None) is not None:
            params[name] = getattr(args, name)
    return params


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run settings given on the command line (``--device``, ``--threads``, ...)."""
    from xnowcast.models.settings import RunSettings

    values = {name: getattr(args, name, None) for name in RunSettings.names()}
    return {name: value for name, value in values.items() if value is not None}


def _cmd_forecast(args: argparse.Namespace) -> int:
    from xnowcast.forecast import forecast
    from xnowcast.io import open_archive, save_forecast
    from xnowcast.io.output import check_output

    check_output(args.out, overwrite=args.overwrite, inputs=_inputs(args))
    cube = open_archive(_inputs(args), var=args.var, time=args.time_source)
    with _reading({args.input: cube}):
        fc = forecast(
            cube,
            args.model,
            init_times=args.init_times,
            every=args.every,
            model_params=_model_params(args),
            **_settings(args),
        )
        with _progress(fc):
            save_forecast(
                fc,
                args.out,
                overwrite=args.overwrite,
                inputs=_inputs(args),
                zarr_format=args.zarr_format,
            )
    shape = " x ".join(f"{d}={n}" for d, n in fc.sizes.items())
    print(f"wrote {args.out}: {args.model} forecast, {shape}")
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from xnowcast.batch import forecast_archive
    from xnowcast.io import open_archive
    from xnowcast.io.output import check_output

    if args.scheduler and args.workers:
        raise ValueError(
            "give --scheduler ADDRESS (an existing cluster) or --workers N "
            "(a local cluster), not both"
        )
    if args.workers is not None and args.workers < 1:
        raise ValueError(
            f"--workers must be a positive number of worker processes, got "
            f"{args.workers}; leave it out to run on threads in this process"
        )
    check_output(args.out, overwrite=True, inputs=_inputs(args))  # resumes an existing OUT
    cube = open_archive(_inputs(args), var=args.var, time=args.time_source)
    settings = _settings(args)
    client, cluster = args.scheduler, None
    if args.workers:
        from xnowcast.optional import import_optional

        distributed = import_optional("distributed", "batch jobs on local worker processes")
        cluster = distributed.LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = distributed.Client(cluster)
        settings.setdefault("threads", 1)  # N single-threaded workers use N cores
    try:
        job = forecast_archive(
            cube,
            args.model,
            args.out,
            init_times=args.init_times,
            every=args.every,
            chunk_init_times=args.chunk_init_times,
            overwrite=args.overwrite,
            zarr_format=args.zarr_format,
            inputs=_inputs(args),
            retries=args.retries,
            client=client,
            model_params=_model_params(args),
            **settings,
        )
        summary = job.run(progress=not args.no_progress, retry_failed=args.retry_failed)
    finally:
        if cluster is not None:
            client.close()
            cluster.close()
    print(summary)
    return 1 if summary.failed else 0


def _cmd_models(args: argparse.Namespace) -> int:
    from xnowcast.models import list_models

    for name in list_models():
        print(name)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    import pandas as pd

    from xnowcast.datasets import synthetic_radar
    from xnowcast.forecast import forecast
    from xnowcast.io import save_forecast
    from xnowcast.io.output import check_output
    from xnowcast.models import get_model
    from xnowcast.verification import verify

    check_output(args.out, overwrite=args.overwrite)
    map_path = None if args.no_map else Path(args.map or Path(args.out).with_suffix(".png"))
    if map_path is not None:
        check_output(map_path, overwrite=args.overwrite)
    t0 = time.perf_counter()
    model = get_model(args.model)
    if args.frames < model.n_in:
        raise ValueError(
            f"--frames {args.frames} is fewer than the {model.n_in} input frames "
            f"of model {model.name!r}; give --frames {model.n_in + model.n_out} "
            "to verify every lead time"
        )
    cube = synthetic_radar(n_times=args.frames, size=args.size, seed=args.seed)
    print(
        f"synthetic radar cube: {dict(cube.sizes)}, step 5 min, "
        f"{float(cube.isnull().mean()) * 100:.0f}% outside radar range (NaN)"
    )
    # Forecast from the frame after which the cube still holds the whole truth.
    init = max(model.n_in - 1, cube.sizes["time"] - 1 - model.n_out)
    fc = forecast(cube, model, init_times=cube.time.values[init])
    save_forecast(fc, args.out, overwrite=args.overwrite)
    print(
        f"{model.name} forecast from {str(fc.init_time.values)[:16]}: "
        f"{fc.sizes['lead_time']} lead times of {fc.sizes['y']}x{fc.sizes['x']} "
        f"-> {args.out} ({time.perf_counter() - t0:.1f} s)"
    )
    observed = fc.valid_time.isin(cube.time.values)
    if bool(observed.any()):
        scores = verify(
            fc.isel(lead_time=observed.values),
            cube,
            ["mae", "csi"],
            thresholds=[1.0],
            reference="persistence",
        ).compute()
        print("lead     MAE (persistence)   CSI>1mm/h (persistence)")
        for lead in scores.lead_time.values[
            [0, 5, 11, -1] if scores.sizes["lead_time"] > 11 else slice(None)
        ]:
            s = scores.sel(lead_time=lead).squeeze()
            minutes = int(pd.Timedelta(lead).total_seconds() // 60)
            print(
                f"{minutes:>3} min  {float(s.mae):.3f} "
                f"({float(s.mae_persistence):.3f})       {float(s.csi):.3f} "
                f"({float(s.csi_persistence):.3f})"
            )
    if map_path is not None:
        _demo_map(fc, cube, map_path, args.overwrite)
    return 0


def _demo_map(fc: Any, cube: Any, path: Path, overwrite: bool) -> None:
    """Draw the demo forecast beside the observation into ``path`` and say where."""
    try:
        from xnowcast.plotting import plot_forecast

        plot_forecast(fc, obs=cube, path=path, overwrite=overwrite)
    except ImportError as err:
        print(f"map not drawn ({err})")
        return
    print(f"map of the forecast (bottom row) beside the observation (top row) -> {path}")


def _split_list(text: str, convert: Callable[[str], Any], what: str) -> list:
    """Comma-separated values of ``text`` through ``convert``; argparse's error naming ``what``."""
    try:
        return [convert(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}") from None


def _floats(text: str) -> list[float]:
    """Comma-separated numbers, e.g. ``0.7,0.15,0.15``."""
    return _split_list(text, float, "numbers")


def _ints(text: str) -> list[int]:
    """Comma-separated integers, e.g. ``0,480,0,480``."""
    return _split_list(text, int, "integers")


def _open_sequences_input(args: argparse.Namespace):
    """The cube of ``xnowcast sequences``: image files or anything ``open_archive`` reads."""
    from xnowcast.io import open_archive
    from xnowcast.io.images import ColorLegend, is_image_path, open_image_sequence

    image_opts = {
        "--crop": args.crop,
        "--size": args.size,
        "--colormap": args.colormap,
        "--units": args.units,
    }
    inputs = _inputs(args)
    if is_image_path(inputs):
        legend = (
            None if args.colormap is None else ColorLegend.read(args.colormap, units=args.units)
        )
        return open_image_sequence(
            inputs,
            time_format=args.time_source or "%Y%m%d%H%M",
            crop=args.crop,
            size=args.size,
            colormap=legend,
            units=args.units,
        )
    given = [k for k, v in image_opts.items() if v is not None]
    if given:
        raise ValueError(
            f"{', '.join(given)}: only for image inputs (e.g. 'sri/*.png'), and "
            f"{args.input} is not one"
        )
    return open_archive(inputs, var=args.var, time=args.time_source)


def _cmd_sequences(args: argparse.Namespace) -> int:
    import numpy as np

    from xnowcast.io.output import check_output
    from xnowcast.sequences import assign_sequences, sequence_table, set_names

    check_output(args.out, overwrite=args.overwrite, inputs=_inputs(args))
    cube = _open_sequences_input(args)
    with _progress(cube):
        table = sequence_table(
            cube,
            max_gap=args.max_gap,
            rain_threshold=args.rain_threshold,
            amount=args.amount,
            quantiles=args.quantiles,
            bins=args.bins,
            min_length=args.min_length,
            min_mean_category=args.min_mean_category,
        )
    if args.split:
        sets = assign_sequences(table, args.split, seed=args.seed)
        names = np.asarray(set_names(len(args.split)))
        table["set"] = names[sets.reindex(table["sequence_id"]).to_numpy()]
    _write_csv(table, args)
    edges = ", ".join(f"{e:.3g}" for e in table.attrs["category_edges"])
    print(
        f"wrote {args.out}: {len(table)} frames in {table.attrs['n_sequences_kept']} of "
        f"{table.attrs['n_sequences_found']} sequences kept (category edges {edges})"
    )
    return 0


def _write_csv(table: Any, args: argparse.Namespace, inputs: Any = None) -> None:
    """``table`` to ``args.out`` as CSV, atomically (``--overwrite`` to replace a file)."""
    from xnowcast.io.output import atomic_output

    with atomic_output(args.out, overwrite=args.overwrite, inputs=inputs or _inputs(args)) as tmp:
        table.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S")


def _cmd_verify(args: argparse.Namespace) -> int:
    import dask.threaded
    import pandas as pd

    from xnowcast.io import open_archive, open_forecast
    from xnowcast.io.output import check_output
    from xnowcast.verification import scores_to_dataframe, verify

    check_output(args.out, overwrite=args.overwrite, inputs=[args.forecast, args.obs])
    # no distributed client in this command: neither dask's rechunks nor the computation
    # below need import distributed (about 0.1 CPU s) to look for one
    with dask.config.set({"array.rechunk.method": "tasks"}):
        fc = open_forecast(args.forecast, var=args.var)
        obs = open_archive(args.obs, var=args.var, time=args.time_source)
        scores = verify(
            fc,
            obs,
            args.metrics,
            thresholds=args.thresholds,
            scales=args.scales,
            mean=args.mean,
            dim=args.dim,
            compare=args.compare,
            reference=args.reference,
            data_range=args.data_range,
            win_size=args.win_size,
            prob_bins=args.prob_bins,
            roc_thresholds=args.roc_thresholds,
        )
    from xnowcast.progress import TerminalProgress

    bar = TerminalProgress(enabled=False if args.no_progress else None)
    with _reading({args.obs: obs, args.forecast: fc}), bar:
        scores = scores.compute(scheduler=dask.threaded.get)  # named: no client looked for
    table = scores_to_dataframe(scores)
    table["lead_time"] = pd.to_timedelta(table["lead_time"]).dt.total_seconds() / 60.0
    table = table.rename(columns={"lead_time": "lead_time_min"})
    _write_csv(table, args, inputs=[args.forecast, args.obs])
    names = ", ".join(str(v) for v in scores.data_vars)
    leads = scores.sizes.get("lead_time")
    print(
        f"wrote {args.out}: {len(table)} scores ({names})"
        + (f" for {leads} lead times" if leads else "")
    )
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from xnowcast.optional import import_optional

    import_optional("matplotlib", "plotting").use("Agg")  # files only, no window
    from xnowcast.io import open_archive, open_forecast
    from xnowcast.io.output import atomic_output, check_output
    from xnowcast.plotting import animate, plot_forecast, set_natural_earth_dir

    inputs = [args.forecast, *([args.obs] if args.obs else [])]
    check_output(args.out, overwrite=args.overwrite, inputs=inputs)
    if args.natural_earth:
        set_natural_earth_dir(args.natural_earth)
    fc = open_forecast(args.forecast, var=args.var)
    obs = open_archive(args.obs, var=args.var, time=args.time_source) if args.obs else None
    init_time = args.init_time
    if init_time is not None and init_time.lstrip("-").isdigit():
        init_time = int(init_time)
    with atomic_output(args.out, overwrite=args.overwrite, inputs=inputs) as tmp:
        if args.out.lower().endswith((".gif", ".mp4", ".mov", ".mkv", ".m4v")):
            animate(fc, tmp, obs, init_time=init_time, leads=args.leads)
        else:
            leads = args.leads or (1, 6, 12, 24)
            plot_forecast(fc, leads, init_time=init_time, obs=obs, path=tmp)
    print(f"wrote {args.out}")
    return 0


def _leads(text: str) -> list:
    """Comma-separated lead steps (``1,6,12``) or lead times (``30min,1h``)."""
    return [int(v) if v.strip().isdigit() else v.strip() for v in text.split(",") if v.strip()]


class _reading:
    """Name the input and frame behind an error raised while reading ``inputs`` (path: cube).

    Library errors from damaged files (a codec's ``RuntimeError``, ...) become
    one-line ``ValueError``s naming the path and the time of the first unreadable
    frame; other errors pass through unchanged.
    """

    def __init__(self, inputs: dict[str, Any]) -> None:
        self.inputs = inputs

    def __enter__(self) -> _reading:
        return self

    def __exit__(self, kind: Any, err: Any, tb: Any) -> None:
        from xnowcast.forecast import UnreadableInputError, first_unreadable_frame

        if err is None or not isinstance(err, Exception):
            return
        if isinstance(err, UnreadableInputError):
            named = not str(err).startswith(("input frame", "the input"))  # names its file
            raise ValueError(str(err) if named else f"{', '.join(self.inputs)}: {err}") from None
        if isinstance(err, (ValueError, TypeError, KeyError, ImportError)):
            return
        for path, cube in self.inputs.items():
            dim = cube.dims[0]
            found = first_unreadable_frame(cube, dim)
            if found is not None:
                raise ValueError(
                    f"{path}: input frame {found[0]} could not be read ({found[1]}); the file "
                    "or zarr chunk holding it is damaged: replace it, or leave its times out"
                ) from None


def _add_zarr_format(p: argparse.ArgumentParser) -> None:
    from xnowcast.io.output import ZARR_FORMAT

    p.add_argument(
        "--zarr-format",
        type=int,
        choices=(2, 3),
        default=ZARR_FORMAT,
        help=f"zarr format of a .zarr OUT (default {ZARR_FORMAT}: every zarr reader opens it; "
        "3 needs zarr-python 3 to read)",
    )


class _progress:
    """A progress bar on a terminal while a lazy result is computed (never in logs)."""

    def __init__(self, obj: Any) -> None:
        from xnowcast.progress import TerminalProgress

        active = getattr(obj, "chunks", None) is not None
        self.bar = TerminalProgress(enabled=None if active else False, desc="computing")

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)


def _open_coarse(args: argparse.Namespace):
    """The input of ``downscale``: a forecast file (lead_time dim) or a cube/archive."""
    from xnowcast.io import open_archive, open_forecast

    path = Path(args.input)
    if not args.more_inputs and path.suffix in (".zarr", ".nc") and path.exists():
        import xarray as xr

        with xr.open_dataset(path, engine="zarr" if path.suffix == ".zarr" else None) as ds:
            is_forecast = "lead_time" in ds.dims
        if is_forecast:
            return open_forecast(path, var=args.var)
    return open_archive(_inputs(args), var=args.var, time=args.time_source)


def _cmd_downscale(args: argparse.Namespace) -> int:
    from xnowcast.downscale import downscale
    from xnowcast.io import save_forecast
    from xnowcast.io.output import check_output

    check_output(args.out, overwrite=args.overwrite, inputs=_inputs(args))
    coarse = _open_coarse(args)
    with _reading({args.input: coarse}):
        fine = downscale(
            coarse,
            args.model,
            args.scale,
            batch_size=args.batch_size,
            device=args.device,
            self_ensemble=args.self_ensemble,
        )
    save_forecast(
        fine, args.out, overwrite=args.overwrite, inputs=_inputs(args), zarr_format=args.zarr_format
    )
    shape = " x ".join(f"{d}={n}" for d, n in fine.sizes.items())
    print(f"wrote {args.out}: downscaled by {fine.attrs['downscaling_model']}, {shape}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xnowcast`` command."""
    from xnowcast._version import __version__

    parser = argparse.ArgumentParser(
        prog="xnowcast",
        description="Nowcasting of radar and satellite cubes (xarray, dask).",
    )
    parser.add_argument("--version", action="version", version=f"xnowcast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "forecast",
        help="forecast a cube or archive and write .zarr or .nc",
        description="Forecast INPUT with a model and write the forecast to OUT (.zarr or .nc).",
    )
    _add_input_args(p, several=True)
    p.add_argument(
        "--model",
        default="persistence",
        help="model name (see `xnowcast models`) or checkpoint path (default: persistence)",
    )
    p.add_argument("--out", required=True, help="output path ending in .zarr or .nc")
    p.add_argument(
        "--init-times",
        type=_init_times,
        default="latest",
        help="'latest' (default), 'all', START..STOP, or comma-separated times",
    )
    _add_window_args(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    _add_zarr_format(p)
    p.set_defaults(func=_cmd_forecast)

    p = sub.add_parser(
        "sequences",
        help="split an archive into rainy sequences (CSV table)",
        description="Split INPUT into sequences at time gaps, give every frame "
        "a rain category, keep the long and rainy sequences and "
        "write one row per kept frame (time, rain_amount, category, "
        "sequence_id[, set]) to a CSV file.",
    )
    _add_input_args(p, several=True)
    p.add_argument("--out", required=True, help="output CSV file")
    p.add_argument(
        "--max-gap",
        default="10min",
        help="largest spacing inside a sequence (default 10min; equal = contiguous)",
    )
    p.add_argument(
        "--rain-threshold",
        type=float,
        default=0.1,
        help="rain/no-rain threshold in the data's units (default 0.1)",
    )
    p.add_argument(
        "--amount",
        choices=("fraction", "mean", "no_rain_count"),
        default="fraction",
        help="rain amount per frame (default: fraction of valid pixels raining)",
    )
    p.add_argument(
        "--quantiles",
        type=_floats,
        help="category quantiles, e.g. 0.25,0.5,0.75,0.95 (the default)",
    )
    p.add_argument("--bins", type=_floats, help="fixed category edges instead of quantiles")
    p.add_argument("--min-length", type=int, default=10, help="fewest frames kept (default 10)")
    p.add_argument(
        "--min-mean-category",
        type=float,
        default=0.5,
        help="lowest mean category kept (default 0.5)",
    )
    p.add_argument(
        "--split",
        type=_floats,
        metavar="FRACTIONS",
        help="also deal the sequences into balanced sets, e.g. 0.7,0.15,0.15 (adds a 'set' column)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of --split (default 0)")
    g = p.add_argument_group(
        "image inputs",
        "INPUT may be a quoted glob of radar images ('sri/*.png', JPEG, GIF, ...; "
        "xnowcast.open_image_sequence): --time is then the strptime format of "
        "the time in the file names (default %Y%m%d%H%M)",
    )
    g.add_argument(
        "--crop",
        type=_ints,
        metavar="Y0,Y1,X0,X1",
        help="pixel rows y0:y1 and columns x0:x1 to keep (drop legend and borders)",
    )
    g.add_argument("--size", type=_ints, metavar="NY,NX", help="resize the frames to NY x NX")
    g.add_argument(
        "--colormap",
        metavar="LEGEND.csv",
        help="colour legend file, one '#rrggbb,value' or 'r,g,b,value' per line: "
        "rain rates instead of grey levels (0-255)",
    )
    g.add_argument("--units", help="units of the legend values, e.g. mm/h")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.set_defaults(func=_cmd_sequences)

    p = sub.add_parser(
        "batch",
        help="forecast every init time of an archive into a resumable zarr store (dask)",
        description="Forecast every init time of INPUT into the zarr store OUT, "
        "one dask task per chunk of init times; rerunning resumes "
        "an interrupted job (docs/batch.md). Exit status 1 when "
        "some forecasts failed (listed), 2 on bad input.",
    )
    _add_input_args(p, several=True)
    p.add_argument(
        "--model",
        default="optical-flow",
        help="model name or checkpoint path (default: optical-flow)",
    )
    p.add_argument(
        "--out", default="forecasts.zarr", help="output zarr store (default: forecasts.zarr)"
    )
    p.add_argument(
        "--init-times",
        type=_init_times,
        default="all",
        help="'all' (default), START..STOP, or comma-separated times",
    )
    _add_window_args(p)
    p.add_argument(
        "--chunk-init-times",
        type=int,
        default=8,
        help="init times per task and per zarr chunk (default 8)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="dask scheduler address of an existing cluster, e.g. tcp://host:8786",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="start a local cluster of N single-threaded worker processes, "
        "libraries at one thread each (default: threads in this process)",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        help="retries of transient I/O errors per task (default 2)",
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="also recompute init times recorded as failed by an earlier run",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start over: replace OUT even when it holds another job's "
        "forecasts (by default OUT of the same job is resumed)",
    )
    _add_zarr_format(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_batch)

    p = sub.add_parser(
        "verify",
        help="score a forecast against observations (CSV table)",
        description="Score the forecast file FORECAST (.zarr or .nc, as written "
        "by `xnowcast forecast`) against the observed archive OBS "
        "per lead time (docs/verification.md) and write one row per "
        "score to a CSV file.",
    )
    p.add_argument("forecast", help="forecast file (.zarr or .nc)")
    p.add_argument("obs", help="observations: a netCDF file, zarr store or quoted glob")
    p.add_argument("--out", required=True, help="output CSV file")
    p.add_argument(
        "--metrics",
        type=lambda t: [m for m in t.split(",") if m],
        help="comma-separated metrics or groups (default: mae,csi,fss), e.g. "
        "mse,csi,fss,ms-ssim; ensembles: crps,brier,reliability,roc,rank_histogram,spread_skill",
    )
    p.add_argument(
        "--thresholds",
        type=_floats,
        default=[0.1, 1.0, 5.0],
        help="event thresholds (default 0.1,1,5)",
    )
    p.add_argument(
        "--scales",
        type=_ints,
        default=[1, 4, 16],
        help="FSS window sizes in grid cells (default 1,4,16)",
    )
    p.add_argument("--mean", action="store_true", help="aggregate over init times")
    p.add_argument(
        "--dim",
        type=lambda t: [d for d in t.split(",") if d],
        help="comma-separated dims to aggregate over, e.g. init_time,lead_time",
    )
    p.add_argument(
        "--compare",
        choices=(">", ">="),
        help="event rule (default: pysteps', > for categorical scores, >= for FSS and "
        "probabilistic scores)",
    )
    p.add_argument(
        "--reference", choices=("persistence",), help="also score persistence and add skill scores"
    )
    p.add_argument(
        "--data-range",
        type=float,
        help="SSIM/MS-SSIM/PSNR data range (e.g. 1023 for 10-bit counts)",
    )
    p.add_argument("--win-size", type=int, help="SSIM/MS-SSIM window size")
    p.add_argument(
        "--prob-bins", type=int, default=10, help="reliability diagram bins (default 10)"
    )
    p.add_argument(
        "--roc-thresholds",
        type=int,
        default=10,
        help="probability thresholds of the ROC curve (default 10)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--var", help="variable to read when the files hold several")
    p.add_argument(
        "--time",
        dest="time_source",
        help="time variable or file-name pattern of per-scan OBS files",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser(
        "plot",
        help="draw forecast maps (PNG) or an animation (GIF/MP4)",
        description="Draw map panels of FORECAST at chosen lead times, or, for "
        "an OUT ending in .gif/.mp4, animate it (docs/plotting.md).",
    )
    p.add_argument("forecast", help="forecast file (.zarr or .nc)")
    p.add_argument(
        "--out", required=True, help="output image (.png, .pdf, .svg) or animation (.gif, .mp4)"
    )
    p.add_argument(
        "--leads",
        type=_leads,
        help="lead steps or times, e.g. 1,6,12,24 or "
        "30min,1h (default 1,6,12,24; all for "
        "animations)",
    )
    p.add_argument("--obs", help="observations to show beside the forecast")
    p.add_argument(
        "--init-time", help="init time (or position, -1 = latest) of a forecast with several"
    )
    p.add_argument(
        "--natural-earth",
        metavar="DIR",
        help="folder with Natural Earth shapefiles for coastlines and borders",
    )
    p.add_argument("--var", help="variable to read when the files hold several")
    p.add_argument(
        "--time",
        dest="time_source",
        help="time variable or file-name pattern of per-scan OBS files",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser(
        "downscale",
        help="bring a coarse cube or forecast onto a finer grid",
        description="Downscale INPUT (a cube, archive or forecast file) with a trained "
        "network (checkpoint of `Trainer(task='downscale')`) or an interpolation baseline "
        "and write the fine fields to OUT (.zarr or .nc); docs/downscaling.md.",
    )
    _add_input_args(p, several=True)
    p.add_argument(
        "--model",
        default="bicubic",
        help="checkpoint path, or nearest, bilinear, bicubic (default: bicubic, needs --scale)",
    )
    p.add_argument("--scale", type=int, default=None, help="fine cells per coarse cell")
    p.add_argument("--out", required=True, help="output path ending in .zarr or .nc")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--batch-size", type=int, default=8, help="frames per network call")
    p.add_argument(
        "--self-ensemble",
        action="store_true",
        help="average the network over the 8 flips and quarter turns of the grid (8x the cost; "
        "networks only)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    _add_zarr_format(p)
    p.set_defaults(func=_cmd_downscale)

    p = sub.add_parser("models", help="list the available models")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser(
        "demo",
        help="forecast a generated radar cube and write the result",
        description="Generate a synthetic radar cube (no data needed), "
        "forecast it and write the forecast file and a PNG map of it beside the observation.",
    )
    p.add_argument(
        "--out", default="xnowcast-demo.nc", help="output .nc or .zarr (default: xnowcast-demo.nc)"
    )
    p.add_argument(
        "--model", default="optical-flow", help="model name or checkpoint (default: optical-flow)"
    )
    p.add_argument("--size", type=int, default=256, help="grid size in pixels (default 256)")
    p.add_argument("--frames", type=int, default=36, help="frames to generate (default 36)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--map",
        default=None,
        help="PNG map of the forecast beside the observation (default: OUT with suffix .png)",
    )
    p.add_argument("--no-map", action="store_true", help="draw no map")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT and map")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "train",
        help="train a neural network from a YAML config",
        description="Train a network as CONFIG.yaml says and write its "
        "checkpoint (docs/neural.md). `--example` prints a config "
        "with every option. Launch with `torchrun` for several GPUs.",
    )
    p.add_argument("config", nargs="?", help="YAML config file")
    p.add_argument(
        "--example",
        action="store_true",
        help="print a config with every option and its default, and exit",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output, checkpoint or log_dir/metrics.csv",
    )
    p.set_defaults(func=_cmd_train)
    return parser


def _cmd_train(args: argparse.Namespace) -> int:
    import os

    from xnowcast.training.config import example_config, run_config

    if args.example:
        print(example_config(), end="")
        return 0
    if not args.config:
        raise ValueError("give a CONFIG.yaml (or --example to print one)")
    trainer = run_config(args.config, overwrite=args.overwrite or None)
    if int(os.environ.get("RANK", "0")) == 0:
        hist = trainer.history
        summary = ""
        if len(hist):
            loss = hist.train_loss.iloc[-1]
            summary = f" {int(hist.epoch.iloc[-1])} epoch(s), train loss {loss:.4g}"
        print(f"trained{summary}; wrote {trainer.saved_path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (ValueError, TypeError, KeyError, OSError, ImportError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        message = " ".join(str(message).split())  # one line, whatever the library wrote
        print(f"xnowcast {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("xnowcast: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
