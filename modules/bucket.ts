import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket';
import { S3BucketLifecycleConfiguration } from '@cdktf/provider-aws/lib/s3-bucket-lifecycle-configuration';
import { S3BucketNotification } from '@cdktf/provider-aws/lib/s3-bucket-notification';
import { S3BucketOwnershipControls } from '@cdktf/provider-aws/lib/s3-bucket-ownership-controls';
import { S3BucketPolicy } from '@cdktf/provider-aws/lib/s3-bucket-policy';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block';
import { S3BucketServerSideEncryptionConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration';
import { S3BucketVersioningA } from '@cdktf/provider-aws/lib/s3-bucket-versioning';
import { Construct } from 'constructs';
import { denyInsecureTransport, policyJson } from './iam';

export interface BucketProps {
  readonly bucketName: string;
  readonly inputPrefix: string;
  readonly resultsPrefix: string;
  readonly resultsRetentionDays: number;
  readonly noncurrentVersionRetentionDays: number;
}

/** The bucket users upload to and results land in. */
export class Bucket extends Construct {
  readonly bucketName: string;
  readonly bucketArn: string;
  readonly inputPrefix: string;
  readonly resultsPrefix: string;

  constructor(scope: Construct, id: string, props: BucketProps) {
    super(scope, id);
    const bucket = new S3Bucket(this, 'bucket', { bucket: props.bucketName });
    this.bucketName = bucket.bucket;
    this.bucketArn = bucket.arn;
    this.inputPrefix = props.inputPrefix;
    this.resultsPrefix = props.resultsPrefix;

    const publicAccess = new S3BucketPublicAccessBlock(this, 'public-access', {
      bucket: bucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    new S3BucketOwnershipControls(this, 'ownership', {
      bucket: bucket.id,
      rule: { objectOwnership: 'BucketOwnerEnforced' },
    });
    // Versions make a job's input exact: the job id and the task name one version.
    new S3BucketVersioningA(this, 'versioning', {
      bucket: bucket.id,
      versioningConfiguration: { status: 'Enabled' },
    });
    new S3BucketServerSideEncryptionConfigurationA(this, 'encryption', {
      bucket: bucket.id,
      rule: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' }, bucketKeyEnabled: true }],
    });
    new S3BucketPolicy(this, 'policy', {
      bucket: bucket.id,
      policy: policyJson(denyInsecureTransport([bucket.arn, `${bucket.arn}/*`])),
      dependsOn: [publicAccess],
    });
    new S3BucketNotification(this, 'eventbridge', { bucket: bucket.id, eventbridge: true });
    new S3BucketLifecycleConfiguration(this, 'lifecycle', {
      bucket: bucket.id,
      rule: [
        {
          id: 'expire-results',
          status: 'Enabled',
          filter: [{ prefix: props.resultsPrefix }],
          expiration: [{ days: props.resultsRetentionDays }],
        },
        {
          id: 'expire-noncurrent-versions',
          status: 'Enabled',
          filter: [{}],
          noncurrentVersionExpiration: [{ noncurrentDays: props.noncurrentVersionRetentionDays }],
          abortIncompleteMultipartUpload: [{ daysAfterInitiation: 7 }],
        },
      ],
    });
  }
}
