// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "proto/src/gen/**", "server/src/reflection/gen/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        setImmediate: "readonly",
        URL: "readonly",
        fetch: "readonly",
      },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "error",
    },
  },
  {
    // Only the entry points read the environment; everything below receives typed config.
    files: ["*/src/**/*.ts"],
    ignores: ["*/src/main.ts", "*/src/**/*.test.ts"],
    rules: {
      "no-restricted-properties": [
        "error",
        { object: "process", property: "env", message: "Read configuration in main.ts and pass it down." },
      ],
    },
  },
  {
    // The dashboard runs in the browser.
    files: ["web/**/*.ts", "web/**/*.tsx"],
    languageOptions: {
      globals: {
        window: "readonly",
        document: "readonly",
        location: "readonly",
        history: "readonly",
        sessionStorage: "readonly",
        addEventListener: "readonly",
        removeEventListener: "readonly",
        HTMLInputElement: "readonly",
        HTMLDivElement: "readonly",
        Element: "readonly",
        MouseEvent: "readonly",
        TextDecoder: "readonly",
        AbortController: "readonly",
      },
    },
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: ["@mottainai/server", "@mottainai/agent", "**/server/src/**", "**/agent/src/**"] },
      ],
    },
  },
  {
    files: ["**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { require: "readonly", module: "writable" } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    // The CLI's output layer and scripts print to the terminal on purpose.
    files: ["cli/src/output.ts", "scripts/**", "bench/**", "e2e/**", "**/*.test.ts"],
    rules: { "no-console": "off" },
  },
  {
    // Package boundaries: clients never reach into server or agent code.
    files: ["cli/**/*.ts", "replicant/**/*.ts", "bridge/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: ["@mottainai/server", "@mottainai/agent", "**/server/src/**", "**/agent/src/**"] },
      ],
    },
  },
);
