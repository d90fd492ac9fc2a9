"""Drives tracehoundd from Python over its Unix socket and prints what it answered.

Usage: client.py SOCKET_PATH (with the generated tracehound_pb2* modules on sys.path).
The calls and the projection of the answers mirror tests/python_client.rs exactly, so the
Rust test can compare both outputs field by field.
"""
import json
import sys

import grpc
import tracehound_pb2 as pb
import tracehound_pb2_grpc as pb_grpc

PAYLOAD = '{"q":"\' OR 1=1"}'


def req(source, payload, threat, seq):
    r = pb.InterceptRequest(source=source, payload_json=payload, sequence=seq,
                            timestamp_ms=1_700_000_000_000.0 + seq)
    if threat:
        r.threat.category, r.threat.severity = threat
    return r


def reply(r):
    return {"sequence": r.sequence, "status": r.status, "retry_after_ms": r.retry_after_ms,
            "limit": r.limit, "signature": r.signature, "hash": r.hash, "size": r.size,
            "severity": r.severity, "captured_ms": r.captured_ms,
            "error_code": r.error_code}


def stats(s):
    q = s.quarantine
    return {
        "counters": [s.total_intercepts, s.clean, s.rate_limited, s.payload_too_large,
                     s.ignored, s.quarantined, s.errors, s.panics_caught],
        "quarantine": [q.count, q.bytes, q.max_count, q.max_bytes, q.pressure,
                       sorted(q.count_by_severity.items())],
        "audit": [s.audit.length, s.audit.head_hash],
        "top_sources": [[t.source, t.intercepts, t.threats, t.blocked] for t in s.top_sources],
        "recent_threats": [[t.signature, t.category, t.severity, t.size] for t in s.recent_threats],
        "config": [s.config_generation, s.reload_failures],
        "rate_limit": [s.rate_limited_sources_active, s.rate_limited_sources_blocked],
    }


def inspect(i):
    return [i.found, i.signature, i.category, i.severity, i.size, i.stored_bytes, i.hash,
            i.captured_ms, i.disposed]


def main():
    # grpc-core sends the percent-encoded socket path as :authority, which hyper rejects
    # as malformed; any valid authority works (the socket is what matters).
    options = [("grpc.default_authority", "localhost")]
    with grpc.insecure_channel("unix:" + sys.argv[1], options=options) as channel:
        stub = pb_grpc.TracehoundStub(channel)
        out = {"intercepts": []}
        out["intercepts"].append(reply(stub.Intercept(req("a", '{"x":1}', None, 1))))
        threat = stub.Intercept(req("b", PAYLOAD, ("injection", "high"), 2))
        out["intercepts"].append(reply(threat))
        out["intercepts"].append(reply(stub.Intercept(req("c", PAYLOAD, ("injection", "high"), 3))))
        out["intercepts"].append(reply(stub.Intercept(req("d", "{nope", None, 4))))
        out["stats"] = stats(stub.Stats(pb.StatsRequest(top=5)))
        out["inspect"] = inspect(stub.Inspect(pb.InspectRequest(signature=threat.signature)))
        out["missing"] = inspect(stub.Inspect(pb.InspectRequest(signature="spam:00")))
        chain = stub.VerifyChain(pb.VerifyChainRequest())
        out["chain"] = [chain.ok, chain.length, chain.head_hash]
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
