#!/usr/bin/env python3
"""The web page of `latent serve` (issue 17) in headless Chromium, driven by Selenium: runs trained
here for a few batches (Fashion-MNIST deep AE and VAE, a generated CSV) and an exported .onnx file,
served on --port 0. Every score the page shows is checked against the infer endpoint's answer for
the same input fetched here with urllib, pictures against the outputs they were drawn from, the
scatter against `latent embed`'s codes, and JavaScript console errors fail the test. Screenshots
of each view are saved in SHOT_DIR. Also: content types, caching headers, 404s under /ui.

usage: ui_test.py PATH_TO_LATENT SHOT_DIR     (exit 77: skipped, with the reason printed)
"""
import base64
import gzip
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib

LATENT, SHOTS = sys.argv[1], sys.argv[2]
FASHION = "/usr/share/datasets/fashion-mnist"
SKIP = 77
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)[:500]), flush=True)
    if not ok:
        failures.append(name)


def close(a, b, tol=1e-6):
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def run(*args):
    p = subprocess.run([LATENT, *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"latent {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p.stdout


def png_bytes(pixels, width, height):
    """An 8-bit grayscale PNG, written with zlib (no imaging library needed)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes(pixels[y * width:(y + 1) * width]) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class Server:
    def __init__(self, *args):
        self.proc = subprocess.Popen([LATENT, "serve", *args, "--port", "0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on http://"):
            raise RuntimeError(f"no listening line: {line!r} {self.proc.stderr.read()}")
        self.url = line[len("listening on "):]
        self.key = None

    def get(self, path, headers=None, method="GET"):
        """(status, headers, body bytes)."""
        h = dict(headers or {})
        if self.key:
            h["Authorization"] = "Bearer " + self.key
        req = urllib.request.Request(self.url + path, headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def infer(self, model, inputs, outputs=None):
        body = {"inputs": inputs}
        if outputs:
            body["outputs"] = [{"name": n} for n in outputs]
        h = {"Content-Type": "application/json"}
        if self.key:
            h["Authorization"] = "Bearer " + self.key
        req = urllib.request.Request(f"{self.url}/v2/models/{model}/infer", data=json.dumps(body).encode(), headers=h)
        with urllib.request.urlopen(req, timeout=60) as r:
            return {o["name"]: o["data"] for o in json.loads(r.read())["outputs"]}

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


def main():
    try:
        from selenium import webdriver  # noqa: F401
    except ImportError:
        print("SKIP: python3-selenium is not installed (apt-get install python3-selenium chromium chromium-driver)")
        return SKIP
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        print("SKIP: chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
        return SKIP
    if not os.path.isdir(FASHION):
        print("SKIP: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
        return SKIP
    os.makedirs(SHOTS, exist_ok=True)
    work = tempfile.mkdtemp()
    try:
        train(work)
        s = Server(f"{work}/img", f"{work}/vae", f"{work}/tab", f"img-onnx={work}/img.onnx")
        try:
            http_checks(s, work)
            with Browser(chromium, driver_path) as b:
                index_page(b, s)
                image_page(b, s, work)
                vae_page(b, s)
                table_page(b, s)
                onnx_page(b, s)
                zoom_200(b, s)
        finally:
            check("sigterm-exit-0", s.stop() == 0)
        api_key_page(work, chromium, driver_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"screenshots in {SHOTS}")
    print(f"{len(failures)} failure(s)" if failures else "all ui checks passed")
    return 1 if failures else 0


def train(work):
    run("train", "--model", "deep", "--epochs", "2", "--limit-batches", "3", "--quiet", "--out", f"{work}/img", "--threads", "1")
    run("train", "--model", "vae", "--epochs", "1", "--limit-batches", "3", "--quiet", "--out", f"{work}/vae", "--threads", "1")
    with open(f"{work}/table.csv", "w") as f:
        f.write("temp,load,flow,noise\n")
        for i in range(200):
            f.write(f"{20 + (i * 7) % 13},{(i * 37) % 101 / 10},{50 + (i * 11) % 17},{(i * 53) % 29 / 100}\n")
    run("train", "--model", "deep", "--data", f"{work}/table.csv", "--epochs", "2", "--batch-size", "32", "--quiet",
        "--out", f"{work}/tab", "--threads", "1")
    run("export", f"{work}/img", "--out", f"{work}/img.onnx")
    run("embed", f"{work}/img", "--out", f"{work}/codes.csv")


def test_images(n):
    with gzip.open(f"{FASHION}/t10k-images-idx3-ubyte.gz") as f:
        raw = f.read()
    return [list(raw[16 + i * 784:16 + (i + 1) * 784]) for i in range(n)]


# ---- HTTP: content types, caching headers, 404s ----
def http_checks(s, work):
    want = {"/": "text/html; charset=utf-8", "/ui/img": "text/html; charset=utf-8", "/ui/static/ui.js": "text/javascript; charset=utf-8",
            "/ui/static/ui.css": "text/css; charset=utf-8"}
    for path, ctype in want.items():
        st, h, body = s.get(path)
        check(f"asset {path}: 200, content type", st == 200 and h.get("Content-Type") == ctype, (st, h.get("Content-Type")))
        check(f"asset {path}: caching headers", h.get("Cache-Control") == "no-cache" and h.get("ETag", "").startswith('"')
              and h.get("X-Content-Type-Options") == "nosniff", h)
        st2, h2, body2 = s.get(path, {"If-None-Match": h.get("ETag", "")})
        check(f"asset {path}: 304 for its ETag", st2 == 304 and body2 == b"", (st2, body2[:80]))
        if ctype.startswith("text/html"):
            csp = h.get("Content-Security-Policy", "")
            check(f"asset {path}: CSP keeps the page to its own server", "default-src 'self'" in csp and "script-src 'self'" in csp, csp)
            text = body.decode()
            check(f"asset {path}: no external URLs", "http://" not in text and "https://" not in text and "//cdn" not in text)
    st, h, body = s.get("/ui/static/ui.js")
    src = body.decode()
    check("ui.js fetches only this server", "http://" not in src and "https://" not in src)
    st, h, _ = s.get("/ui/api/img/info")
    check("api: JSON, no-store", st == 200 and h.get("Content-Type") == "application/json" and h.get("Cache-Control") == "no-store", h)
    for path, what in [("/ui/nope", "'nope' is not a served model"), ("/ui/static/missing.js", "no such file"),
                       ("/ui/static/../ui/static/ui.js", "no such file"), ("/ui/img-decoder", "'img-decoder' is not a served model"),
                       ("/ui/img/extra", "is not a served model"), ("/ui/api/nope/info", "unknown model 'nope'"),
                       ("/ui/api/img/nothing", "no such helper endpoint"), ("/ui/api/img-onnx/curve", "is an .onnx file")]:
        st, h, body = s.get(path)
        check(f"404 {path}", st == 404 and what in json.loads(body).get("error", ""), (st, body[:200]))
    st, h, body = s.get("/ui/img", method="DELETE")
    check("405 DELETE /ui/img", st == 405 and "GET" in h.get("Allow", ""), (st, body))
    # Helper data against the run: the curve is metrics.jsonl, the examples the IDX file's images.
    st, _, body = s.get("/ui/api/img/examples")
    ex = json.loads(body)["examples"]
    check("api examples = the first test images", [e["row"] for e in ex] == test_images(16), [e["index"] for e in ex])
    with open(f"{work}/table.csv") as f:
        csv_rows = [[float(v) for v in l.split(",")] for l in f.readlines()[1:]]
    st, _, body = s.get("/ui/api/tab/examples")
    tab = [e["row"] for e in json.loads(body)["examples"]]
    check("api table examples are rows of the file, in its units", len(tab) == 16 and all(
        any(all(close(a, b, 1e-5) for a, b in zip(r, c)) for c in csv_rows) for r in tab), tab[:2])
    st, _, body = s.get("/ui/api/img/curve")
    with open(f"{work}/img/metrics.jsonl") as f:
        lines = [json.loads(l) for l in f if l.strip()]
    check("api curve = metrics.jsonl", json.loads(body)["epochs"] == lines and len(lines) == 2, body[:200])
    st, _, body = s.get("/ui/api/img/config")
    with open(f"{work}/img/config.json") as f:
        check("api config = config.json", json.loads(body) == json.load(f))


class Browser:
    def __init__(self, chromium, driver_path):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service as ChromeService
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000",
                  "--force-device-scale-factor=1"]:
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.d = webdriver.Chrome(service=ChromeService(executable_path=driver_path), options=opts)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.d.quit()

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def wait(self, script, what, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            v = self.js(script)
            if v:
                return v
            time.sleep(0.05)
        raise TimeoutError(f"waited {timeout}s for {what}")

    def idle(self):
        self.wait("return window.latentUi && latentUi.pending === 0 && !latentUi.dirty", "the page's requests to finish")

    def console_errors(self, view):
        errors = [e for e in self.d.get_log("browser") if e["level"] == "SEVERE"]
        check(f"{view}: no JavaScript console errors", not errors, errors)

    def shot(self, name):
        """A screenshot of the whole page (the window grown to its height for the moment)."""
        size = self.d.get_window_size()
        height = self.js("return document.documentElement.scrollHeight")
        self.d.set_window_size(size["width"], max(size["height"], height + 140))
        time.sleep(0.2)
        self.d.save_screenshot(os.path.join(SHOTS, name + ".png"))
        self.d.set_window_size(size["width"], size["height"])

    def canvas(self, element_id):
        """The canvas's pixels as gray values (the red channel)."""
        return self.js("const c = document.getElementById(arguments[0]);"
                       "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data).filter((v, i) => i % 4 === 0);",
                       element_id)


def index_page(b, s):
    b.d.get(s.url + "/")
    links = b.wait("const a = [...document.querySelectorAll('#models a')]; return a.length ? a.map(x => x.textContent) : null", "model links")
    check("index lists the models with pages", links == ["img", "vae", "tab", "img-onnx"], links)
    b.shot("index")
    b.console_errors("index")


def image_page(b, s, work):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    images = test_images(16)
    b.d.get(s.url + "/ui/img")
    b.wait("return document.querySelectorAll('#examples button').length === 16", "the example strip")
    b.wait("return document.getElementById('legend').children.length > 0", "the scatter")
    info = json.loads(s.get("/ui/api/img/info")[2])
    scatter = json.loads(s.get("/ui/api/img/scatter")[2])

    def shown():
        return float(b.js("return document.getElementById('score').dataset.value")), b.js("return document.getElementById('score').textContent"), \
            b.js("return document.getElementById('verdict-text').textContent")

    def check_shown(view, reference_score, reference_flag):
        value, text, verdict = shown()
        check(f"{view}: shown score = the infer endpoint's", value == reference_score, (value, reference_score))
        check(f"{view}: score text to 6 digits", close(float(text), reference_score, 1e-5), (text, reference_score))
        check(f"{view}: verdict against the threshold", verdict == ("anomaly" if reference_flag else "normal")
              and reference_flag == (reference_score > info["threshold"]), (verdict, reference_score, info["threshold"]))

    def project(code):
        x = sum((code[j] - scatter["mean"][j]) * scatter["axes"][0][j] for j in range(len(code)))
        y = sum((code[j] - scatter["mean"][j]) * scatter["axes"][1][j] for j in range(len(code)))
        return x, y

    # Pick an example: the IDX file's image 3, scored here through the same endpoint.
    b.wait("return latentUi.result !== null", "the first example's result, shown on load")
    b.idle()
    check("on load: the first example is shown", b.js("return latentUi.lastInput") == images[0])
    b.d.find_elements(By.CSS_SELECTOR, "#examples button")[3].click()
    b.idle()
    ref = s.infer("img", [{"name": "input", "shape": [1, 784], "datatype": "FP32", "data": images[3]}])
    check("example: the page sent the test image's pixels", b.js("return latentUi.lastInput") == images[3])
    check_shown("example", ref["score"][0], ref["is_anomaly"][0])
    recon = b.canvas("view-recon")
    check("example: reconstruction drawn from the infer output", all(abs(recon[i] - max(0, min(255, round(ref["reconstruction"][i] * 255)))) <= 1
                                                                       for i in range(784)))
    err = [(images[3][i] / 255 - ref["reconstruction"][i]) ** 2 for i in range(784)]
    heat = b.canvas("view-error")
    check("example: the largest error is the heat map's white pixel", heat[err.index(max(err))] == 255 and min(heat) == 0)
    px, py = project(ref["code"])
    point = b.js("return latentUi.point")
    check("example: the code's place on the scatter", close(point[0], px, 1e-9) and close(point[1], py, 1e-9), (point, px, py))
    # The scatter is `latent embed`'s projection of the test codes.
    with open(f"{work}/codes.csv") as f:
        rows = [l.strip().split(",") for l in f.readlines()[1:]]
    emb = [project([float(v) for v in r[:-1]]) for r in rows[:500]]
    check("scatter = latent embed's codes, projected", len(rows) == len(scatter["x"])
          and all(abs(emb[i][0] - scatter["x"][i]) < 1e-3 and abs(emb[i][1] - scatter["y"][i]) < 1e-3 for i in range(500))
          and [int(r[-1]) for r in rows] == scatter["label"], (emb[:2], scatter["x"][:2], scatter["y"][:2]))
    b.shot("image-example")

    # Keyboard: Enter on another example.
    b.d.find_elements(By.CSS_SELECTOR, "#examples button")[7].send_keys(Keys.ENTER)
    b.wait("return latentUi.lastInput && latentUi.lastInput[400] === arguments[0] && latentUi.lastInput[300] === arguments[1]"
           .replace("arguments[0]", str(images[7][400])).replace("arguments[1]", str(images[7][300])), "example 7")
    b.idle()
    ref7 = s.infer("img", [{"name": "input", "shape": [1, 784], "datatype": "FP32", "data": images[7]}])
    check_shown("keyboard example", ref7["score"][0], ref7["is_anomaly"][0])

    # Draw a stroke on a cleared canvas: 10 CSS pixels per image pixel, offsets from the centre.
    b.d.find_element(By.ID, "clear").click()
    b.idle()
    canvas = b.d.find_element(By.ID, "draw")
    ActionChains(b.d).move_to_element_with_offset(canvas, -85, 5).click_and_hold().move_by_offset(40, 0).move_by_offset(40, 0) \
        .move_by_offset(40, 0).move_by_offset(40, 0).release().perform()
    b.wait("return latentUi.lastInput && latentUi.lastInput.some(v => v > 0)", "the stroke's score")
    b.idle()
    drawn = b.js("return latentUi.lastInput")
    check("stroke: painted along its row, nothing far from it", all(drawn[14 * 28 + x] == 255 for x in range(7, 21))
          and all(drawn[y * 28 + x] == 0 for y in list(range(0, 11)) + list(range(18, 28)) for x in range(28)), drawn[13 * 28:16 * 28])
    ref = s.infer("img", [{"name": "input", "shape": [1, 784], "datatype": "FP32", "data": drawn}])
    check_shown("stroke", ref["score"][0], ref["is_anomaly"][0])
    check("stroke: the input view shows what was sent", b.canvas("view-input") == drawn)
    b.shot("image-drawn")
    b.console_errors("image page (examples, drawing)")

    # A PNG through the file input: the server decodes it (input `image`).
    png = png_bytes(images[5], 28, 28)
    path = os.path.join(work, "shirt.png")
    with open(path, "wb") as f:
        f.write(png)
    b.d.find_element(By.ID, "png-file").send_keys(path)
    b.wait("return latentUi.lastPng !== null", "the PNG's score")
    b.idle()
    ref_png = s.infer("img", [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(png).decode()]}])
    ref_px = s.infer("img", [{"name": "input", "shape": [1, 784], "datatype": "FP32", "data": images[5]}])
    check("png: the page sent the file's bytes", b.js("return latentUi.lastPng") == base64.b64encode(png).decode())
    check("png: the file scores as its pixels", ref_png["score"][0] == ref_px["score"][0])
    check_shown("png", ref_png["score"][0], ref_png["is_anomaly"][0])
    check("png: shown on the drawing canvas", b.canvas("draw") == images[5])
    b.shot("image-png")

    # A touch stroke (pointer type touch): a vertical line down column 14.
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    b.d.find_element(By.ID, "clear").click()
    b.idle()
    touch = ActionBuilder(b.d, mouse=PointerInput(interaction.POINTER_TOUCH, "finger"))
    touch.pointer_action.move_to(canvas, 5, -85).pointer_down()
    for _ in range(4):
        touch.pointer_action.move_by(0, 40)
    touch.pointer_action.pointer_up()
    touch.perform()
    b.wait("return latentUi.lastInput && latentUi.lastInput.some(v => v > 0)", "the touch stroke's score")
    b.idle()
    drawn = b.js("return latentUi.lastInput")
    check("touch: painted along its column", all(drawn[y * 28 + 14] == 255 for y in range(7, 21))
          and all(drawn[y * 28 + x] == 0 for x in list(range(0, 11)) + list(range(18, 28)) for y in range(28)))
    ref = s.infer("img", [{"name": "input", "shape": [1, 784], "datatype": "FP32", "data": drawn}])
    check_shown("touch", ref["score"][0], ref["is_anomaly"][0])

    # A PNG dropped on the canvas (a DataTransfer with the file, as a drag from the desktop gives).
    png9 = png_bytes(images[9], 28, 28)
    b.js("""const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], 'dropped.png', {type: 'image/png'}));
            document.getElementById('draw').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));""",
         base64.b64encode(png9).decode())
    b.wait("return latentUi.lastPng === arguments[0]".replace("arguments[0]", json.dumps(base64.b64encode(png9).decode())), "the dropped PNG's score")
    b.idle()
    ref = s.infer("img", [{"name": "input", "shape": [1, 784], "datatype": "FP32", "data": images[9]}])
    check_shown("dropped png", ref["score"][0], ref["is_anomaly"][0])

    # Live figures from /metrics.
    b.wait("const d = [...document.querySelectorAll('#live dd')]; return d.length && Number(d[0].textContent) >= 5", "live request count", 10)
    b.console_errors("image page (png, live figures)")


def vae_page(b, s):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    images = test_images(2)
    b.d.get(s.url + "/ui/vae")
    b.wait("return !!(latentUi.samples && latentUi.interp)", "samples and interpolation")
    b.idle()
    info = json.loads(s.get("/ui/api/vae/info")[2])
    samples = b.js("return latentUi.samples")
    dec = s.infer("vae-decoder", [{"name": "code", "shape": [16, info["code_dim"]], "datatype": "FP32", "data": samples["codes"]}])
    check("vae: the sample grid is the decoder's output for its codes",
          all(close(a, c) for a, c in zip(dec["reconstruction"], samples["images"])) and len(samples["images"]) == 16 * 784)
    grid0 = b.js("const c = document.querySelector('#samples canvas');"
                 "return Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data).filter((v, i) => i % 4 === 0);")
    check("vae: first sample drawn", all(abs(grid0[i] - max(0, min(255, round(samples["images"][i] * 255)))) <= 1 for i in range(784)))
    b.d.find_element(By.ID, "new-samples").click()
    b.wait("return latentUi.samples.codes[0] !== arguments[0]".replace("arguments[0]", repr(samples["codes"][0])), "new samples")
    # The slider by keyboard: 0.5 -> 0.3.
    slider = b.d.find_element(By.ID, "interp")
    slider.send_keys(Keys.ARROW_LEFT)
    slider.send_keys(Keys.ARROW_LEFT)
    b.wait("return latentUi.interp && Math.abs(latentUi.interp.t - 0.3) < 1e-9", "interpolation at 0.3")
    time.sleep(0.3)
    interp = b.js("return latentUi.interp")
    codes = s.infer("vae", [{"name": "input", "shape": [2, 784], "datatype": "FP32", "data": images[0] + images[1]}], ["code"])["code"]
    c = info["code_dim"]
    z = [0.7 * codes[j] + 0.3 * codes[c + j] for j in range(c)]
    ref = s.infer("vae-decoder", [{"name": "code", "shape": [1, c], "datatype": "FP32", "data": z}])["reconstruction"]
    check("vae: interpolation = decoder of the mixed codes of the two examples",
          interp["from"] == 0 and interp["to"] == 1 and all(close(a, r, 1e-5) for a, r in zip(interp["image"], ref)))
    b.shot("vae")
    b.console_errors("vae page")


def table_page(b, s):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    b.d.get(s.url + "/ui/tab")
    b.wait("return document.querySelectorAll('#table-example option').length > 1", "the form")
    info = json.loads(s.get("/ui/api/tab/info")[2])
    labels = b.js("return [...document.querySelectorAll('#columns label')].map(l => l.textContent)")
    lo, hi = [20, 0, 50, 0], [32, 10, 66, 0.28 + 1e-6]  # the file's own ranges (float32); training saw 80% of its rows
    check("table: one labelled field per stored column with its training range",
          [l.split(" ")[0] for l in labels] == ["temp", "load", "flow", "noise"]
          and all(lo[j] <= c["min"] <= c["max"] <= hi[j] and f"training range {c['min']:.6g} to {c['max']:.6g}" in labels[j]
                  for j, c in enumerate(info["columns"])), (labels, info["columns"]))
    Select(b.d.find_element(By.ID, "table-example")).select_by_index(3)
    field = b.d.find_element(By.ID, "col-3")
    field.clear()
    field.send_keys("0.9")
    b.d.find_element(By.CSS_SELECTOR, "#table-form button[type=submit]").click()
    b.wait("return latentUi.result !== null", "the row's score")
    b.idle()
    row = b.js("return latentUi.lastInput")
    ref = s.infer("tab", [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": row}])
    shown = float(b.js("return document.getElementById('table-score').dataset.value"))
    verdict = b.js("return document.getElementById('table-verdict-text').textContent")
    example = json.loads(s.get("/ui/api/tab/examples")[2])["examples"][2]["row"]
    check("table: the form's row is the example (7 digits) with the edited field",
          row[3] == 0.9 and all(close(a, b, 1e-6) for a, b in zip(row[:3], example[:3])), (row, example))
    check("table: shown score = the infer endpoint's", shown == ref["score"][0], (shown, ref["score"]))
    check("table: verdict", verdict == ("anomaly" if ref["is_anomaly"][0] else "normal"), verdict)
    config = json.loads(b.js("return document.getElementById('config').textContent"))
    check("table: config panel is the run's config.json", config == json.loads(s.get("/ui/api/tab/config")[2]))
    summary = b.wait("return document.getElementById('curve-summary').textContent", "the curve")
    check("table: training curve from metrics.jsonl", summary.startswith("2 epoch(s)"), summary)
    b.shot("table")
    b.console_errors("table page")


def onnx_page(b, s):
    b.d.get(s.url + "/ui/img-onnx")
    text = b.wait("const n = document.getElementById('notice'); return !n.hidden && n.textContent", "the notice")
    hidden = b.js("return ['image-panel', 'vae-panel', 'table-panel', 'curve-panel', 'config-panel'].every(id => document.getElementById(id).hidden)")
    check("onnx: run panels hidden, with the reason", hidden and ".onnx file" in text and "threshold" in text, text)
    b.shot("onnx")
    b.console_errors("onnx page")


def zoom_200(b, s):
    """Readable at 200% zoom: a 1280-px window at 200% lays out as 640 CSS px; nothing may need
    horizontal scrolling, and every control has a label."""
    b.d.set_window_size(640, 1000)
    for page in ["/ui/img", "/ui/vae", "/ui/tab"]:
        b.d.get(s.url + page)
        b.wait("return latentUi.info !== null && latentUi.pending === 0", "the page")
        time.sleep(0.5)
        width = b.js("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        check(f"200% zoom {page}: no horizontal scrolling", width[0] <= width[1], width)
        unlabelled = b.js("""return [...document.querySelectorAll('button, input, select, canvas[tabindex], output')]
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby')
                         && !e.textContent.trim() && e.tagName !== 'OUTPUT')
            .map(e => e.outerHTML.slice(0, 80));""")
        check(f"{page}: every control has a label", not unlabelled, unlabelled)
        b.shot("zoom200-" + page.split("/")[-1])
    b.d.set_window_size(1280, 1000)
    b.console_errors("200% zoom")


def api_key_page(work, chromium, driver_path):
    from selenium.webdriver.common.by import By
    with open(f"{work}/key.txt", "w") as f:
        f.write("s3cret-key\n")
    s = Server(f"{work}/img", "--api-key-file", f"{work}/key.txt")
    try:
        st, _, _ = s.get("/ui/api/img/info")
        check("api key: helper data needs the key", st == 401, st)
        st, _, _ = s.get("/ui/img")
        check("api key: the page itself loads without it", st == 200, st)
        with Browser(chromium, driver_path) as b:
            b.d.get(s.url + "/ui/img")
            b.wait("return !document.getElementById('key-form').hidden", "the key form")
            b.shot("api-key")
            b.d.find_element(By.ID, "key-input").send_keys("s3cret-key")
            b.d.find_element(By.CSS_SELECTOR, "#key-form button").click()
            b.wait("return document.querySelectorAll('#examples button').length === 16", "the examples after the key")
            check("api key: kept in sessionStorage", b.js("return sessionStorage.getItem('latent-api-key')") == "s3cret-key")
            b.d.get(s.url + "/")
            b.wait("return document.querySelectorAll('#models a').length === 1", "the index with the stored key")
            check("api key: asked once", b.js("return document.getElementById('key-form').hidden") is True)
            b.console_errors("api key pages")
    finally:
        s.stop()


if __name__ == "__main__":
    sys.exit(main())
