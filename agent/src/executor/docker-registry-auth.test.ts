import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadAgentConfig } from "../config.js";
import {
  authConfigFor,
  DOCKER_HUB_SERVER,
  parseDockerAuthConfig,
  readDockerAuthFile,
  registryOfAuthKey,
  registryOfImage,
} from "./docker-registry-auth.js";

const b64 = (text: string): string => Buffer.from(text).toString("base64");
const FILE = "/etc/mottainai/docker.json";
const parse = (doc: unknown) => parseDockerAuthConfig(JSON.stringify(doc), FILE);

describe("docker registry auth", () => {
  describe("registryOfImage (Docker's rule)", () => {
    const cases: [string, string][] = [
      ["busybox", "docker.io"],
      ["busybox:1.36", "docker.io"],
      ["library/busybox:latest", "docker.io"],
      ["sabayon/base-amd64", "docker.io"],
      ["docker.io/library/busybox", "docker.io"],
      ["index.docker.io/sabayon/base", "docker.io"],
      ["127.0.0.1:5001/mottainai-test/private:x", "127.0.0.1:5001"],
      ["registry.example/team/app@sha256:abc", "registry.example"],
      ["registry.example:5000/app", "registry.example:5000"],
      ["localhost/app", "localhost"],
      ["localhost:5000/app:1", "localhost:5000"],
      ["myhost/app", "docker.io"],
      ["MyHost/app", "myhost"],
      ["[::1]:5000/app", "[::1]:5000"],
      ["Quay.IO/org/app", "quay.io"],
    ];
    for (const [image, registry] of cases) {
      it(`${image} → ${registry}`, () => assert.equal(registryOfImage(image), registry));
    }
  });

  describe("registryOfAuthKey (as Docker reads config.json)", () => {
    const cases: [string, string | undefined][] = [
      ["https://index.docker.io/v1/", "docker.io"],
      ["docker.io", "docker.io"],
      ["index.docker.io", "docker.io"],
      ["registry-1.docker.io", "docker.io"],
      ["127.0.0.1:5001", "127.0.0.1:5001"],
      ["http://127.0.0.1:5001/v2/", "127.0.0.1:5001"],
      ["Registry.Example:5000", "registry.example:5000"],
      ["", undefined],
      ["https://", undefined],
      ["not a host", undefined],
      ["host:port", undefined],
    ];
    for (const [key, registry] of cases) {
      it(`${JSON.stringify(key)} → ${String(registry)}`, () => assert.equal(registryOfAuthKey(key), registry));
    }
  });

  describe("parseDockerAuthConfig", () => {
    it("reads `auth` (base64 user:password) and username/password entries, Docker Hub under its v1 address", () => {
      const auth = parse({
        auths: {
          "127.0.0.1:5001": { auth: b64("mottainai:pa:ss=wörd") },
          "https://index.docker.io/v1/": { username: "hubuser", password: "hubpass", email: "x@example.org" },
          "http://registry.example:5000/v2/": { auth: b64("u:"), identitytoken: "tok" },
        },
        HttpHeaders: { "User-Agent": "x" },
        credsStore: "",
      });
      assert.equal(auth.file, FILE);
      assert.deepEqual(
        [...auth.registries],
        [
          ["127.0.0.1:5001", { username: "mottainai", password: "pa:ss=wörd", serveraddress: "127.0.0.1:5001" }],
          ["docker.io", { username: "hubuser", password: "hubpass", serveraddress: DOCKER_HUB_SERVER }],
          [
            "registry.example:5000",
            { username: "u", password: "", identitytoken: "tok", serveraddress: "registry.example:5000" },
          ],
        ],
      );
    });

    it("prefers `auth` over username/password, as Docker does", () => {
      const auth = parse({ auths: { "r.example": { auth: b64("a:b"), username: "c", password: "d" } } });
      assert.deepEqual(auth.registries.get("r.example"), { username: "a", password: "b", serveraddress: "r.example" });
    });

    it("accepts an empty auths mapping", () => {
      assert.equal(parse({ auths: {} }).registries.size, 0);
    });

    const errors: [string, unknown, string][] = [
      ["text that is not JSON", "{", `${FILE}: not JSON: `],
      ["a list", [], `${FILE}: expected a mapping with "auths", got a list`],
      ["no auths", {}, `${FILE}: auths: missing; expected {"auths": {"HOST[:PORT]": {"auth": "<base64 user:password>"}}}`],
      ["auths not a mapping", { auths: ["x"] }, `${FILE}: auths: expected a mapping of registries, got a list`],
      [
        "auth not base64",
        { auths: { "127.0.0.1:5001": { auth: "mottainai:secret" } } },
        `${FILE}: auths["127.0.0.1:5001"].auth: not base64 "user:password"`,
      ],
      [
        "auth without a colon",
        { auths: { "127.0.0.1:5001": { auth: b64("mottainai") } } },
        `${FILE}: auths["127.0.0.1:5001"].auth: not base64 "user:password"`,
      ],
      [
        "auth with an empty user",
        { auths: { "127.0.0.1:5001": { auth: b64(":secret") } } },
        `${FILE}: auths["127.0.0.1:5001"].auth: not base64 "user:password"`,
      ],
      [
        "auth of the wrong length",
        { auths: { "127.0.0.1:5001": { auth: b64("mottainai:secret").replace(/=+$/, "") + "=" } } },
        `${FILE}: auths["127.0.0.1:5001"].auth: not base64 "user:password"`,
      ],
      [
        "auth not a string",
        { auths: { "r.example": { auth: 42 } } },
        `${FILE}: auths["r.example"].auth: expected a string, got 42`,
      ],
      [
        "username without password",
        { auths: { "r.example": { username: "u" } } },
        `${FILE}: auths["r.example"].password: missing for "username"`,
      ],
      [
        "password without username",
        { auths: { "r.example": { password: "p" } } },
        `${FILE}: auths["r.example"].username: missing for "password"`,
      ],
      [
        "an entry without credentials",
        { auths: { "r.example": {} } },
        `${FILE}: auths["r.example"]: no credentials; expected "auth" (base64 "user:password") or "username" and "password"`,
      ],
      [
        "an entry that is not a mapping",
        { auths: { "r.example": "u:p" } },
        `${FILE}: auths["r.example"]: expected a mapping with "auth" or "username" and "password", got "u:p"`,
      ],
      [
        "a key that names no registry",
        { auths: { "not a host": { auth: b64("u:p") } } },
        `${FILE}: auths["not a host"]: expected a registry such as "registry.example:5000" or "${DOCKER_HUB_SERVER}"`,
      ],
      [
        "two keys for one registry",
        { auths: { "https://index.docker.io/v1/": { auth: b64("u:p") }, "docker.io": { auth: b64("v:q") } } },
        `${FILE}: auths["docker.io"]: the same registry as auths["https://index.docker.io/v1/"]; keep one`,
      ],
      [
        "a credential store",
        { auths: {}, credsStore: "desktop" },
        `${FILE}: credsStore: credential helpers are not supported; put the credentials in "auths"`,
      ],
      [
        "credential helpers",
        { auths: {}, credHelpers: { "r.example": "pass" } },
        `${FILE}: credHelpers: credential helpers are not supported; put the credentials in "auths"`,
      ],
    ];
    for (const [what, doc, message] of errors) {
      it(`rejects ${what}, naming the file and the key`, () => {
        const text = typeof doc === "string" ? doc : JSON.stringify(doc);
        assert.throws(
          () => parseDockerAuthConfig(text, FILE),
          (err: Error) => {
            if (message.endsWith(": ")) assert.ok(err.message.startsWith(message), err.message);
            else assert.equal(err.message, message);
            return true;
          },
        );
      });
    }
  });

  describe("authConfigFor", () => {
    const auth = parse({
      auths: {
        "127.0.0.1:5001": { auth: b64("mottainai:secret") },
        "https://index.docker.io/v1/": { auth: b64("hub:hubpass") },
      },
    });

    it("gives the credentials of the image's registry", () => {
      assert.deepEqual(authConfigFor(auth, "127.0.0.1:5001/mottainai-test/private:1"), {
        username: "mottainai",
        password: "secret",
        serveraddress: "127.0.0.1:5001",
      });
      for (const image of ["busybox", "sabayon/base-amd64:latest", "docker.io/library/debian", "index.docker.io/a/b"]) {
        assert.deepEqual(
          authConfigFor(auth, image),
          { username: "hub", password: "hubpass", serveraddress: DOCKER_HUB_SERVER },
          image,
        );
      }
    });

    it("gives nothing (anonymous) for other registries, other ports and without a file", () => {
      assert.equal(authConfigFor(auth, "127.0.0.1:5000/mottainai-test/private:1"), undefined);
      assert.equal(authConfigFor(auth, "registry.example/app"), undefined);
      assert.equal(authConfigFor(undefined, "busybox"), undefined);
    });

    it("returns a copy: a caller cannot change the agent's credentials", () => {
      const first = authConfigFor(auth, "busybox");
      assert.ok(first);
      first.password = "changed";
      assert.equal(authConfigFor(auth, "busybox")?.password, "hubpass");
    });
  });

  describe("--docker-auth-file (agent configuration)", () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), "mottainai-auth-"));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const good = { auths: { "127.0.0.1:5001": { auth: b64("mottainai:secret") } } };

    it("reads the file given by flag, variable or YAML key (relative to the YAML file)", () => {
      writeFileSync(join(dir, "docker.json"), JSON.stringify(good));
      writeFileSync(join(dir, "agent.yaml"), "docker_auth_file: docker.json\n");
      const expected = readDockerAuthFile(join(dir, "docker.json"));
      const byFlag = loadAgentConfig(["--docker-auth-file", "docker.json"], {}, { cwd: dir });
      const byEnv = loadAgentConfig([], { MOTTAINAI_AGENT_DOCKER_AUTH_FILE: join(dir, "docker.json") }, { cwd: "/" });
      const byFile = loadAgentConfig(["--config", join(dir, "agent.yaml")], {}, { cwd: "/" });
      for (const config of [byFlag, byEnv, byFile]) assert.deepEqual(config.dockerRegistryAuth, expected);
      assert.equal(loadAgentConfig([], {}, { cwd: dir }).dockerRegistryAuth, undefined);
    });

    it("fails at start naming the setting, the file and the key", () => {
      const path = join(dir, "docker.json");
      writeFileSync(path, JSON.stringify({ auths: { "127.0.0.1:5001": { auth: "mottainai:secret" } } }));
      assert.throws(
        () => loadAgentConfig(["--docker-auth-file", path], {}),
        (err: Error) =>
          err instanceof ConfigError &&
          err.message === `--docker-auth-file: ${path}: auths["127.0.0.1:5001"].auth: not base64 "user:password"`,
      );
      assert.throws(
        () => loadAgentConfig([], { MOTTAINAI_AGENT_DOCKER_AUTH_FILE: join(dir, "missing.json") }),
        (err: Error) =>
          err instanceof ConfigError &&
          err.message === `MOTTAINAI_AGENT_DOCKER_AUTH_FILE: cannot read ${join(dir, "missing.json")}: ENOENT`,
      );
    });
  });
});
