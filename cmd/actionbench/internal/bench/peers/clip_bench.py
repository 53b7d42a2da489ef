"""clip_bench.py: the clip front-end peers of actiond's ingest.LoadClip, run
by cmd/actionbench with Debian's /usr/bin/python3 (python3-opencv,
python3-av, python3-pil, python3-numpy).

Usage: clip_bench.py MODE VIDEO REPEATS
MODE: cv2-read  OpenCV reads every frame, then samples;
      cv2-grab  OpenCV grab()s every frame, retrieve()s only sampled ones;
      pyav      PyAV decodes every frame, converts only sampled ones.
Each is followed by the reference preprocessing (PPTSMV2.md §3): Pillow
BILINEAR resize to the fixed-ratio size, centre crop (round half to even),
/255, -mean, /std, planar RGB -> float32 [16,3,224,224].
Prints one JSON line: {"seconds": [one per repeat], "frames": N, "indices": [...]}.
"""
import json
import sys
import time

import av
import cv2
import numpy as np
from PIL import Image

SEGMENTS, SHORT, CROP = 16, 256, 224
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)


def sample(n):
    avg = int(n / SEGMENTS)
    out = []
    for i in range(SEGMENTS):
        idx = (avg - 1) // 2 + i * avg if avg >= 1 else i
        out.append(idx % n)
    return out


def preprocess(rgb_frames):
    arrs = []
    for rgb in rgb_frames:
        img = Image.fromarray(rgb)
        w, h = img.size
        if (w <= h and w == SHORT) or (h <= w and h == SHORT):
            pass
        elif w <= h:
            img = img.resize((SHORT, int(SHORT * 4.0 / 3.0)), Image.BILINEAR)
        else:
            img = img.resize((int(SHORT * 4.0 / 3.0), SHORT), Image.BILINEAR)
        w, h = img.size
        x1, y1 = int(round((w - CROP) / 2.0)), int(round((h - CROP) / 2.0))
        arrs.append(np.asarray(img.crop((x1, y1, x1 + CROP, y1 + CROP))))
    x = np.stack(arrs).astype("float32").transpose(0, 3, 1, 2)
    return (x / 255.0 - MEAN) / STD


def cv2_read(path):
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    idx = sample(len(frames))
    return len(frames), idx, [cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB) for i in idx]


def cv2_grab(path):
    cap = cv2.VideoCapture(path)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    idx = sample(n)
    want = set(idx)
    got = {}
    for i in range(n):
        if not cap.grab():
            break
        if i in want:
            ok, f = cap.retrieve()
            if ok:
                got[i] = cv2.cvtColor(f, cv2.COLOR_BGR2RGB)
    cap.release()
    return n, idx, [got[i] for i in idx]


def pyav(path):
    with av.open(path) as c:
        s = c.streams.video[0]
        n = s.frames
        idx = sample(n)
        want = set(idx)
        got = {}
        for i, frame in enumerate(c.decode(s)):
            if i in want:
                got[i] = frame.to_ndarray(format="rgb24")
            if i >= n - 1:
                break
    return n, idx, [got[i] for i in idx]


def main():
    mode, path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    fn = {"cv2-read": cv2_read, "cv2-grab": cv2_grab, "pyav": pyav}[mode]
    fn(path)  # warm-up: page cache, codec init
    secs = []
    for _ in range(repeats):
        t = time.perf_counter()
        n, idx, frames = fn(path)
        x = preprocess(frames)
        secs.append(time.perf_counter() - t)
    assert x.shape == (SEGMENTS, 3, CROP, CROP), x.shape
    print(json.dumps({"seconds": secs, "frames": n, "indices": idx}))


if __name__ == "__main__":
    main()
