import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { DEFAULT_SERVER, type ProfilesFile, createProfileStore, resolveConnection } from "./profile-store.js";

describe("ProfileStore", () => {
  let configDir: string;

  beforeEach(async () => {
    configDir = join(await mkdtemp(join(tmpdir(), "mottainai-cli-")), "config", "mottainai");
  });

  afterEach(async () => {
    await rm(join(configDir, "..", ".."), { recursive: true, force: true });
  });

  it("reads a missing file as an empty store", async () => {
    assert.deepEqual(await createProfileStore(configDir).read(), { profiles: {} });
  });

  it("writes profiles.yaml with mode 0600 in a 0700 directory", async () => {
    const store = createProfileStore(configDir);
    await store.create("local", { server: "http://127.0.0.1:9090", token: "secret" });
    assert.equal(store.path, join(configDir, "profiles.yaml"));
    assert.equal((await stat(store.path)).mode & 0o777, 0o600);
    assert.equal((await stat(configDir)).mode & 0o777, 0o700);
    assert.deepEqual(parse(await readFile(store.path, "utf8")), {
      current: "local",
      profiles: { local: { server: "http://127.0.0.1:9090", token: "secret" } },
    });
  });

  it("replaces the file by rename and leaves no temporary file behind", async () => {
    const store = createProfileStore(configDir);
    await store.create("a", { server: "http://a:1" });
    const before = await stat(store.path);
    await store.create("b", { server: "http://b:1" });
    const after = await stat(store.path);
    assert.notEqual(after.ino, before.ino, "a new file was renamed over the old one");
    assert.equal(after.mode & 0o777, 0o600);
    assert.deepEqual(await readdir(configDir), ["profiles.yaml"]);
  });

  it("never exposes a partial file to readers during concurrent writes", async () => {
    const store = createProfileStore(configDir);
    await store.create("base", { server: "http://base:1" });
    const file = await store.read();
    const writes = Array.from({ length: 20 }, (_, index) =>
      store.write({
        ...file,
        profiles: { ...file.profiles, [`p${index}`]: { server: `http://p${index}:1`, token: "x".repeat(4096) } },
      }),
    );
    const reads = Array.from({ length: 20 }, () => store.read());
    const results = await Promise.all([...writes, ...reads]);
    for (const read of results.slice(writes.length) as ProfilesFile[]) {
      assert.equal(read.current, "base");
    }
    assert.deepEqual(await readdir(configDir), ["profiles.yaml"]);
  });

  it("makes the first profile current, and a later one only with use", async () => {
    const store = createProfileStore(configDir);
    await store.create("first", { server: "http://first:1" });
    assert.equal((await store.create("second", { server: "http://second:1" })).current, "first");
    assert.equal((await store.create("third", { server: "http://third:1" }, { use: true })).current, "third");
    assert.equal((await store.use("second")).current, "second");
  });

  it("leaves no profile current after removing the current one", async () => {
    const store = createProfileStore(configDir);
    await store.create("a", { server: "http://a:1" });
    await store.create("b", { server: "http://b:1" });
    const file = await store.remove("a");
    assert.equal(file.current, undefined);
    assert.deepEqual(Object.keys(file.profiles), ["b"]);
    assert.equal((await store.create("c", { server: "http://c:1" })).current, "c");
  });

  it("rejects duplicate names, bad names, bad URLs and unknown profiles", async () => {
    const store = createProfileStore(configDir);
    await store.create("a", { server: "http://a:1" });
    await assert.rejects(store.create("a", { server: "http://a:2" }), { message: 'profile "a" already exists' });
    await assert.rejects(store.create("../x", { server: "http://a:2" }), /invalid profile name "\.\.\/x"/);
    await assert.rejects(store.create("b", { server: "a:2" }), /invalid server URL "a:2"/);
    await assert.rejects(store.create("b", { server: "nope" }), /invalid server URL "nope"/);
    await assert.rejects(store.use("zz"), { message: 'profile "zz" not found' });
    await assert.rejects(store.remove("zz"), { message: 'profile "zz" not found' });
  });

  it("names the file when it is malformed", async () => {
    const store = createProfileStore(configDir);
    await store.create("a", { server: "http://a:1" });
    await writeFile(store.path, "profiles: [1, 2]\n");
    await assert.rejects(store.read(), { message: `${store.path}: "profiles" must be a mapping of names to {server, token}` });
  });
});

describe("resolveConnection", () => {
  const file: ProfilesFile = {
    current: "prod",
    profiles: {
      prod: { server: "https://ci.example.org", token: "prod-token" },
      dev: { server: "http://dev:9090", token: "dev-token" },
      anonymous: { server: "http://anon:9090" },
    },
  };

  it("falls back to the default server without a token", () => {
    assert.deepEqual(resolveConnection({}, {}, { profiles: {} }), { server: DEFAULT_SERVER });
  });

  it("uses the current profile", () => {
    assert.deepEqual(resolveConnection({}, {}, file), { server: "https://ci.example.org", token: "prod-token" });
  });

  it("prefers MOTTAINAI_PROFILE to the current profile, and --profile to both", () => {
    assert.deepEqual(resolveConnection({}, { profile: "dev" }, file), { server: "http://dev:9090", token: "dev-token" });
    assert.deepEqual(resolveConnection({ profile: "anonymous" }, { profile: "dev" }, file), { server: "http://anon:9090" });
  });

  it("prefers MOTTAINAI_SERVER/MOTTAINAI_TOKEN to any profile, and the flags to the environment", () => {
    const environment = { server: "http://env:1", token: "env-token", profile: "dev" };
    assert.deepEqual(resolveConnection({ profile: "prod" }, environment, file), { server: "http://env:1", token: "env-token" });
    assert.deepEqual(resolveConnection({ server: "http://flag:1", token: "flag-token" }, environment, file), {
      server: "http://flag:1",
      token: "flag-token",
    });
  });

  it("resolves server and token each on its own", () => {
    assert.deepEqual(resolveConnection({ token: "flag-token" }, {}, file), {
      server: "https://ci.example.org",
      token: "flag-token",
    });
    assert.deepEqual(resolveConnection({ server: "http://flag:1" }, { token: "env-token" }, file), {
      server: "http://flag:1",
      token: "env-token",
    });
  });

  it("sends a profile's token only to that profile's server", () => {
    assert.deepEqual(resolveConnection({ server: "http://elsewhere:1" }, {}, file), { server: "http://elsewhere:1" });
    assert.deepEqual(resolveConnection({ server: "https://ci.example.org/" }, {}, file), {
      server: "https://ci.example.org/",
      token: "prod-token",
    });
  });

  it("treats empty values as unset", () => {
    assert.deepEqual(resolveConnection({ server: "", token: "" }, { server: "", token: "", profile: "" }, file), {
      server: "https://ci.example.org",
      token: "prod-token",
    });
  });

  it("fails on an explicitly named profile that does not exist", () => {
    assert.throws(() => resolveConnection({ profile: "nope" }, {}, file), { message: 'profile "nope" not found' });
    assert.throws(() => resolveConnection({}, { profile: "nope" }, file), { message: 'profile "nope" not found' });
  });
});
