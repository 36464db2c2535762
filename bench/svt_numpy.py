"""LAPACK side of `fedslr bench svt`: times numpy's SVD-based SVT on the benchmark's matrices.

Usage: python3 svt_numpy.py MANIFEST.json OUT.json
The manifest lists cases {id, rows, cols, tau, reps, a: path, ours: path or null}; each path holds
row-major float32 values. For every case this prints the median time of
  U, s, Vt = np.linalg.svd(A, full_matrices=False); (U * max(s - tau, 0)) @ Vt
and, when `ours` is given, the float64 singular values of that matrix (to score its spectrum).
"""

import json
import sys
import time

import numpy as np


def main() -> None:
    manifest = json.load(open(sys.argv[1]))
    out = []
    for case in manifest["cases"]:
        r, c, tau = case["rows"], case["cols"], case["tau"]
        a = np.fromfile(case["a"], dtype=np.float32).reshape(r, c)
        svd_ms, svt_ms = [], []
        for _ in range(case["reps"]):
            t0 = time.perf_counter()
            u, s, vt = np.linalg.svd(a, full_matrices=False)
            t1 = time.perf_counter()
            (u * np.maximum(s - tau, 0)) @ vt
            t2 = time.perf_counter()
            svd_ms.append((t1 - t0) * 1e3)
            svt_ms.append((t2 - t0) * 1e3)
        row = {
            "id": case["id"],
            "svd_ms": float(np.median(svd_ms)),
            "svt_ms": float(np.median(svt_ms)),
        }
        if case.get("ours"):
            x = np.fromfile(case["ours"], dtype=np.float32).reshape(r, c).astype(np.float64)
            row["ours_sv"] = np.linalg.svd(x, compute_uv=False).tolist()
        out.append(row)
    json.dump({"numpy": np.__version__, "cases": out}, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
