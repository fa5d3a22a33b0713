"""KServe's own Python ModelServer (the `kserve` package from the Python package index, in
.venv-kserve: tools/setup_serve_venv.sh --kserve) serving the PyTorch twin of latent's deep
autoencoder (twin.py) as model `deep`, for bench/serve/run.sh: a custom kserve.Model whose
predict takes KServe's parsed v2 request and returns the `reconstruction` output, so the server
answers the same v2 JSON request as latent serve. Run:

    LATENT_RUN=runs/deep .venv-kserve/bin/python bench/serve/kserve_twin.py --http_port 8918 --workers 2 \
        --enable_grpc false --enable_latency_logging false
"""
import kserve
import uvicorn
from kserve import InferOutput, InferRequest, InferResponse
from kserve.protocol.rest.multiprocess.server import RESTServerProcess

from twin import load_model, reconstruct


class DeepTwin(kserve.Model):
    def __init__(self, name):
        super().__init__(name)
        self.model = None
        self.load()

    def load(self):
        self.model = load_model()
        self.ready = True
        return True

    def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        x = payload.inputs[0].as_numpy()
        y = reconstruct(self.model, x, x.shape).numpy()
        out = InferOutput(name="reconstruction", shape=list(y.shape), datatype="FP32")
        out.set_data_from_numpy(y, binary_data=False)
        return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=[out])


def loopback_config(init):
    """uvicorn.Config as kserve builds it, but listening on 127.0.0.1 only (kserve binds 0.0.0.0)
    and without uvicorn's access log line per request (latent serve writes none by default)."""

    def patched(self, *args, **kwargs):
        kwargs["host"] = "127.0.0.1"
        kwargs["access_log"] = False
        init(self, *args, **kwargs)

    return patched


def patient_ping(ping):
    """kserve's supervisor gives a worker process 5 s to answer its health ping, and kills and
    restarts it otherwise; on a loaded machine importing torch and kserve takes longer, and the
    workers restart in a loop. Give them 120 s."""
    return lambda self, timeout=5: ping(self, max(timeout, 120))


uvicorn.Config.__init__ = loopback_config(uvicorn.Config.__init__)
RESTServerProcess.ping = patient_ping(RESTServerProcess.ping)

if __name__ == "__main__":
    kserve.ModelServer().start([DeepTwin("deep")])
