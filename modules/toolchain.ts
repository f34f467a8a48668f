import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from './project-root';

/**
 * The Terraform version every stage is planned and applied with, pinned once in `.terraform-version`
 * (read by the GitHub workflows through hashicorp/setup-terraform, and by tfenv on a laptop).
 * The AWS provider is pinned exactly by @cdktf/provider-aws (required_providers in each cdk.tf.json).
 */
const TERRAFORM_VERSION_FILE = join(PROJECT_ROOT, '.terraform-version');

export function terraformVersion(file = TERRAFORM_VERSION_FILE): string {
  const version = readFileSync(file, 'utf8').trim();
  if (!/^\d+\.\d+\.\d+$/.test(version)) {
    throw new Error(`${file}: must hold one exact Terraform version like 1.11.4 (got ${JSON.stringify(version)})`);
  }
  return version;
}

/** What `terraform { required_version }` says: exactly the pinned version, so state is never written by a newer one. */
export function requiredTerraformVersion(): string {
  return `= ${terraformVersion()}`;
}
