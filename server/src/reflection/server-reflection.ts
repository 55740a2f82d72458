import { toBinary, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { ServerReflection as ServerReflectionV1 } from "./gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "./gen/grpc/reflection/v1alpha/reflection_pb.js";

/** A reflection request, the same in v1 and v1alpha. */
interface ReflectionRequest {
  host: string;
  messageRequest:
    | { case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices"; value: string }
    | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
    | { case: undefined; value?: undefined };
}

/** What one reflection answer holds (init shape of ServerReflectionResponse, v1 and v1alpha). */
type ReflectionAnswer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

/** The files of the services and everything they import, with an index of their symbols. */
function reflectionIndex(services: DescService[]) {
  const files = new Map<string, DescFile>();
  const symbols = new Map<string, DescFile>();
  const addMessage = (m: DescMessage, file: DescFile) => {
    symbols.set(m.typeName, file);
    for (const n of m.nestedMessages) addMessage(n, file);
    for (const e of m.nestedEnums) symbols.set(e.typeName, file);
  };
  const addFile = (f: DescFile) => {
    if (files.has(f.proto.name)) return;
    files.set(f.proto.name, f);
    for (const d of f.dependencies) addFile(d);
    for (const m of f.messages) addMessage(m, f);
    for (const e of f.enums) symbols.set(e.typeName, f);
    for (const s of f.services) {
      symbols.set(s.typeName, f);
      for (const m of s.methods) symbols.set(`${s.typeName}.${m.name}`, f);
    }
  };
  for (const s of services) addFile(s.file);
  /** The file and all it imports, the file first (what grpcurl and buf curl expect). */
  const withDependencies = (f: DescFile): Uint8Array[] => {
    const out = new Map<string, DescFile>();
    const visit = (x: DescFile) => {
      if (out.has(x.proto.name)) return;
      out.set(x.proto.name, x);
      x.dependencies.forEach(visit);
    };
    visit(f);
    return [...out.values()].map((x) => toBinary(FileDescriptorProtoSchema, x.proto));
  };
  return { files, symbols, withDependencies };
}

/**
 * Serves gRPC server reflection (grpc.reflection.v1 and v1alpha) for every service registered
 * on the router so far, and for itself, so that grpcurl, buf curl and clients in any language
 * list and call the services without a copy of the .proto files. Call it last in the routes
 * callback. Answers: list_services, file_by_filename, file_containing_symbol (services,
 * methods, messages, enums; the file comes with everything it imports); extensions are not used
 * by the contract and answer NOT_FOUND / an empty list.
 */
export function registerReflection(router: ConnectRouter): void {
  const services = new Map<string, DescService>();
  for (const h of router.handlers) services.set(h.service.typeName, h.service);
  for (const s of [ServerReflectionV1, ServerReflectionV1alpha]) services.set(s.typeName, s);
  const index = reflectionIndex([...services.values()]);

  const answer = (req: ReflectionRequest): ReflectionAnswer => {
    const notFound = (what: string): ReflectionAnswer => ({
      case: "errorResponse",
      value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` },
    });
    const m = req.messageRequest;
    switch (m.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: [...services.keys()].sort().map((name) => ({ name })) } };
      case "fileByFilename": {
        const f = index.files.get(m.value);
        return f
          ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: index.withDependencies(f) } }
          : notFound(`file ${m.value}`);
      }
      case "fileContainingSymbol": {
        const f = index.symbols.get(m.value.replace(/^\./, ""));
        return f
          ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: index.withDependencies(f) } }
          : notFound(`symbol ${m.value}`);
      }
      case "fileContainingExtension":
        return notFound(`extension ${m.value.extensionNumber} of ${m.value.containingType}`);
      case "allExtensionNumbersOfType":
        return index.symbols.has(m.value)
          ? { case: "allExtensionNumbersResponse", value: { baseTypeName: m.value, extensionNumber: [] } }
          : notFound(`type ${m.value}`);
      default:
        return { case: "errorResponse", value: { errorCode: INVALID_ARGUMENT, errorMessage: "empty request" } };
    }
  };

  const impl = {
    async *serverReflectionInfo(requests: AsyncIterable<ReflectionRequest>) {
      for await (const req of requests) {
        yield { validHost: req.host, originalRequest: req, messageResponse: answer(req) };
      }
    },
  };
  router.service(ServerReflectionV1, impl as never);
  router.service(ServerReflectionV1alpha, impl as never);
}
