// eslint for the browser code in static/ and its Node tests (make lint-js).
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["static/htmx.min.js", "node_modules/"] },
  js.configs.recommended,
  {
    files: ["static/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: globals.browser },
    rules: {
      "no-var": "error",
      "prefer-const": "error",
      "eqeqeq": "error",
      "no-unused-vars": ["error", { caughtErrors: "none" }],
      "no-implicit-globals": "error",
      "no-shadow": "off",
    },
  },
  {
    // The other pages' scripts are classic scripts, written before the
    // review screen's modules; they keep their var until next touched.
    files: ["static/upload.js", "static/moderation.js", "static/jobs-console.js"],
    languageOptions: { sourceType: "script" },
    rules: { "no-var": "off", "prefer-const": "off" },
  },
  {
    files: ["static/test/**/*.js", "eslint.config.js"],
    languageOptions: { globals: globals.node },
  },
];
