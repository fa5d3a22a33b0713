"""The usual Python deployment of the same model, for bench/serve/run.sh: a Flask app wrapping
the PyTorch twin of latent's deep autoencoder (twin.py: weights read from the run's
model.safetensors), answering the same v2 infer request with the same JSON reply. Run under
gunicorn:

    LATENT_RUN=runs/deep gunicorn -w 2 -b 127.0.0.1:8001 --chdir bench/serve flask_twin:app
"""
from flask import Flask, jsonify, request

from twin import load_model, reconstruct

model = load_model()
app = Flask(__name__)


@app.post("/v2/models/deep/infer")
def infer():
    body = request.get_json()
    tensor = body["inputs"][0]
    y = reconstruct(model, tensor["data"], tensor["shape"])
    return jsonify({"model_name": "deep", "model_version": "1",
                    "outputs": [{"name": "reconstruction", "datatype": "FP32", "shape": list(y.shape), "data": y.flatten().tolist()}]})
