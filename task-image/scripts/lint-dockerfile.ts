/**
 * Lints task-image/Dockerfile: dockerfile-utils' validator with every rule raised to an error,
 * then the rules this image depends on (the ones hadolint would check; hadolint is not on npm/apt).
 * Usage: tsx task-image/scripts/lint-dockerfile.ts [path/to/Dockerfile]
 */
import { validate, ValidationSeverity } from 'dockerfile-utils';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

interface Instruction {
  line: number;
  keyword: string;
  args: string;
}

interface Problem {
  line: number;
  message: string;
}

/** Joins continuation lines and drops comments, keeping each instruction's first line number. */
export function parseInstructions(content: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending: Instruction | undefined;
  content.split('\n').forEach((raw, index) => {
    const text = raw.trim();
    if (text.startsWith('#') || (text === '' && !pending)) return;
    const continues = text.endsWith('\\');
    const part = continues ? text.slice(0, -1).trim() : text;
    if (pending) pending.args = `${pending.args} ${part}`.trim();
    else {
      const [keyword, ...rest] = part.split(/\s+/);
      pending = { line: index + 1, keyword: keyword.toUpperCase(), args: rest.join(' ') };
    }
    if (!continues) {
      instructions.push(pending);
      pending = undefined;
    }
  });
  if (pending) instructions.push(pending);
  return instructions;
}

export function projectRules(instructions: Instruction[]): Problem[] {
  const { globalArgs, stages } = splitStages(instructions);
  const problems: Problem[] = [];
  if (stages.length < 2) problems.push({ line: 1, message: 'the build must be multi-stage (bundle, then runtime)' });
  problems.push(...baseImageProblems(stages, globalArgs));
  for (const instruction of instructions.filter((candidate) => candidate.keyword === 'RUN')) problems.push(...runProblems(instruction));
  problems.push(...runtimeProblems(stages[stages.length - 1] ?? []));
  return problems;
}

/** The ARGs declared before the first FROM (they may name base images), and each stage's instructions from its FROM. */
function splitStages(instructions: Instruction[]): { globalArgs: Map<string, string>; stages: Instruction[][] } {
  const globalArgs = new Map<string, string>();
  let stage = -1;
  const stages: Instruction[][] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') stages[++stage] = [];
    if (stage < 0) {
      if (instruction.keyword === 'ARG') {
        const [name, value = ''] = instruction.args.split('=');
        globalArgs.set(name, value);
      }
      continue;
    }
    stages[stage].push(instruction);
  }
  return { globalArgs, stages };
}

/** Every external base image is pinned; a FROM of an earlier stage's name is not an image. */
function baseImageProblems(stages: Instruction[][], globalArgs: Map<string, string>): Problem[] {
  const problems: Problem[] = [];
  const stageNames = new Set<string>();
  for (const [from] of stages) {
    const words = from.args.split(/\s+/).filter((word) => !word.startsWith('--'));
    const image = words[0].replace(/^\$\{?(\w+)\}?$/, (_, name: string) => globalArgs.get(name) ?? '');
    if (words[2]) stageNames.add(words[2]);
    if (stageNames.has(words[0])) continue;
    // An exact version (node:24.21.0-...) or a digest; never latest or a floating major.
    if (!/:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?$/.test(image) && !/@sha256:[0-9a-f]{64}$/.test(image)) {
      problems.push({ line: from.line, message: `base image "${image || words[0]}" is not pinned to an exact version or digest` });
    }
  }
  return problems;
}

/** A RUN's package installs: apt lean and pinned, npm from the lockfile. */
function runProblems(instruction: Instruction): Problem[] {
  const problems: Problem[] = [];
  const run = instruction.args;
  if (/apt-get install/.test(run)) {
    if (!/--no-install-recommends/.test(run)) problems.push({ line: instruction.line, message: 'apt-get install without --no-install-recommends' });
    if (!/rm -rf \/var\/lib\/apt\/lists/.test(run)) problems.push({ line: instruction.line, message: 'apt lists not removed in the same RUN' });
    const packages = run
      .split(/apt-get install/)[1]
      .split('&&')[0]
      .split(/\s+/)
      .filter((word) => word && !word.startsWith('-'));
    for (const name of packages.filter((word) => !word.includes('='))) {
      problems.push({ line: instruction.line, message: `apt package "${name}" is not pinned (name=version)` });
    }
  }
  if (/npm (install|i)\b/.test(run)) problems.push({ line: instruction.line, message: 'use npm ci (the lockfile), not npm install' });
  return problems;
}

/** The last stage is what runs on Fargate: non-root, /tmp as a volume, an init as PID 1, node in exec form. */
function runtimeProblems(runtime: Instruction[]): Problem[] {
  const problems: Problem[] = [];
  const lastUser = [...runtime].reverse().find((instruction) => instruction.keyword === 'USER');
  if (!lastUser || /^(root|0)(:|$)/.test(lastUser.args)) {
    problems.push({ line: lastUser?.line ?? 1, message: 'the runtime stage must end as a non-root USER' });
  }
  if (!runtime.some((instruction) => instruction.keyword === 'VOLUME' && /\/tmp\b/.test(instruction.args))) {
    problems.push({ line: 1, message: 'the runtime stage must declare VOLUME /tmp (temp space under a read-only root filesystem)' });
  }
  const entrypoint = runtime.find((instruction) => instruction.keyword === 'ENTRYPOINT');
  if (!entrypoint || !/tini|dumb-init/.test(entrypoint.args)) {
    problems.push({ line: entrypoint?.line ?? 1, message: 'ENTRYPOINT must start an init (tini) that forwards signals to node' });
  }
  const cmd = runtime.find((instruction) => instruction.keyword === 'CMD');
  if (!cmd || !cmd.args.startsWith('[') || /\bnpm\b/.test(cmd.args)) {
    problems.push({ line: cmd?.line ?? 1, message: 'CMD must run node directly in exec form (npm writes to $HOME and swallows signals)' });
  }
  return problems;
}

function main(): void {
  const path = resolve(process.argv[2] ?? 'task-image/Dockerfile');
  const content = readFileSync(path, 'utf8');
  const strict = {
    deprecatedMaintainer: ValidationSeverity.ERROR,
    directiveCasing: ValidationSeverity.ERROR,
    emptyContinuationLine: ValidationSeverity.ERROR,
    instructionCasing: ValidationSeverity.ERROR,
    instructionCmdMultiple: ValidationSeverity.ERROR,
    instructionEntrypointMultiple: ValidationSeverity.ERROR,
    instructionHealthcheckMultiple: ValidationSeverity.ERROR,
    instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
    instructionWorkdirRelative: ValidationSeverity.ERROR,
  };
  const problems: Problem[] = [
    ...validate(content, strict).map((diagnostic) => ({
      line: diagnostic.range.start.line + 1,
      message: `dockerfile-utils: ${diagnostic.message}`,
    })),
    ...projectRules(parseInstructions(content)),
  ].sort((a, b) => a.line - b.line);
  for (const problem of problems) console.error(`${path}:${problem.line}: ${problem.message}`);
  if (problems.length > 0) {
    console.error(`${problems.length} problem(s) in ${path}`);
    process.exit(1);
  }
  console.log(`${path}: dockerfile-utils and project rules pass (${parseInstructions(content).length} instructions)`);
}

if (require.main === module) main();
