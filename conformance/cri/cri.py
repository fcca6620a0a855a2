"""A small CRI (runtime.v1) client for the cri suite, and the two things it needs first.

    cri.py proto --containerd BIN --out FILE
        Finds the runtime.v1 FileDescriptorProto that containerd's generated Go code carries
        (gzip-compressed) in the binary itself, drops its gogo import and options, and writes
        it serialized to FILE. Nothing generated is kept outside the run's temp dir.

    cri.py image --pause BIN --name REF --out TAR
        Packs BIN as /pause into an OCI image layout tar (oci-layout, index.json, one manifest,
        one config, one uncompressed layer) named REF, for `ctr images import`.

    cri.py call --sock SOCK --proto FILE [--timeout S] METHOD [JSON]
        Calls RuntimeService/METHOD (or ImageService/METHOD) with the request JSON (proto
        field names), over gRPC on the unix socket SOCK, as kubelet does. Prints the response
        as JSON with proto field names. A gRPC error prints "CODE: details" on stderr and
        exits 1; a call that cannot be made at all exits 2.

Message classes are built at run time from the descriptor (descriptor_pool + message_factory)
and the calls made with grpc's channel.unary_unary: no code generation.
Needs grpcio and protobuf; the standard library does the rest.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
import zlib
from collections.abc import Iterator

GZIP_MAGIC = b"\x1f\x8b\x08"
GOGO_IMPORT = "github.com/gogo/protobuf/gogoproto/gogo.proto"
PACKAGE = "runtime.v1"
SERVICES = ("RuntimeService", "ImageService")


# --- proto: the descriptor out of containerd's binary --------------------------------------


def _gzip_members(blob: bytes, limit: int = 1 << 20) -> Iterator[bytes]:
    """Yield the decompressed payload of every gzip stream found in blob (bounded size)."""
    at = blob.find(GZIP_MAGIC)
    while at >= 0:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = inflater.decompress(blob[at : at + limit], limit)
        except zlib.error:
            out = b""
        if out and inflater.eof:
            yield out
        at = blob.find(GZIP_MAGIC, at + 1)


def extract_descriptor(binary: str) -> bytes:
    from google.protobuf import descriptor_pb2

    with open(binary, "rb") as f:
        blob = f.read()
    for payload in _gzip_members(blob):
        fdp = descriptor_pb2.FileDescriptorProto()
        try:
            fdp.ParseFromString(payload)
        except Exception:  # not a descriptor: some other gzip stream
            continue
        if fdp.package != PACKAGE or not fdp.name.endswith("api.proto"):
            continue
        if not any(s.name == "RuntimeService" for s in fdp.service):
            continue
        # gogo's options are extensions of descriptor.proto's options: unknown fields here.
        fdp.DiscardUnknownFields()
        kept = [d for d in fdp.dependency if d != GOGO_IMPORT]
        del fdp.dependency[:]
        fdp.dependency.extend(kept)
        del fdp.public_dependency[:]
        del fdp.weak_dependency[:]
        for dep in kept:  # anything but gogo must be a well-known type the runtime already has
            if not dep.startswith("google/protobuf/"):
                raise SystemExit(f"runtime.v1 descriptor imports {dep}, which this client cannot provide")
        serialized: bytes = fdp.SerializeToString()
        return serialized
    raise SystemExit(f"no runtime.v1 api.proto descriptor found in {binary}")


# --- image: an OCI image layout tar -----------------------------------------------------------


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    info.uname = info.gname = "root"
    tar.addfile(info, io.BytesIO(data))


def _blob(blobs: dict[str, bytes], media_type: str, data: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def build_image(pause: str, name: str, out: str) -> None:
    with open(pause, "rb") as f:
        program = f.read()
    layer_io = io.BytesIO()
    with tarfile.open(fileobj=layer_io, mode="w", format=tarfile.PAX_FORMAT) as layer:
        _tar_add(layer, "pause", program, 0o755)
    layer_bytes = layer_io.getvalue()
    blobs: dict[str, bytes] = {}
    layer_desc = _blob(blobs, "application/vnd.oci.image.layer.v1.tar", layer_bytes)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/pause"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},  # uncompressed: same digest
        "history": [{"created_by": "conformance/cri: static pause program"}],
    }
    config_desc = _blob(blobs, "application/vnd.oci.image.config.v1+json", json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    }
    manifest_desc = _blob(blobs, "application/vnd.oci.image.manifest.v1+json", json.dumps(manifest).encode())
    manifest_desc["annotations"] = {
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
    }
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest_desc]}
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        _tar_add(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        _tar_add(tar, "index.json", json.dumps(index).encode())
        for digest, data in blobs.items():
            _tar_add(tar, "blobs/sha256/" + digest.split(":", 1)[1], data)


# --- call: one unary CRI method ----------------------------------------------------------------


def call(sock: str, proto_file: str, method: str, request_json: str, timeout: float) -> int:
    import grpc
    from google.protobuf import descriptor_pool, json_format, message_factory

    pool = descriptor_pool.DescriptorPool()
    with open(proto_file, "rb") as f:
        pool.AddSerializedFile(f.read())
    found = None
    for service in SERVICES:
        svc = pool.FindServiceByName(f"{PACKAGE}.{service}")
        if method in svc.methods_by_name:
            found = svc.methods_by_name[method]
            break
    if found is None:
        print(f"no method {method} in {PACKAGE}'s {', '.join(SERVICES)}", file=sys.stderr)
        return 2
    if found.client_streaming or found.server_streaming:
        print(f"{method} is a streaming method: not supported here", file=sys.stderr)
        return 2
    request_cls = message_factory.GetMessageClass(found.input_type)
    response_cls = message_factory.GetMessageClass(found.output_type)
    request = json_format.ParseDict(json.loads(request_json or "{}"), request_cls())
    with grpc.insecure_channel(f"unix://{sock}") as channel:
        stub = channel.unary_unary(
            f"/{found.containing_service.full_name}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_cls.FromString,
        )
        try:
            response = stub(request, timeout=timeout)
        except grpc.RpcError as err:
            code = err.code().name if hasattr(err, "code") else "UNKNOWN"
            details = err.details() if hasattr(err, "details") else str(err)
            print(f"{code}: {details}", file=sys.stderr)
            return 1
    print(json.dumps(json_format.MessageToDict(response, preserving_proto_field_name=True), sort_keys=True))
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("proto")
    p.add_argument("--containerd", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("image")
    p.add_argument("--pause", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("call")
    p.add_argument("--sock", required=True)
    p.add_argument("--proto", required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("method")
    p.add_argument("request", nargs="?", default="{}")
    args = parser.parse_args(argv)
    if args.cmd == "proto":
        data = extract_descriptor(args.containerd)
        with open(args.out, "wb") as f:
            f.write(data)
        return 0
    if args.cmd == "image":
        build_image(args.pause, args.name, args.out)
        return 0
    return call(args.sock, args.proto, args.method, args.request, args.timeout)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
