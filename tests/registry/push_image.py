#!/usr/bin/python3
"""Builds a small image and pushes it to an anonymous registry (stdlib only).

    push_image.py URL REPO TAG [--layer-mib N] [--index] [--seed S]

The image: one gzip tar layer holding /hello.txt (and, with --layer-mib,
/random.bin of N MiB of random bytes, which gzip cannot shrink), an image
config JSON (os, architecture, rootfs.diff_ids), a Docker schema2
manifest. With --index, two such images (linux/amd64 and linux/arm64/v8)
are pushed by digest and an OCI index listing both is put under TAG.
Prints lines `manifest=`, `config=`, `size=` for the amd64 image and,
with --index, `index=`, `arm64_manifest=`, `arm64_config=`.
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def request(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def push_blob(base, repo, data):
    d = digest(data)
    st, _, _ = request("HEAD", f"{base}/v2/{repo}/blobs/{d}")
    if st == 200:
        return d
    st, h, body = request("POST", f"{base}/v2/{repo}/blobs/uploads/", b"")
    assert st == 202, (st, body)
    loc = h["Location"]
    if loc.startswith("/"):
        loc = base + loc
    sep = "&" if "?" in loc else "?"
    st, _, body = request("PUT", f"{loc}{sep}digest={d}", data,
                          {"Content-Type": "application/octet-stream"})
    assert st == 201, (st, body)
    return d


def push_manifest(base, repo, ref, data, media_type):
    st, h, body = request("PUT", f"{base}/v2/{repo}/manifests/{ref}", data,
                          {"Content-Type": media_type})
    assert st == 201, (st, body)
    return digest(data)


def layer(arch, layer_mib, seed):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        text = f"hello from {arch} ({seed})\n".encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(text)
        info.mtime = 0
        t.addfile(info, io.BytesIO(text))
        if layer_mib:
            info = tarfile.TarInfo("random.bin")
            info.size = layer_mib << 20
            info.mtime = 0
            t.addfile(info, io.BytesIO(os.urandom(info.size)))
    tar = raw.getvalue()
    gz = gzip.compress(tar, compresslevel=1, mtime=0)
    return tar, gz


def push_image(base, repo, ref, arch, variant, layer_mib, seed):
    tar, gz = layer(arch, layer_mib, seed)
    config = {"architecture": arch, "os": "linux",
              "config": {"Cmd": ["/bin/sh"], "Env": [f"SEED={seed}"]},
              "rootfs": {"type": "layers", "diff_ids": [digest(tar)]},
              "history": [{"created_by": "push_image.py"}]}
    if variant:
        config["variant"] = variant
    cfg = json.dumps(config, sort_keys=True).encode()
    cfg_d = push_blob(base, repo, cfg)
    gz_d = push_blob(base, repo, gz)
    manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "size": len(cfg), "digest": cfg_d},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                            "size": len(gz), "digest": gz_d}]}
    data = json.dumps(manifest, indent=3).encode()
    m_d = push_manifest(base, repo, ref or digest(data), data, DOCKER_MANIFEST)
    return m_d, cfg_d, len(data), gz_d


def main():
    args = sys.argv[1:]
    base, repo, tag = args[0].rstrip("/"), args[1], args[2]
    layer_mib = int(args[args.index("--layer-mib") + 1]) if "--layer-mib" in args else 0
    seed = args[args.index("--seed") + 1] if "--seed" in args else repo + ":" + tag
    if "--index" not in args:
        m, c, size, lay = push_image(base, repo, tag, "amd64", None, layer_mib, seed)
        print(f"manifest={m}\nconfig={c}\nsize={size}\nlayer={lay}")
        return
    m, c, size, lay = push_image(base, repo, None, "amd64", None, layer_mib, seed)
    am, ac, asize, _ = push_image(base, repo, None, "arm64", "v8", layer_mib, seed)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": am, "size": asize,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": DOCKER_MANIFEST, "digest": m, "size": size,
         "platform": {"os": "linux", "architecture": "amd64"}}]}
    data = json.dumps(index).encode()
    i = push_manifest(base, repo, tag, data, OCI_INDEX)
    print(f"manifest={m}\nconfig={c}\nsize={size}\nlayer={lay}\nindex={i}\n"
          f"arm64_manifest={am}\narm64_config={ac}")


main()
