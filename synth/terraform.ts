/**
 * Real Terraform on a synthesized stack, in a scratch copy: the provider this machine can install, a CLI config
 * for these runs only, and an override file (the native way to change a configuration without touching it: verify/
 * points every AWS endpoint at an emulator with one).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { terraformVersion } from '../modules/toolchain';
import type { TerraformJson } from './output';

/** Where Terraform filesystem mirrors usually are (the implied local mirror directories), plus one named by the user. */
export function mirrorCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  return [
    env.SLUICE_TF_PROVIDER_MIRROR,
    '/opt/tf-plugins',
    join(homedir(), '.terraform.d', 'plugins'),
    join(homedir(), '.local', 'share', 'terraform', 'plugins'),
    '/usr/local/share/terraform/plugins',
    '/usr/share/terraform/plugins',
  ].filter((p): p is string => Boolean(p));
}

const PLATFORM = `${process.platform === 'win32' ? 'windows' : process.platform}_${process.arch === 'x64' ? 'amd64' : process.arch}`;

/** hashicorp/aws versions installable from a mirror root, newest first. */
function mirroredVersions(root: string): string[] {
  const dir = join(root, 'registry.terraform.io', 'hashicorp', 'aws');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((version) => existsSync(join(dir, version, PLATFORM)))
    .sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
}

export interface ProviderChoice {
  readonly pinned: string;
  readonly version: string;
  /** The mirror root to install from; undefined: the public registry. */
  readonly mirror?: string;
  /** Said once, plainly, when the version differs from the pinned one. */
  readonly note?: string;
}

export function pinnedAwsProvider(json: TerraformJson): string {
  const aws = (json.terraform.required_providers as Record<string, { version?: string }> | undefined)?.aws;
  if (!aws?.version || !/^\d+\.\d+\.\d+$/.test(aws.version))
    throw new Error(`the stack pins no exact hashicorp/aws version (got ${JSON.stringify(aws?.version)})`);
  return aws.version;
}

/**
 * The pinned provider when a mirror has it or the registry is reachable; otherwise the newest mirrored one, said so.
 * `registryReachable` is asked only when no mirror has the pinned version.
 */
export function chooseProvider(pinned: string, mirrors: readonly string[], registryReachable: () => boolean): ProviderChoice {
  const withPinned = mirrors.find((root) => mirroredVersions(root).includes(pinned));
  if (withPinned) return { pinned, version: pinned, mirror: withPinned };
  if (registryReachable()) return { pinned, version: pinned };
  const fallback = mirrors.map((root) => ({ root, version: mirroredVersions(root)[0] })).find((m) => m.version);
  if (!fallback) {
    throw new Error(
      `hashicorp/aws ${pinned} cannot be installed: registry.terraform.io is unreachable and no filesystem mirror (${mirrors.join(', ')}) has any version; ` +
        'set SLUICE_TF_PROVIDER_MIRROR to a mirror root (the folder holding registry.terraform.io/)',
    );
  }
  return {
    pinned,
    version: fallback.version,
    mirror: fallback.root,
    note:
      `hashicorp/aws ${pinned} (the version @cdktf/provider-aws pins) is not installable here: registry.terraform.io is unreachable and the ` +
      `filesystem mirror ${fallback.root} has ${fallback.version}. The scratch copies are checked with ${fallback.version}; the synthesized configuration is unchanged.`,
  };
}

export function registryReachable(): boolean {
  const probe = spawnSync(
    process.execPath,
    [
      '-e',
      "fetch('https://registry.terraform.io/.well-known/terraform.json',{signal:AbortSignal.timeout(5000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))",
    ],
    {
      timeout: 8000,
    },
  );
  return probe.status === 0;
}

/**
 * A CLI configuration for these runs only (the user's own is not read): the mirror for hashicorp/aws when there is
 * one, the registry for anything else, and one plugin cache so the provider is downloaded once for every stack.
 */
export function cliConfig(choice: ProviderChoice, pluginCacheDir: string): string {
  const installation = choice.mirror
    ? [
        '  filesystem_mirror {',
        `    path    = ${JSON.stringify(choice.mirror)}`,
        '    include = ["registry.terraform.io/hashicorp/aws"]',
        '  }',
        '  direct {',
        '    exclude = ["registry.terraform.io/hashicorp/aws"]',
        '  }',
      ]
    : ['  direct {}'];
  return [`plugin_cache_dir = ${JSON.stringify(pluginCacheDir)}`, 'provider_installation {', ...installation, '}', ''].join('\n');
}

interface TerraformRun {
  readonly code: number;
  readonly output: string;
  readonly seconds: number;
}

/** A scratch copy of one synthesized stack, and terraform run in it. */
export class ScratchStack {
  constructor(
    readonly name: string,
    readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly log: (line: string) => void,
  ) {}

  /** Copies the stack (with its assets) and, if the provider differs from the pin, rewrites the constraint in the copy. */
  static create(name: string, source: string, scratchRoot: string, choice: ProviderChoice, env: NodeJS.ProcessEnv, log: (line: string) => void): ScratchStack {
    const dir = join(scratchRoot, name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(scratchRoot, { recursive: true });
    cpSync(source, dir, { recursive: true, filter: (path) => !path.includes(`${join(source, '.terraform')}`) });
    if (choice.version !== choice.pinned) {
      const file = join(dir, 'cdk.tf.json');
      const json = JSON.parse(readFileSync(file, 'utf8')) as TerraformJson;
      (json.terraform.required_providers as Record<string, { version: string }>).aws.version = choice.version;
      writeFileSync(file, JSON.stringify(json, null, 2));
    }
    return new ScratchStack(name, dir, env, log);
  }

  /** A stack written here from JSON (a fixture of the check itself, not a synthesized stage). */
  static fromJson(name: string, dir: string, json: TerraformJson, env: NodeJS.ProcessEnv, log: (line: string) => void): ScratchStack {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'main.tf.json'), JSON.stringify(json, null, 2));
    return new ScratchStack(name, dir, env, log);
  }

  writeOverride(override: Record<string, unknown>): void {
    writeFileSync(join(this.dir, 'zz_sluice_override.tf.json'), JSON.stringify(override, null, 2));
  }

  terraform(args: string[], options: { allowCodes?: number[]; quiet?: boolean } = {}): TerraformRun {
    const started = Date.now();
    // Streamed to a log file as it runs (a long apply can be followed with tail -f), read back when it ends.
    const logFile = join(this.dir, `terraform-${args[0]}.log`);
    const fd = openSync(logFile, 'w');
    let result;
    try {
      result = spawnSync('terraform', [`-chdir=${this.dir}`, ...args], { env: this.env, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    const output = readFileSync(logFile, 'utf8');
    const code = result.status ?? 1;
    const seconds = (Date.now() - started) / 1000;
    const allowed = options.allowCodes ?? [0];
    if (!allowed.includes(code)) {
      throw new Error(`terraform ${args.join(' ')} in ${this.name} exited ${code} after ${seconds.toFixed(0)} s:\n${tail(output, 60)}`);
    }
    if (!options.quiet) this.log(`  terraform ${args[0]} ${this.name}: exit ${code}, ${seconds.toFixed(0)} s`);
    return { code, output, seconds };
  }

  /**
   * This stack planned against `applied`'s state and providers (copied in): what Terraform would do to that stage
   * with this configuration, as `terraform show -json` prints the plan.
   */
  planAgainst(applied: ScratchStack): Record<string, unknown> {
    for (const entry of readdirSync(applied.dir).filter((e) => e === '.terraform' || e === 'terraform.tfstate' || e === '.terraform.lock.hcl'))
      cpSync(join(applied.dir, entry), join(this.dir, entry), { recursive: true });
    this.terraform(['plan', '-input=false', '-no-color', '-out=tfplan'], { allowCodes: [0, 2] });
    return JSON.parse(this.terraform(['show', '-json', 'tfplan'], { quiet: true }).output) as Record<string, unknown>;
  }

  /** The state as `terraform show -json` prints it. */
  state(): TerraformState {
    return JSON.parse(this.terraform(['show', '-json'], { quiet: true }).output) as TerraformState;
  }
}

interface TerraformState {
  values?: {
    outputs?: Record<string, { value: unknown }>;
    root_module?: { resources?: Array<{ address: string; type: string; name: string; values: Record<string, any> }> };
  };
}

export function resourcesInState(state: TerraformState, type?: string) {
  return (state.values?.root_module?.resources ?? []).filter((r) => type === undefined || r.type === type);
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Terraform is on the PATH, in exactly the version every stack requires. */
export function checkTerraform(): void {
  const probe = spawnSync('terraform', ['version', '-json'], { encoding: 'utf8' });
  if (probe.error) throw new Error(`terraform is not on the PATH: install Terraform ${terraformVersion()} (the version .terraform-version pins)`);
  const version = (JSON.parse(probe.stdout) as { terraform_version: string }).terraform_version;
  if (version !== terraformVersion())
    throw new Error(`terraform ${version} is on the PATH; every stack requires exactly ${terraformVersion()} (.terraform-version)`);
}
