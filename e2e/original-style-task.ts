/** The original-style task file the host and docker e2e suites run. */

/**
 * A task file in the original's style: `/` paths, a `plan` key, an unknown key, a repeated key
 * (the last `script` runs) and an environment value containing `=`. `type` is replaced per test.
 */
export const ORIGINAL_STYLE_TASK = [
  "name: original style",
  "type: TYPE",
  "directory: /",
  "artefact_path: /out",
  "plan: nightly-isos",
  "colour: red",
  "environment:",
  "  - URL=http://mirror/?a=b&c=d==",
  "script:",
  "  - echo never",
  "script:",
  '  - echo "URL=$URL"',
  '  - echo "artefacts in $MOTTAINAI_ARTEFACT_PATH"',
  "  - mkdir -p out/iso",
  "  - printf 'iso\\001\\377bytes' > out/iso/image.iso",
  "  - ls -a",
  "",
].join("\n");

/** The warnings CreateTask returns for ORIGINAL_STYLE_TASK written to `path`. */
export function originalStyleWarnings(path: string): string[] {
  return [
    `${path}: line 11: field "script": duplicate key (first at line 9): the last value is used, as in the original`,
    `${path}: line 5: field "plan": ignored: the original's tools read it beside "planned"; the task runs without it`,
    `${path}: line 6: field "colour": unknown key, ignored as in the original`,
  ];
}

/** The artefact ORIGINAL_STYLE_TASK writes, byte for byte. */
export const ORIGINAL_STYLE_ISO = Buffer.from([0x69, 0x73, 0x6f, 0x01, 0xff, 0x62, 0x79, 0x74, 0x65, 0x73]);
