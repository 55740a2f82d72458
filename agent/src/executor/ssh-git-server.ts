import { execFile, spawn, type ChildProcess } from "node:child_process";
import { access, constants, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The sshd of Debian's openssh-server (scripts/ci/install-packages.sh installs it). */
export const SSHD = "/usr/sbin/sshd";

/** What the README of the served repository holds, byte for byte. */
export const SSH_REPO_README = "private repository, served over ssh\nsecond line\n";

/** A running test sshd serving one bare git repository to one generated client key (startSshGitServer). */
export interface SshGitServer {
  /** `ssh://<user>@127.0.0.1:<port>/<dir>/repo.git`. */
  url: string;
  /** The client private key (OpenSSH format), the task's `privkey`. */
  privateKey: string;
  /** The commit id of the repository's only commit. */
  commit: string;
  /** Everything sshd wrote to stderr so far (`-e`), for failure messages. */
  log(): string;
  /** Stops sshd and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** Why the ssh tests cannot run here (sshd, ssh-keygen, ssh or git missing), or undefined when they can. */
export async function sshProblem(): Promise<string | undefined> {
  try {
    await access(SSHD, constants.X_OK);
  } catch {
    return `${SSHD} is missing (install openssh-server: scripts/ci/install-packages.sh)`;
  }
  const probes: [string, string[]][] = [
    ["ssh", ["-V"]],
    ["ssh-keygen", ["-?"]],
    ["git", ["--version"]],
  ];
  for (const [tool, args] of probes) {
    try {
      await run(tool, args);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        return `${tool} is missing (install openssh-client and git: scripts/ci/install-packages.sh)`;
    }
  }
  return undefined;
}

/**
 * A test sshd on a free loopback port (test-only; DESIGN §8): `sshd -D -e` with its own
 * config in a temp directory (a generated host key; key authentication only, against a
 * generated client key; no PAM, no strict modes, no pid file), serving a bare repository with
 * one commit whose README is SSH_REPO_README to the current user. Resolves once sshd listens.
 */
export async function startSshGitServer(): Promise<SshGitServer> {
  const dir = await mkdtemp(join(tmpdir(), "mottainai-sshd-"));
  let child: ChildProcess | undefined;
  let stderr = "";
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      const c = child;
      if (c && c.exitCode === null && c.signalCode === null) {
        const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
        c.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };
  try {
    const user = userInfo().username;
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "mottainai-test-host", "-f", join(dir, "host_key")]);
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "mottainai-test-client", "-f", join(dir, "client_key")]);
    await writeFile(join(dir, "authorized_keys"), await readFile(join(dir, "client_key.pub")), { mode: 0o600 });

    const work = join(dir, "work");
    const git = (args: string[], cwd = work) =>
      run("git", ["-c", "user.name=Mottainai Test", "-c", "user.email=test@mottainai.invalid", ...args], { cwd });
    await mkdir(work);
    await git(["init", "-q", "-b", "main"]);
    await writeFile(join(work, "README"), SSH_REPO_README);
    await git(["add", "README"]);
    await git(["commit", "-q", "-m", "first"]);
    const commit = (await git(["rev-parse", "HEAD"])).stdout.trim();
    await git(["clone", "-q", "--bare", work, join(dir, "repo.git")], dir);

    const port = await freePort();
    const config = [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${join(dir, "host_key")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "PidFile none",
      "PermitRootLogin prohibit-password",
      `AllowUsers ${user}`,
      "LogLevel VERBOSE",
      "",
    ].join("\n");
    await writeFile(join(dir, "sshd_config"), config);
    // As root, sshd needs its privilege separation directory (made by the Debian service otherwise).
    if (process.getuid?.() === 0) await mkdir("/run/sshd", { recursive: true, mode: 0o755 });

    const sshd = spawn(SSHD, ["-D", "-e", "-f", join(dir, "sshd_config")], { stdio: ["ignore", "ignore", "pipe"] });
    child = sshd;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sshd did not listen within 10 s: ${stderr}`)), 10_000);
      sshd.stderr?.setEncoding("utf8");
      sshd.stderr?.on("data", (chunk: string) => {
        stderr += chunk;
        if (stderr.includes(`Server listening on 127.0.0.1 port ${port}`)) {
          clearTimeout(timer);
          resolve();
        }
      });
      sshd.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      sshd.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`sshd exited (${signal ?? `code ${code}`}) before listening: ${stderr}`));
      });
    });
    return {
      url: `ssh://${user}@127.0.0.1:${port}${join(dir, "repo.git")}`,
      privateKey: await readFile(join(dir, "client_key"), "utf8"),
      commit,
      log: () => stderr,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * startSshGitServer when sshd, ssh, ssh-keygen and git are here; otherwise undefined so that a
 * developer's run skips, and with `ci` an error instead: CI must run these tests (DESIGN §8).
 */
export async function requireSshGitServer(ci: boolean): Promise<SshGitServer | undefined> {
  const problem = await sshProblem();
  if (problem === undefined) return startSshGitServer();
  if (ci) throw new Error(`ssh checkout tests cannot run in CI: ${problem}`);
  (process as NodeJS.EventEmitter).emit("mottainai:test-skip", "sshd", problem);
  return undefined;
}
