/**
 * Where synth reads project files from. Synth always runs from the project root (npm scripts, the
 * cdktf CLI, the workflows); unlike __dirname, the working directory stays right when main.ts is bundled.
 */
export const PROJECT_ROOT = process.cwd();
