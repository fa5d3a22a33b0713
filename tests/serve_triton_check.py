#!/usr/bin/env python3
"""`latent serve` through a client nobody here wrote: tritonclient.http (NVIDIA Triton's client)
checks liveness, readiness and metadata, and runs infer with JSON tensors and with the binary
tensor extension (its default); every output is compared with `latent score` of the same rows
(to 1e-6). Reuses the server helpers of serve_test.py.

usage: serve_triton_check.py PATH_TO_LATENT
"""
import os
import random
import shutil
import sys
import tempfile

import numpy as np
import tritonclient.http as httpclient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_test as st  # noqa: E402  (reads sys.argv[1] as the latent binary)


def main():
    work = tempfile.mkdtemp()
    try:
        rng = random.Random(7)
        rows = [[rng.random() * 5, 10 * rng.random(), rng.random() - 2, 100 * rng.random()] for _ in range(120)]
        with open(f"{work}/t.csv", "w") as f:
            f.write("a,b,c,d\n" + "".join(",".join(f"{v:.5f}" for v in r) + "\n" for r in rows))
        x = np.array([[float(f"{v:.5f}") for v in r] for r in rows[:16]], dtype=np.float32)
        st.run("train", "--model", "deep", "--data", f"{work}/t.csv", "--epochs", "1", "--quiet", "--out", f"{work}/m", "--threads", "1")
        st.run("score", f"{work}/m", "--data", f"{work}/t.csv", "--codes", "--out", f"{work}/ref.csv")
        ref = st.scores_of(open(f"{work}/ref.csv").read())[:16]
        server = st.Server(f"{work}/m")
        try:
            c = httpclient.InferenceServerClient(url=f"{server.host}:{server.port}")
            st.check("triton-live-ready", c.is_server_live() and c.is_server_ready() and c.is_model_ready("m"))
            meta = c.get_model_metadata("m")
            st.check("triton-metadata", meta["inputs"][0]["shape"] == [-1, 4] and meta["outputs"][2]["name"] == "score", meta)
            code_dim = meta["outputs"][1]["shape"][1]
            want_score = np.array([float(r["error"]) for r in ref])
            want_code = np.array([[float(r[f"z{j}"]) for j in range(code_dim)] for r in ref])
            want_flag = np.array([r["is_anomaly"] == "1" for r in ref])
            for binary in (False, True):
                inp = httpclient.InferInput("input", list(x.shape), "FP32")
                inp.set_data_from_numpy(x, binary_data=binary)
                outs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in ("score", "code", "is_anomaly")]
                r = c.infer("m", [inp], outputs=outs, request_id="t1")
                name = "binary" if binary else "json"
                st.check(f"triton-infer-{name}", r.get_response()["id"] == "t1"
                         and np.allclose(r.as_numpy("score"), want_score, rtol=1e-6, atol=1e-6)
                         and np.allclose(r.as_numpy("code"), want_code, rtol=1e-6, atol=1e-6)
                         and np.array_equal(r.as_numpy("is_anomaly"), want_flag), r.get_response())
            r = c.infer("m", [inp])  # tritonclient's default: every output, binary
            st.check("triton-infer-default-outputs", r.as_numpy("reconstruction").shape == (16, 4)
                     and np.allclose(r.as_numpy("score"), want_score, rtol=1e-6, atol=1e-6))
            try:
                bad = httpclient.InferInput("input", [1, 3], "FP32")
                bad.set_data_from_numpy(np.zeros((1, 3), np.float32), binary_data=False)
                c.infer("m", [bad])
                st.check("triton-error-reported", False, "no exception")
            except Exception as e:  # noqa: BLE001 - tritonclient raises InferenceServerException
                st.check("triton-error-reported", "does not match the model's [-1, 4]" in str(e), e)
        finally:
            rc = server.stop()
        st.check("triton-sigterm-exit-0", rc == 0, rc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(st.failures)} failure(s)" if st.failures else "all tritonclient checks passed")
    return 1 if st.failures else 0


if __name__ == "__main__":
    sys.exit(main())
