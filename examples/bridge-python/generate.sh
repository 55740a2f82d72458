#!/bin/sh
# Generates the Python stubs of the Mottainai contract into OUT (default ./gen) with buf (from
# npm) and Debian's protoc + gRPC plugin (protobuf-compiler, protobuf-compiler-grpc).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$(dirname "$0")/gen}
mkdir -p "$OUT"
"$ROOT/node_modules/.bin/buf" build "$ROOT/proto" -o "$OUT/image.binpb"
FILES=$(cd "$ROOT/proto" && ls mottainai/v1/*.proto)
protoc --descriptor_set_in="$OUT/image.binpb" --python_out="$OUT" --grpc_out="$OUT" \
  --plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin $FILES
