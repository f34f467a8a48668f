import { S3Bucket, type S3BucketConfig } from '@cdktf/provider-aws/lib/s3-bucket';
import { S3BucketOwnershipControls } from '@cdktf/provider-aws/lib/s3-bucket-ownership-controls';
import { S3BucketPolicy } from '@cdktf/provider-aws/lib/s3-bucket-policy';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block';
import { S3BucketServerSideEncryptionConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration';
import { S3BucketVersioningA } from '@cdktf/provider-aws/lib/s3-bucket-versioning';
import { Construct } from 'constructs';
import { denyInsecureTransport, policyJson, type PolicyStatement } from './iam';

interface PrivateBucketProps {
  readonly bucketName: string;
  /** Let `terraform destroy` delete every object version first. */
  readonly forceDestroy?: boolean;
  readonly lifecycle?: S3BucketConfig['lifecycle'];
  /** Statements the bucket's policy adds to the TLS deny, given the bucket's ARN. */
  readonly policyStatements?: (bucketArn: string) => PolicyStatement[];
}

/**
 * A bucket as sluice keeps every bucket: owner-enforced, all public access blocked, versioned,
 * encrypted by default (SSE-S3 with bucket keys), and a policy that denies any request without TLS.
 */
export class PrivateBucket extends Construct {
  readonly bucket: S3Bucket;

  constructor(scope: Construct, id: string, props: PrivateBucketProps) {
    super(scope, id);
    const bucket = new S3Bucket(this, 'bucket', { bucket: props.bucketName, forceDestroy: props.forceDestroy, lifecycle: props.lifecycle });
    const publicAccess = new S3BucketPublicAccessBlock(this, 'public-access', {
      bucket: bucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    new S3BucketOwnershipControls(this, 'ownership', { bucket: bucket.id, rule: { objectOwnership: 'BucketOwnerEnforced' } });
    new S3BucketVersioningA(this, 'versioning', { bucket: bucket.id, versioningConfiguration: { status: 'Enabled' } });
    new S3BucketServerSideEncryptionConfigurationA(this, 'encryption', {
      bucket: bucket.id,
      rule: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' }, bucketKeyEnabled: true }],
    });
    new S3BucketPolicy(this, 'policy', {
      bucket: bucket.id,
      policy: policyJson(denyInsecureTransport([bucket.arn, `${bucket.arn}/*`]), ...(props.policyStatements?.(bucket.arn) ?? [])),
      dependsOn: [publicAccess],
    });
    this.bucket = bucket;
  }
}
