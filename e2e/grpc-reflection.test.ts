import assert from "node:assert/strict";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { TokenService } from "@mottainai/proto";
import { adminClient, cleanupAll, ROOT, startServer, type ServerProc } from "./harness.js";

const LOADER = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

type WireEvent = { type: string; subject_id: string; sequence: string; attributes: { key: string; value: string }[] };

type Reflection = grpc.Client & { ServerReflectionInfo(): grpc.ClientDuplexStream<object, Record<string, unknown>> };

/** Sends reflection requests one by one on one stream and returns the answers. */
async function reflect(client: Reflection, requests: object[]): Promise<Record<string, unknown>[]> {
  const call = client.ServerReflectionInfo();
  const answers: Record<string, unknown>[] = [];
  const done = new Promise<void>((resolve, reject) => {
    call.on("data", (r: Record<string, unknown>) => answers.push(r));
    call.on("end", resolve);
    call.on("error", reject);
  });
  for (const r of requests) call.write(r);
  call.end();
  await done;
  return answers;
}

/** A FileDescriptorSet (field 1, repeated FileDescriptorProto) around serialized files. */
function descriptorSet(files: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    const len: number[] = [];
    for (let n = f.length; ; n >>>= 7) {
      if (n < 0x80) {
        len.push(n);
        break;
      }
      len.push((n & 0x7f) | 0x80);
    }
    parts.push(Buffer.from([0x0a, ...len]), f);
  }
  return Buffer.concat(parts);
}

/** A stock @grpc/grpc-js + @grpc/proto-loader client, without generated code, against a real server. */
describe("gRPC server reflection (stock grpc-js client, real server)", function () {
  this.timeout(60_000);
  let server: ServerProc;

  before(async () => {
    server = await startServer();
  });
  after(cleanupAll);

  const reflectionClient = (version: "v1" | "v1alpha"): Reflection => {
    const def = protoLoader.loadSync(join(ROOT, `server/proto/grpc/reflection/${version}/reflection.proto`), LOADER);
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      grpc: { reflection: Record<string, { ServerReflection: grpc.ServiceClientConstructor }> };
    };
    const Ctor = pkg.grpc.reflection[version]!.ServerReflection;
    return new Ctor(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()) as unknown as Reflection;
  };

  it("lists every service in v1 and v1alpha", async () => {
    for (const version of ["v1", "v1alpha"] as const) {
      const client = reflectionClient(version);
      const [answer] = await reflect(client, [{ list_services: "" }]);
      const names = (answer!.list_services_response as { service: { name: string }[] }).service.map((s) => s.name);
      for (const name of [
        "mottainai.v1.EventService",
        "mottainai.v1.TaskService",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
      ]) {
        assert.ok(names.includes(name), `${version}: ${name} in ${names.join(", ")}`);
      }
      client.close();
    }
  });

  it("describes EventService so that a schema-less client subscribes to events", async () => {
    const reflection = reflectionClient("v1");
    const [files, missing] = await reflect(reflection, [
      { file_containing_symbol: "mottainai.v1.EventService" },
      { file_containing_symbol: "mottainai.v1.NoSuchThing" },
    ]);
    reflection.close();
    assert.deepEqual(missing!.error_response, { error_code: 5, error_message: "symbol mottainai.v1.NoSuchThing not found" });
    const protos = (files!.file_descriptor_response as { file_descriptor_proto: Buffer[] }).file_descriptor_proto;
    assert.ok(protos.length >= 3, "event.proto with its imports");
    const def = protoLoader.loadFileDescriptorSetFromBuffer(descriptorSet(protos), LOADER);
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      mottainai: { v1: { EventService: grpc.ServiceClientConstructor } };
    };
    const events = new pkg.mottainai.v1.EventService(
      `127.0.0.1:${server.port}`,
      grpc.credentials.createInsecure(),
    ) as unknown as grpc.Client & {
      Subscribe(req: object, md: grpc.Metadata): grpc.ClientReadableStream<{ event?: WireEvent }>;
    };
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${server.adminToken}`);
    const stream = events.Subscribe({ from_sequence: "0", types: ["token."] }, md);
    // proto-loader reads the map from a descriptor set as its entries ({key, value} pairs).
    const got = new Promise<WireEvent>((resolve, reject) => {
      stream.on("data", (r: { event?: WireEvent }) => {
        if (r.event?.attributes.some((a) => a.key === "name" && a.value === "from-grpc-js")) resolve(r.event);
      });
      stream.on("error", reject);
    });
    await adminClient(server, TokenService).createToken({ name: "from-grpc-js" });
    const event = await got;
    stream.cancel();
    events.close();
    assert.equal(event.type, "token.created");
  });
});
