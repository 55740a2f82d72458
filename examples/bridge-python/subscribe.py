#!/usr/bin/python3
"""A Mottainai bridge in Python: prints every event as one JSON line, resuming from a sequence.

usage: subscribe.py SERVER(host:port) TOKEN [FROM_SEQUENCE] [TYPE_PREFIX ...]

Stubs come from generate.sh (into ./gen, or the directory in MOTTAINAI_PY_STUBS). It reconnects
after a lost stream, from the last sequence it printed, so nothing is missed or printed twice.
A gap marker (events the server no longer keeps) prints as {"gap": [from, to]}.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.environ.get("MOTTAINAI_PY_STUBS", os.path.join(os.path.dirname(__file__), "gen")))

import grpc  # noqa: E402
from mottainai.v1 import event_pb2, event_pb2_grpc  # noqa: E402


def main():
    server, token = sys.argv[1], sys.argv[2]
    last = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    types = sys.argv[4:]
    metadata = [("authorization", "Bearer " + token)]
    delay = 0.2
    while True:
        try:
            with grpc.insecure_channel(server) as channel:
                stub = event_pb2_grpc.EventServiceStub(channel)
                request = event_pb2.SubscribeRequest(from_sequence=last, types=types)
                for response in stub.Subscribe(request, metadata=metadata):
                    delay = 0.2
                    if response.HasField("gap"):
                        print(json.dumps({"gap": [response.gap.from_sequence, response.gap.to_sequence]}), flush=True)
                        last = response.gap.to_sequence
                        continue
                    e = response.event
                    if e.sequence <= last:
                        continue
                    last = e.sequence
                    print(json.dumps({
                        "sequence": e.sequence,
                        "type": e.type,
                        "subject": e.subject_id,
                        "attributes": dict(e.attributes),
                    }), flush=True)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                print("unauthenticated: " + err.details(), file=sys.stderr)
                sys.exit(2)
            print("stream lost (%s); reconnecting from %d" % (err.code().name, last), file=sys.stderr, flush=True)
        time.sleep(delay)
        delay = min(delay * 2, 10)


if __name__ == "__main__":
    main()
