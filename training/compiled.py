"""The model's trees compiled to C for bulk and request scoring: same numbers, 3.5x the speed.

LightGBM walks its trees through generic node arrays (~86 ns per row and tree here); treelite
turns the booster into C source (one branchy function per tree, thresholds as constants) and
the system C compiler builds it, with a small row loop of ours, into a shared library called
through ctypes (which releases the GIL: two threads, two cores): ~24 ns per row and tree,
bit-identical outputs. Daily scoring (every user every day) and the HTTP service's scores use
them (`serving.scorer`; `INFLUENCE_COMPILED_TREES=false` keeps LightGBM there); explanations
(TreeSHAP) stay on LightGBM.

    trees = compile_trees(bundle.booster)   # None when it can't be used: keep LightGBM
    trees.predict(x)                        # == bundle.booster.predict(x), exactly

- Quantizing and missing values: the generated code compares each value's threshold bin (an
  int, in a union with the double; -1 = missing), binned by a loop that asks the int "missing?"
  of the raw double, so any value whose low 32 bits are all ones (0.7499999999999999 is one:
  found by the tests) was read as missing (tl2cgen's own runtime has the same flaw). Our row
  loop takes that loop over: NaN -> missing, anything else -> its bin, found by counting the
  thresholds below it (same bins as treelite's binary search; ~15% faster).
- LightGBM reads any |value| <= 1e-35 (its kZeroThreshold) as 0.0 before walking the trees;
  the row loop does the same.
- The library is cached by the hash of the model text (and the generator's version) in
  `$INFLUENCE_COMPILED_DIR`, else `~/.cache/influence/compiled`: compiling 500 trees takes a
  few seconds once per model. Built in a temp folder and renamed into place, so two processes
  never load half a library.
- Trusted only after proof: a probe matrix (values at and either side of every threshold the
  trees use, NaN, zero, tiny, negatives, huge) is predicted by both, and the compiled trees are
  used only if every prediction matches within `TOLERANCE`. Anything that fails (no C
  compiler, a build error, a mismatch) is logged and returns None: the caller keeps LightGBM.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import logging
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np

from influence import publish

log = logging.getLogger(__name__)

COMPILED_DIR_ENV = "INFLUENCE_COMPILED_DIR"
COMPILE_UNITS = 32
"""Source files the trees are split into: gcc is superlinear in function size, so 32 small
files compile in a third of the time of 2 big ones, and on every core."""
CFLAGS = ("-O2", "-fPIC", "-std=gnu99")
TOLERANCE = 1e-9
PROBE_ROWS = 512
LIGHTGBM_ZERO = float(np.float32(1e-35))
"""LightGBM's kZeroThreshold: it reads any |value| up to this as 0.0."""

_ROW_LOOP = """
#include "quantize.c"  /* with header.h; its threshold tables are static: this file owns them */

/* The bin of a value as treelite's quantize() gives it (2i at threshold i, 2i + 1 between
   thresholds i and i + 1, -10 below the first, 2 len above the last), by counting thresholds
   below it: no unpredictable branches for the ~15 thresholds of a typical feature. */
static inline int bin_of(double val, unsigned fid) {
  const int len = th_len[fid];
  if (len > 64) return quantize(val, fid);
  const double* array = &threshold[th_begin[fid]];
  if (len == 0 || val < array[0]) return -10;  /* len 0: a feature no split uses */
  int below = 0, equal = 0;
  for (int k = 0; k < len; ++k) {
    below += array[k] < val;
    equal |= array[k] == val;
  }
  if (equal) return below * 2;
  return below == len ? len * 2 : below * 2 - 1;
}

/* Row i of the model's input is x[i * stride + columns[j]], j < p (doubles, NaN = missing):
   out[i] as LightGBM's predict. |v| <= kZeroThreshold is read as 0.0, as LightGBM does. */
void influence_predict_rows(const double* x, long n, long stride, const long* columns, long p,
                            double* out) {
  union Entry* row = (union Entry*)malloc(sizeof(union Entry) * (size_t)(p > 0 ? p : 1));
  const double zero = (double)1e-35f;
  for (long i = 0; i < n; ++i) {
    const double* xi = x + i * stride;
    for (long j = 0; j < p; ++j) {
      double v = xi[columns[j]];
      if (isnan(v)) {
        row[j].missing = -1;
      } else {
        row[j].qvalue = bin_of((fabs(v) <= zero) ? 0.0 : v, (unsigned)j);
      }
    }
    out[i] = 0.0;
    predict(row, 0, out + i);
  }
  free(row);
}
"""
_QUANTIZE_LOOP_TEST = "if (data[i].missing != -1 && !is_categorical[i]) {"
_QUANTIZE_LOOP_OFF = "if (0) {  /* quantized by influence_predict_rows */"


def compiled_dir() -> Path:
    return Path(os.environ.get(COMPILED_DIR_ENV) or Path.home() / ".cache" / "influence" / "compiled")


@dataclass(frozen=True)
class CompiledTrees:
    library: Path
    num_features: int
    compile_seconds: float = 0.0
    """0 when the library came from the cache."""
    _lib: ctypes.CDLL = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lib = ctypes.CDLL(str(self.library))
        lib.influence_predict_rows.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_long,
                                               ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p]
        lib.influence_predict_rows.restype = None
        object.__setattr__(self, "_lib", lib)

    def predict(self, x: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """The booster's prediction of each row of the model's input: x itself, or the
        `columns` of x (the model's features in order) read in place, without a copy.
        Thread-safe (ctypes releases the GIL: threads predict on all cores). Rows may be a
        view with a longer stride (featurize's matrix is one): read where they are."""
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"expected a matrix, got shape {x.shape}")
        itemsize = np.dtype(np.float64).itemsize
        if not (x.dtype == np.float64 and x.strides[1] == itemsize
                and x.strides[0] % itemsize == 0 and x.strides[0] >= x.shape[1] * itemsize):
            x = np.ascontiguousarray(x, dtype=np.float64)
        if columns is None:
            columns = np.arange(x.shape[1])
        columns = np.ascontiguousarray(columns, dtype=np.int64)
        if len(columns) != self.num_features or (
            len(columns) and not 0 <= columns.min() <= columns.max() < x.shape[1]
        ):
            raise ValueError(
                f"expected {self.num_features} model columns within {x.shape[1]}, got {len(columns)}"
            )
        out = np.empty(len(x))
        row_stride = x.strides[0] // itemsize if len(x) > 1 else x.shape[1]
        self._lib.influence_predict_rows(
            x.ctypes.data, len(x), row_stride, columns.ctypes.data, len(columns), out.ctypes.data
        )
        return out


def model_key(booster: lgb.Booster) -> str:
    import tl2cgen
    import treelite

    text = booster.model_to_string(num_iteration=-1)
    salt = (f"treelite {treelite.__version__} tl2cgen {tl2cgen.__version__} {CFLAGS} "
            f"{os.uname().machine}\n{_ROW_LOOP}")
    return hashlib.sha256((salt + "\n" + text).encode()).hexdigest()[:24]


def compile_trees(booster: lgb.Booster, directory: Path | None = None) -> CompiledTrees | None:
    """The booster's trees as a checked shared library, or None (logged) when it can't be used."""
    try:
        trees = _compiled(booster, Path(directory) if directory else compiled_dir())
        mismatch = _mismatch(booster, trees)
    except Exception as error:  # noqa: BLE001 - any failure: LightGBM stays the predictor
        log.warning("compiled trees unavailable, predicting with LightGBM: %s", error)
        return None
    if mismatch > TOLERANCE:
        log.warning("compiled trees differ from LightGBM by %.3g; predicting with LightGBM", mismatch)
        return None
    return trees


def _compiled(booster: lgb.Booster, directory: Path) -> CompiledTrees:
    library = directory / f"trees-{model_key(booster)}.so"
    if library.exists():
        return CompiledTrees(library, booster.num_feature())
    compiler = shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (gcc) on PATH")
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    publish.clean_stale_under(directory)  # build folders of killed processes
    folder = publish.temp_path(library)  # named by this process, so a later run can tell
    folder.mkdir()
    try:
        built = _build(booster, folder, compiler, library.name)
        os.replace(built, library)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return CompiledTrees(library, booster.num_feature(), round(time.perf_counter() - started, 2))


def _build(booster: lgb.Booster, folder: Path, compiler: str, name: str) -> Path:
    """treelite's C source of the trees (thresholds as bins) with its binning loop switched
    off, plus our row loop (which bins), compiled (one gcc per file, on every core) and linked
    into folder/name."""
    import tl2cgen
    import treelite

    source = folder / "src"
    chatter = io.StringIO()  # tl2cgen prints its native log lines: stdout is the CLI's output
    with contextlib.redirect_stdout(chatter):
        tl2cgen.generate_c_code(
            treelite.frontend.from_lightgbm(booster), dirpath=str(source),
            params={"parallel_comp": COMPILE_UNITS, "quantize": 1},
        )
    if chatter.getvalue().strip():
        log.debug("tl2cgen: %s", chatter.getvalue().strip())
    main = source / "main.c"
    code = main.read_text()
    if code.count(_QUANTIZE_LOOP_TEST) != 1 or not (source / "quantize.c").exists():
        raise RuntimeError("unexpected generated code: no quantizing loop to take over")
    if re.search(r"is_categorical\[\] = \{[\s0,]*[1-9]", code):
        raise RuntimeError("categorical splits: not supported by the row loop")
    main.write_text(code.replace(_QUANTIZE_LOOP_TEST, _QUANTIZE_LOOP_OFF))
    (source / "influence_rows.c").write_text(_ROW_LOOP)  # includes quantize.c
    files = [f for f in sorted(source.glob("*.c")) if f.name != "quantize.c"]

    def compile_one(file: Path) -> Path:
        obj = file.with_suffix(".o")
        _run([compiler, *CFLAGS, "-c", str(file), "-o", str(obj)])
        return obj

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        objects = list(pool.map(compile_one, files))
    library = folder / name
    _run([compiler, "-shared", *CFLAGS, *map(str, objects), "-o", str(library), "-lm"])
    return library


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed: {done.stderr.strip()[-500:]}")


def probe_matrix(booster: lgb.Booster, rows: int = PROBE_ROWS, seed: int = 0) -> np.ndarray:
    """Rows that send the trees down many paths: each feature drawn from its split thresholds
    (exactly, one step either side, and with the low 32 bits all ones), NaN, 0, tiny values
    around LightGBM's zero band, negatives and huge values."""
    rng = np.random.default_rng(seed)
    thresholds = _thresholds(booster)
    odd = np.array([np.nan, 0.0, -0.0, LIGHTGBM_ZERO, -LIGHTGBM_ZERO, 1e-40, -1.0, 1e12])
    x = np.empty((rows, booster.num_feature()))
    for j in range(x.shape[1]):
        at = thresholds.get(j, np.zeros(1))
        ones = (at.view(np.uint64) | np.uint64(0xFFFFFFFF)).view(np.float64)
        pool = np.concatenate([at, np.nextafter(at, -np.inf), np.nextafter(at, np.inf), ones, odd])
        x[:, j] = pool[rng.integers(0, len(pool), rows)]
    return x


def _thresholds(booster: lgb.Booster) -> dict[int, np.ndarray]:
    """Each split feature's thresholds, sorted, read from the model text (each tree's
    `split_feature=` and `threshold=` lines, position by position)."""
    out: dict[int, list[float]] = {}
    features: list[int] = []
    for line in booster.model_to_string(num_iteration=-1).splitlines():
        if line.startswith("split_feature="):
            features = [int(v) for v in line.split("=", 1)[1].split()]
        elif line.startswith("threshold=") and features:
            for feature, threshold in zip(features, line.split("=", 1)[1].split(), strict=True):
                out.setdefault(feature, []).append(float(threshold))
            features = []
    return {j: np.unique(np.asarray(v)) for j, v in out.items()}


def _mismatch(booster: lgb.Booster, trees: CompiledTrees) -> float:
    x = probe_matrix(booster)
    return float(np.max(np.abs(trees.predict(x) - booster.predict(x, num_threads=1))))
