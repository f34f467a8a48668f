import { S3BucketLifecycleConfiguration } from '@cdktf/provider-aws/lib/s3-bucket-lifecycle-configuration';
import { S3BucketNotification } from '@cdktf/provider-aws/lib/s3-bucket-notification';
import { Construct } from 'constructs';
import type { EnvironmentConfig } from '../environments';
import { partitionOf } from '../environments/partition';
import { SMOKE_FOLDER, stageBucketName, taskRoleArnOf } from '../environments/names';
import { PrivateBucket } from './private-bucket';

const SMOKE_RETENTION_DAYS = 7;

interface BucketProps {
  /**
   * Its prefixes and retention; `allowDestroy`: `terraform destroy` deletes every object version first (force_destroy),
   * otherwise S3 refuses a non-empty bucket.
   */
  readonly config: EnvironmentConfig;
}

/** The only principals that may write results: the worker tasks' role (and the account root, to break glass). */
function resultWriterArns(config: EnvironmentConfig): string[] {
  return [taskRoleArnOf(config), `arn:${partitionOf(config.account.region)}:iam::${config.account.id}:root`];
}

/** The bucket users upload to and results land in. */
export class Bucket extends Construct {
  readonly bucketName: string;
  readonly bucketArn: string;

  constructor(scope: Construct, id: string, props: BucketProps) {
    super(scope, id);
    const { config } = props;
    const { inputPrefix, resultsPrefix } = config.bucket;
    // Versions make a job's input exact: the job id and the task name one version.
    // A job whose result says it succeeded is skipped: no other principal may write one (security review L8).
    const { bucket } = new PrivateBucket(this, 'private', {
      bucketName: stageBucketName(config),
      forceDestroy: config.allowDestroy,
      policyStatements: (arn) => [
        {
          Sid: 'OnlyTheWorkerWritesResults',
          Effect: 'Deny',
          Principal: '*',
          Action: 's3:PutObject',
          Resource: `${arn}/${resultsPrefix}*`,
          Condition: { ArnNotEquals: { 'aws:PrincipalArn': resultWriterArns(config) } },
        },
      ],
    });
    this.bucketName = bucket.bucket;
    this.bucketArn = bucket.arn;

    new S3BucketNotification(this, 'eventbridge', { bucket: bucket.id, eventbridge: true });
    new S3BucketLifecycleConfiguration(this, 'lifecycle', {
      bucket: bucket.id,
      rule: [
        {
          id: 'expire-results',
          status: 'Enabled',
          filter: [{ prefix: resultsPrefix }],
          expiration: [{ days: config.bucket.resultsRetentionDays }],
        },
        // `sluice smoke`'s canaries and their results: a week is enough to look at a failed one.
        {
          id: 'expire-smoke-canaries',
          status: 'Enabled',
          filter: [{ prefix: `${inputPrefix}${SMOKE_FOLDER}` }],
          expiration: [{ days: SMOKE_RETENTION_DAYS }],
        },
        {
          id: 'expire-smoke-results',
          status: 'Enabled',
          filter: [{ prefix: `${resultsPrefix}${inputPrefix}${SMOKE_FOLDER}` }],
          expiration: [{ days: SMOKE_RETENTION_DAYS }],
        },
        {
          id: 'expire-noncurrent-versions',
          status: 'Enabled',
          filter: [{}],
          noncurrentVersionExpiration: [{ noncurrentDays: config.bucket.noncurrentVersionRetentionDays }],
          abortIncompleteMultipartUpload: [{ daysAfterInitiation: 7 }],
        },
      ],
    });
  }
}
