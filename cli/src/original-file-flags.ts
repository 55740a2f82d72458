/** Commands whose file the original mottainai-cli took as `--json FILE` or `--yaml FILE`. */
const fileCommands = new Set(["task create", "pipeline create", "plan create"]);

/**
 * `args` with the original mottainai-cli's file flags of `task|pipeline|plan create` rewritten
 * to `--file`: `--yaml FILE`, `-y FILE`, `--yaml=FILE`, and `--json FILE`, `-j FILE`,
 * `--json=FILE`. Here `--json` alone means "print JSON"; it reads a file only when a value
 * follows it that is not an option (these commands take no positional argument, so such a value
 * can mean nothing else). Other commands' arguments are returned unchanged.
 */
export function rewriteOriginalFileFlags(args: readonly string[]): string[] {
  if (!fileCommands.has(args.slice(0, 2).join(" "))) return [...args];
  const result = args.slice(0, 2);
  for (let i = 2; i < args.length; i++) {
    const arg = args[i] as string;
    const next = args[i + 1];
    const equals = /^--(?:json|yaml)=(.*)$/s.exec(arg);
    if (equals) {
      result.push("--file", equals[1] as string);
    } else if (["--yaml", "-y", "--json", "-j"].includes(arg) && next !== undefined && !next.startsWith("-")) {
      result.push("--file", next);
      i++;
    } else if (arg === "-j") {
      result.push("--json");
    } else {
      result.push(arg);
    }
  }
  return result;
}
