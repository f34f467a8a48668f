import { awsServiceOf } from '../modules/aws-services';
import type { TerraformJson } from '../synth/output';

/** The provider reads the caller's account from STS (allowed_account_ids is checked against it). */
const ALWAYS = ['sts'];

export function endpointServices(json: TerraformJson): string[] {
  const types = [...Object.keys(json.resource ?? {}), ...Object.keys(json.data ?? {})];
  const services = new Set(ALWAYS);
  for (const type of types) {
    // Every endpoint a stack needs must point at the emulator, or the provider would reach real AWS: no guess.
    const service = awsServiceOf(type);
    if (!service) throw new Error(`no emulator endpoint is known for ${type}: add its service to modules/aws-services.ts`);
    services.add(service.endpoint);
  }
  return [...services].sort();
}

/**
 * The override file that points a stack at the emulator: every endpoint it needs, path-style S3, the emulator's
 * self-signed certificate accepted; and, for a stack with an S3 backend, the same backend on the emulator.
 */
export function emulatorOverride(json: TerraformJson, endpoint: string, backend: { local: string } | 's3'): Record<string, unknown> {
  const endpoints = Object.fromEntries(endpointServices(json).map((service) => [service, endpoint]));
  const terraform =
    backend === 's3'
      ? {
          backend: {
            // An override's backend block replaces the original whole: its settings are repeated.
            s3: {
              ...(json.terraform.backend?.s3 ?? {}),
              endpoints: { s3: endpoint, sts: endpoint, iam: endpoint },
              use_path_style: true,
              skip_metadata_api_check: true,
              insecure: true,
            },
          },
        }
      : { backend: { local: { path: backend.local } } };
  return {
    terraform,
    provider: {
      aws: {
        endpoints: [endpoints],
        skip_credentials_validation: true,
        skip_metadata_api_check: 'true',
        skip_region_validation: true,
        s3_use_path_style: true,
        insecure: true,
      },
    },
  };
}
